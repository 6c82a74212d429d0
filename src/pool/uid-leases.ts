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
// service) still run their programs on one kernel. A uid given back stays leased to this owner
// on a free list, taken first, up to UidLeases.keptFree of them; one more is unlocked (the oldest
// on the list), so that the uids an owner holds follow its slots of now, not the most it ever had
// at once (one worker of 4 + 4 slots held 127 after a mixed load of ~16 images, and the workers of
// a large machine could together reach the 1024 at their peaks). In the steady state a slot's uid
// still costs no agent request: a slot destroyed is followed by its replacement's preparation.
//
// A lease file is never removed, not when its lease ends either: the dir holds one empty file per
// uid ever leased on the machine since boot (at most SANDBOX_UID_COUNT, on /run's tmpfs: an inode
// each). Its presence is part of the lock: an owner leases by opening the path and then flocking
// what it opened (mount-agent.py, `lock`), with no look afterwards at whether that is still the
// file at the path. Removed as its holder let go, an owner that had opened it just before would
// then lock the removed file, while the next to open the path created and locked a new one: two
// owners of one uid (as lock-file.ts says of lock files taken in turn). A look after the flock
// (fstat against stat of the path, and try again) would make removal safe only once every owner
// on the machine looked, and the dir is shared by every version of every service on it (two
// services, a worker container binding the host's /run/cellblock, a rolling upgrade).
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeDirectory } from '../make-directory.js';
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

/** How many uids given back an owner keeps leased, free, before it unlocks the oldest of them. A
 * uid leased anew costs an agent request (~0.1 ms here), and one unlocked another (~0.1 ms): small
 * beside a slot's preparation (milliseconds), so the list need not cover every burst. Sixteen
 * covers what comes back between one slot's teardown and its replacement's lease in the steady
 * state (the slots of a burst of a 4 + 4-slot worker), and the machine's workers keep little of
 * the 1024 idle (eight worker processes: 128 at most). */
export const UIDS_KEPT_FREE = 16;

export interface UidLeasesOptions {
  /** How many uids from SANDBOX_UID may be leased: SANDBOX_UID_COUNT, the images' range (fewer in
   * the tests of a pool at its bound). */
  count?: number;
  /** UIDS_KEPT_FREE by default. */
  keptFree?: number;
}

/** Whether `err` says that a lease found every uid of the range leased by this machine's owners
 * (its owner's free list empty). */
export function isUidShortage(err: unknown): err is PoolError {
  return err instanceof PoolError && err.op === 'uid' && err.code === 'EAGAIN';
}

export class UidLeases {
  /** Every uid this owner holds the lock of, in use or free, and the agent's id of that lock. */
  private readonly lockIds = new Map<number, unknown>();
  /** Held and not in use, oldest given back first: a uid just given back is the last one taken
   * again (its processes are gone by then, but nothing of it should linger in the next job's
   * way). At most keptFree. */
  private readonly free: number[] = [];
  /** Held for good: see withhold. */
  private readonly withheldUids = new Set<number>();
  /** Where the search for a new uid starts. */
  private next = 0;
  readonly count: number;
  readonly keptFree: number;

  constructor(
    private readonly agent: Pick<MountAgent, 'request'>,
    private readonly dir: string,
    options: UidLeasesOptions = {},
  ) {
    this.count = options.count ?? SANDBOX_UID_COUNT;
    this.keptFree = options.keptFree ?? UIDS_KEPT_FREE;
    // Not a recursive mkdir, which never returns under /proc: one that says why in one line (a
    // DirectoryError naming the path, or the file in its way).
    makeDirectory(this.dir, 0o700);
  }

  /** Uids this owner holds the lock of (in use or free). */
  get held(): number {
    return this.lockIds.size;
  }

  /** Uids this owner keeps locked for good (withhold): counted in `held` too. */
  get withheld(): number {
    return this.withheldUids.size;
  }

  /** A uid kept free first; else, unless `search` is false, the first of the range that no owner
   * holds, which costs an agent request per uid tried (up to `count` of them, ~0.1 ms each). Throws
   * PoolError uid EAGAIN (isUidShortage) when there is none. */
  async lease(options: { search?: boolean } = {}): Promise<number> {
    const reused = this.free.shift();
    if (reused !== undefined) return reused;
    if (options.search === false) throw this.shortage();
    for (let tried = 0; tried < this.count; tried++) {
      const uid = SANDBOX_UID + this.next;
      this.next = (this.next + 1) % this.count;
      if (this.lockIds.has(uid)) continue;
      const reply = await this.agent.request('lock', { path: join(this.dir, String(uid)) });
      // Another worker's on this machine: try the next.
      if (reply.acquired !== true) continue;
      this.lockIds.set(uid, reply.lockId);
      return uid;
    }
    throw this.shortage();
  }

  private shortage(): PoolError {
    return new PoolError('uid', 'EAGAIN', `all ${this.count} sandbox uids (from ${SANDBOX_UID}) are in use on this machine`);
  }

  /** Back on the free list, still locked; past keptFree, the oldest there is unlocked (settles when
   * the agent has; never rejects). Its lease file stays (see the top of this file). */
  async release(uid: number): Promise<void> {
    this.free.push(uid);
    if (this.free.length <= this.keptFree) return;
    const unlocked = this.free.shift()!;
    const lockId = this.lockIds.get(unlocked);
    // Forgotten before the agent is asked: a lease that tries this uid meanwhile asks the agent
    // after this request, and it answers in order (the lock is given up before it is asked anew).
    this.lockIds.delete(unlocked);
    // An agent that cannot answer is gone, and its locks with it.
    await this.agent.request('unlock', { lockId }).catch(() => undefined);
  }

  /** For a uid whose slot's teardown failed: processes of it may live on, and the next slot given
   * it would share its per-user limits, and could signal them or be signalled. It stays locked by
   * this owner, neither on the free list nor unlocked, and goes with the agent when the owner
   * exits. */
  withhold(uid: number): void {
    this.withheldUids.add(uid);
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
