// Host processes as tests see them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** This process's children, by pid. */
export function childPids(): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(entry)[1]) === process.pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** A process's state letter (S sleeping, R running, D uninterruptible, Z zombie, ...). */
export function processState(pid: number): string {
  return statFields(pid)[0]!;
}

/** Whether a process is alive: it exists and is no zombie. A zombie has ended (it holds no mount,
 * cgroup membership or CPU), and an orphan's zombie may wait a while for its new parent (PID 1 here
 * reaps orphans lazily). */
export function processAlive(pid: number): boolean {
  try {
    return processState(pid) !== 'Z';
  } catch {
    return false; // no /proc/<pid>: gone
  }
}

/** Whether a process with this pid exists (signal 0 reaches it). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of a process that has ended and been reaped: for tests of what a dead run left. */
export function endedPid(): number {
  const run = spawnSync('/bin/true');
  if (run.status !== 0) throw new Error(`/bin/true exited ${run.status}`);
  return run.pid!;
}
