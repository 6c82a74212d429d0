// A uid of its own for each live slot. The kernel keeps some limits per user, whatever the
// namespaces: inotify instances (fs.inotify.max_user_instances, 128 by default), pending signals
// (RLIMIT_SIGPENDING), POSIX message queue bytes (RLIMIT_MSGQUEUE), pipe buffer pages
// (pipe-user-pages-soft). Programs of one shared uid share them: one job holding 128 inotify
// instances made another's inotify_init fail. isolate gives each box its own uid likewise.
//
// A lease is a flock on /run/cellblock/uids/<uid>, taken through the mount agent, so that the
// pools of every worker on a machine hand out distinct uids, and a dead owner's leases end with
// its agent. The dir is the machine's, as the engine's instance lock files beside it are (a worker
// container binds the host's /run/cellblock: docker-compose.dev.yml), not the pool's state root:
// workers with state roots of their own (two services, two compose projects, a test run beside a
// service) still run their programs on one kernel. A uid given back stays leased to this owner,
// on a free list taken first: in the steady state a slot's uid costs no agent request (a job makes
// one or two slots), and the owner holds about as many uids as it ever had slots at once.
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MountAgent } from './mount-agent.js';
import { SANDBOX_UID } from './root.js';
import { PoolError } from './types.js';

/** Slots' uids are SANDBOX_UID .. SANDBOX_UID + SANDBOX_UID_COUNT - 1; the images name each one
 * "sandbox" (images/build/finalize-root.sh). */
export const SANDBOX_UID_COUNT = 1024;

/** PoolOptions.uidLeaseDir's default: in the engine's lock dir (src/sandbox/sandbox.ts), which is
 * the machine's. */
export const DEFAULT_UID_LEASE_DIR = '/run/cellblock/uids';
/** Where versions before the machine-wide dir kept their leases: <stateRoot>/uids. */
const OLD_LEASE_DIR_NAME = 'uids';
const UID_NAME = /^[0-9]{1,10}$/;

export class UidLeases {
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
    private readonly dir: string,
  ) {
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

/** Removes the lease files an earlier version left in <stateRoot>/uids: nothing of this version
 * leases there. A file whose lock is held (a worker of that version still running on this state
 * root) stays, as does anything but a sandbox uid's file, and so does the dir itself: such a
 * worker made it once, at its start, and without it every lease it asks for would fail. (Removing a free
 * one can still race such a worker, as lock-file.ts says of lock files taken in turn: one that
 * opened it just before could lock it while another creates it anew. Only that version's workers
 * could then share a uid, as they may share them with this version's in the meantime anyway.) */
export async function removeOldUidLeases(agent: MountAgent, stateRoot: string, leaseDir: string): Promise<void> {
  const dir = join(stateRoot, OLD_LEASE_DIR_NAME);
  if (dir === resolve(leaseDir)) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // none: a state root made since, or already removed
  }
  for (const name of names) {
    if (!UID_NAME.test(name)) continue;
    const uid = Number(name);
    if (uid < SANDBOX_UID || uid >= SANDBOX_UID + SANDBOX_UID_COUNT) continue;
    const path = join(dir, name);
    if (!lstatSync(path, { throwIfNoEntry: false })?.isFile()) continue;
    const reply = await agent.request('lock', { path }).catch(() => undefined);
    if (reply?.acquired !== true) continue;
    try {
      rmSync(path, { force: true });
    } finally {
      await agent.request('unlock', { lockId: reply.lockId });
    }
  }
}
