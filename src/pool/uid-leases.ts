// A uid of its own for each live slot. The kernel keeps some limits per user, whatever the
// namespaces: inotify instances (fs.inotify.max_user_instances, 128 by default), pending signals
// (RLIMIT_SIGPENDING), POSIX message queue bytes (RLIMIT_MSGQUEUE), pipe buffer pages
// (pipe-user-pages-soft). Programs of one shared uid share them: one job holding 128 inotify
// instances made another's inotify_init fail. isolate gives each box its own uid likewise.
//
// A lease is a flock on <stateRoot>/uids/<uid>, taken through the mount agent, so that the pools
// of every worker on a machine (which share the state root) hand out distinct uids, and a dead
// owner's leases end with its agent. A uid given back stays leased to this owner, on a free list
// taken first: in the steady state a slot's uid costs no agent request (a job makes one or two
// slots), and the owner holds about as many uids as it ever had slots at once.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MountAgent } from './mount-agent.js';
import { SANDBOX_UID } from './root.js';
import { PoolError } from './types.js';

/** Slots' uids are SANDBOX_UID .. SANDBOX_UID + SANDBOX_UID_COUNT - 1; the images name each one
 * "sandbox" (images/build/finalize-root.sh). */
export const SANDBOX_UID_COUNT = 1024;

export class UidLeases {
  private readonly dir: string;
  /** Every uid this owner holds the lock of, in use or free (the locks are never given back: they
   * go with the agent). */
  private readonly held = new Set<number>();
  /** Held and not in use, oldest given back first: a uid just given back is the last one taken
   * again (its processes are gone by then, but nothing of it should linger in the next job's
   * way). */
  private readonly free: number[] = [];
  /** Where the search for a new uid starts. */
  private next = 0;

  constructor(
    private readonly agent: MountAgent,
    stateRoot: string,
  ) {
    this.dir = join(stateRoot, 'uids');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async lease(): Promise<number> {
    const reused = this.free.shift();
    if (reused !== undefined) return reused;
    for (let tried = 0; tried < SANDBOX_UID_COUNT; tried++) {
      const uid = SANDBOX_UID + this.next;
      this.next = (this.next + 1) % SANDBOX_UID_COUNT;
      if (this.held.has(uid)) continue;
      const reply = await this.agent.request('lock', { path: join(this.dir, String(uid)) });
      // Another worker's on this machine: try the next.
      if (reply.acquired !== true) continue;
      this.held.add(uid);
      return uid;
    }
    throw new PoolError('uid', 'EAGAIN', `all ${SANDBOX_UID_COUNT} sandbox uids (from ${SANDBOX_UID}) are in use on this machine`);
  }

  /** Back on the free list, still locked. */
  release(uid: number): void {
    this.free.push(uid);
  }
}
