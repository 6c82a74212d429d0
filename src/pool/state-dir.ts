// The pool owner's state directory and crash recovery. Each pool owner (a worker process) keeps
// its slots under <stateRoot>/owner-<id>/, holding an flock on <dir>/lock for as long as it lives
// (the lock is held by the owner's mount agent, which dies with it). On start, an owner reclaims
// every owner dir whose lock it can take: that owner is dead, so its mounts, cgroups and files
// are leftovers. A dir whose lock is held belongs to a live owner and is never touched. It does
// so before it makes its own: a dead owner's files (its kept judge compiles) may be what fills the
// state dir's filesystem, and its replacement could otherwise never start.
import { mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MountAgent } from './mount-agent.js';
import { mountPointsUnder } from './mountinfo.js';
import { PoolError } from './types.js';
import { makeDirectory } from '../make-directory.js';

const OWNER_PREFIX = 'owner-';
const NEW_PREFIX = '.new-';
const LOCK_FILE = 'lock';
/** Slots live on a small tmpfs of the owner's: creating and removing a slot's dirs on a disk
 * filesystem costs ~4 ms per rmdir here (ext4 journal), on tmpfs microseconds. */
const SLOTS_DIR = 'slots';
const SLOTS_TMPFS_BYTES = 1 << 20;
/** The state root's mode: its slots hold the jobs' files, for root (and each job's own uid) alone. */
export const STATE_ROOT_MODE = 0o700;

export interface OwnerDir {
  ownerId: string;
  dir: string;
  /** Where this owner's slot dirs go (a tmpfs inside `dir`). */
  slotsDir: string;
  lockId: number;
}

export interface ReclaimReport {
  /** Owner dirs of dead owners that were removed. */
  ownerDirs: string[];
  /** Mount points unmounted inside them. */
  mounts: string[];
  /** Owner dirs skipped because their owner is alive. */
  liveOwners: string[];
}

/** Errors of a filesystem with no room left: its blocks or inodes (ENOSPC; a tmpfs's nr_inodes),
 * or the user's quota (EDQUOT). */
const NO_ROOM_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** `err` as the pool's refusal of a state dir with no room (PoolError, op `stateDir`) where it is
 * such an error, said without a stack: a worker that cannot make its files there says so in one
 * line (src/bin names the setting). Any other error as it is. */
export function noRoomError(stateRoot: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !NO_ROOM_CODES.has(code)) return err;
  const why = code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device';
  return new PoolError(
    'stateDir',
    code,
    `${stateRoot} has no room for this worker's files (${why}, ${code}), with what dead workers left there reclaimed: free space or inodes on its filesystem (df -h, df -i), or give the workers a larger one`,
  );
}

/** Creates and locks this owner's dir. The dir is made and locked under a temporary name and
 * then renamed, so that no other owner ever sees an `owner-` dir whose lock is not yet held. A
 * filesystem with no room for it is a PoolError `stateDir` (noRoomError). */
export async function claimOwnerDir(agent: MountAgent, stateRoot: string): Promise<OwnerDir> {
  try {
    return await claimOwnerDirIn(agent, stateRoot);
  } catch (err) {
    throw noRoomError(stateRoot, err);
  }
}

