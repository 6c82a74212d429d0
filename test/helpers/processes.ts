// Host processes as tests see them.

/** Whether a process with this pid exists (signal 0 reaches it). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
