// A helper process that must not outlive the process that started it, even when that one is
// killed outright (SIGKILL gives it no chance to stop anything): the kernel sends the child a
// signal when its parent dies (prctl PR_SET_PDEATHSIG), set by util-linux's `setpriv
// --pdeathsig` before it execs the command, so the command's pid is the child's. Used for the
// private redis-server and for the load test's API and worker processes.
import { existsSync } from 'node:fs';

/** util-linux's setpriv, by absolute path (Debian's). */
export const SETPRIV_PATH = '/usr/bin/setpriv';

/** The file and argv to spawn so that `command` gets `signal` when this process dies; the
 * command as it is where setpriv is missing (it then outlives a killed parent). Spawn it from
 * the main thread: the signal follows the death of the thread that forked. */
export function dyingWithParent(signal: 'TERM' | 'KILL', command: string, args: string[]): { file: string; args: string[] } {
  return existsSync(SETPRIV_PATH) ? { file: SETPRIV_PATH, args: ['--pdeathsig', signal, '--', command, ...args] } : { file: command, args };
}