async function claimOwnerDirIn(agent: MountAgent, stateRoot: string): Promise<OwnerDir> {
  // Not a recursive mkdir (which never returns on some kernel filesystems): made with its checks.
  makeDirectory(stateRoot, STATE_ROOT_MODE);
  for (let attempt = 0; attempt < 5; attempt++) {
    const ownerId = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmp = join(stateRoot, `${NEW_PREFIX}${ownerId}`);
    mkdirSync(tmp, { mode: 0o700 });
    const reply = await agent.request('lock', { path: join(tmp, LOCK_FILE) }).catch((err: unknown) => {
      // Gone: another owner's reclaim took the lock of this dir, half made and not yet locked, as
      // a dead owner's, and removed it before this lock's open. Another name, as below.
      if (err instanceof PoolError && err.code === 'ENOENT') return undefined;
      // Its lock file could not be made (no inode left, say): the empty dir goes with the failure,
      // rather than stay for ever as a dir no owner can lock, hence reclaim.
      try {
        rmdirSync(tmp);
      } catch {
        // Not empty (a reclaimer's lock file after all) or gone: the next start sees to it.
      }
      throw err;
    });
    // A reclaimer took it in the instant before (and removes it), or has removed it: try another.
    if (reply?.acquired !== true) continue;
    const dir = join(stateRoot, `${OWNER_PREFIX}${ownerId}`);
    try {
      renameSync(tmp, dir);
    } catch {
      await agent.request('unlock', { lockId: reply.lockId });
      continue;
    }
    const slotsDir = join(dir, SLOTS_DIR);
    await agent.request('mountTmpfs', { path: slotsDir, bytes: SLOTS_TMPFS_BYTES });
    return { ownerId, dir, slotsDir, lockId: reply.lockId as number };
  }
  throw new PoolError('claimOwnerDir', 'EBUSY', `could not claim an owner dir under ${stateRoot}`);
}

/** Reclaims every dead owner's dir under `stateRoot`. Called before this owner claims a dir of its
 * own (pool.ts), so every dir found is another owner's. */
export async function reclaimStaleOwners(agent: MountAgent, stateRoot: string): Promise<ReclaimReport> {
  const report: ReclaimReport = { ownerDirs: [], mounts: [], liveOwners: [] };
  let names: string[];
  try {
    names = readdirSync(stateRoot);
  } catch {
    return report;
  }
  for (const name of names) {
    const prefix = name.startsWith(OWNER_PREFIX) ? OWNER_PREFIX : name.startsWith(NEW_PREFIX) ? NEW_PREFIX : undefined;
    if (!prefix) continue;
    const dir = join(stateRoot, name);
    const outcome = await reclaimOwnerDir(agent, dir);
    if (outcome === 'held') {
      report.liveOwners.push(dir);
    } else if (outcome !== 'unlockable') {
      report.mounts.push(...outcome);
      report.ownerDirs.push(dir);
    }
  }
  return report;
}

/** Reclaims one owner dir if its lock can be taken (its owner's agent is dead): unmounts what is
 * mounted under it (detached: a straggler may hold it busy) and removes it, holding the lock
 * meanwhile. Returns the mount points unmounted; 'held' when another holds the lock (a live owner,
 * or another owner reclaiming it now), 'unlockable' when its lock file cannot be opened (the dir
 * vanished, or is unreadable: not ours to judge). */
export async function reclaimOwnerDir(agent: MountAgent, dir: string): Promise<string[] | 'held' | 'unlockable'> {
  const reply = await agent.request('lock', { path: join(dir, LOCK_FILE) }).catch(() => undefined);
  if (!reply) return 'unlockable';
  if (reply.acquired !== true) return 'held';
  try {
    const mounts: string[] = [];
    for (const point of mountPointsUnder(dir)) {
      await agent.request('umount', { path: point, detach: true });
      mounts.push(point);
    }
    const left = mountPointsUnder(dir);
    // Never recurse into a tree that still has a mount in it: rm would walk into it.
    if (left.length > 0) throw new PoolError('reclaim', 'EBUSY', `mounts left under ${dir}: ${left.join(', ')}`);
    rmSync(dir, { recursive: true, force: true });
    return mounts;
  } finally {
    await agent.request('unlock', { lockId: reply.lockId });
  }
}

/** Removes this owner's own dir at a clean shutdown (its slots must be destroyed already). */
export async function releaseOwnerDir(agent: MountAgent, owner: OwnerDir): Promise<void> {
  await agent.request('umount', { path: owner.slotsDir, detach: false });
  const left = mountPointsUnder(owner.dir);
  if (left.length > 0) throw new PoolError('release', 'EBUSY', `mounts left under ${owner.dir}: ${left.join(', ')}`);
  rmSync(owner.dir, { recursive: true, force: true });
  await agent.request('unlock', { lockId: owner.lockId });
}
