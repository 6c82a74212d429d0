// Host processes by pid, from /proc: what the load test's scratch sweep and the tests ask of a
// pid that may have ended (a zombie has: it holds no lock, mount, cgroup membership or CPU, and
// an orphan's zombie may wait a while for its new parent to reap it). Not for proving a process
// alive across restarts: a pid is reused (the image build lock is an flock, src/lock-file.ts).
import fs from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses:
 * the fields start after the last ')'). Throws when there is no such process. */
export function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** A process's state letter (S sleeping, R running, D uninterruptible, Z zombie, ...). */
export function processState(pid: number): string {
  return statFields(pid)[0]!;
}

/** Whether a process is alive: it exists and is no zombie. */
export function processAlive(pid: number): boolean {
  try {
    return processState(pid) !== 'Z';
  } catch {
    return false; // no /proc/<pid>: gone
  }
}
