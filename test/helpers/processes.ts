// Host processes as tests see them.
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { statFields } from '../../src/processes.js';

export { processAlive, processState } from '../../src/processes.js';

/** The children of `parent` (default: this process), by pid. */
export function childPids(parent = process.pid): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(entry)[1]) === parent) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** The init of a running container whose program's command line holds `marker`: the program's
 * parent, itself a child of this process (the sandbox clones each init). Undefined while no such
 * program runs. (Before its execve the program's child shows Node's command line: the marker
 * must not be in this process's argv. A shell execs a script's last command in its own place,
 * and the marker goes with the shell's command line: a script must not end in what it waits on.) */
export function initOfProgram(marker: string): number | undefined {
  const ours = new Set(childPids());
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const parent = Number(statFields(entry)[1]);
      if (ours.has(parent) && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) return parent;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/** The pids of the pool mount agents `parent` (default: this process) runs: its children running
 * mount-agent.py. */
export function mountAgentPids(parent = process.pid): number[] {
  return childPids(parent).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mount-agent.py');
    } catch {
      return false; // exited meanwhile
    }
  });
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

/** The process group of a process (the fifth field of /proc/<pid>/stat, after the comm). */
export function processGroup(pid: number | 'self'): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** What a child spawned with piped stdout and stderr has written so far, as text. */
export function outputOf(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  return { stdout: () => stdout, stderr: () => stderr };
}
