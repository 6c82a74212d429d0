// One prepared root: an overlay over an image's read-only layers whose writable upper lives on
// the slot's own size-limited tmpfs, and beside it on that tmpfs the job's work dir, owned by the
// sandbox user, which the engine binds onto the root's work dir mount point. Made and destroyed
// by the mount agent; the slot dir is <ownerDir>/<slotName>.
import type { MountAgent } from './mount-agent.js';

/** The sandbox user (docs/theory-of-operation.md, "Identity inside the container"). */
export const SANDBOX_UID = 60000;
export const SANDBOX_GID = 60000;
/** Mount points the engine mounts over inside the container; made in the upper when missing. */
export const ENGINE_MOUNT_POINTS = ['proc', 'dev', 'tmp'];
/** RootSpec.workDir's default. */
export const DEFAULT_WORK_DIR = 'box';
/** RootSpec.upperInodes' default: files and directories on a slot's tmpfs (the work dir, and the
 * overlay's upper, which holds a few mount points: the root is read-only). A compile's work dir
 * is copied into every run's, file by file on the worker's event loop, so its size in entries
 * is bounded as its bytes are (tmpfs's own default is half the RAM's pages: millions). */
export const DEFAULT_UPPER_INODES = 8192;

export interface RootSpec {
  /** Host paths of the image's layers, lowest first (BuiltImage.layerPaths). */
  layerPaths: string[];
  /** Size of the slot's tmpfs: everything the job writes to its root (the work dir) counts. */
  upperBytes: number;
  /** Files and directories that tmpfs may hold; default DEFAULT_UPPER_INODES. */
  upperInodes?: number;
  /** Owner of the work dir: the uid its programs run as. Default SANDBOX_UID. */
  uid?: number;
  /** Work dir inside the root, without the leading slash. Default DEFAULT_WORK_DIR. */
  workDir?: string;
  /** Paths inside the root to look up once it is mounted (Runtime's startupPaths): a fresh
   * overlay makes a dentry and an inode on each path's first lookup, which then costs the job's
   * program instead of the pool's preparation. Missing ones too: the program's failed lookups
   * are as new to the overlay as the others. */
  startupPaths?: readonly string[];
}

export interface PreparedRoot {
  slotDir: string;
  /** Host path of the overlay: RunSpec.rootDir. */
  rootDir: string;
  /** Host path of the job's work dir (on the slot's tmpfs, beside the overlay): RunSpec.workDirHostPath. */
  workDirHostPath: string;
  /** Path of the work dir inside the container, e.g. "/box". */
  workDir: string;
  /** The work dir's owner and the uid its programs run as (RootSpec.uid). */
  uid: number;
  /** How many of RootSpec.startupPaths exist in this root (all were looked up); 0 for a root a
   * pool prepared on the spot for a waiting job (its program makes those lookups itself). */
  startupPathsFound: number;
}

export async function prepareRoot(agent: MountAgent, slotDir: string, spec: RootSpec): Promise<PreparedRoot> {
  const workDir = (spec.workDir ?? DEFAULT_WORK_DIR).replace(/^\/+/, '');
  const uid = spec.uid ?? SANDBOX_UID;
  const prepared = await agent.request('prepareRoot', {
    slotDir,
    layerPaths: spec.layerPaths,
    upperBytes: spec.upperBytes,
    upperInodes: spec.upperInodes ?? DEFAULT_UPPER_INODES,
    workDir,
    uid,
    gid: SANDBOX_GID,
    mountPoints: ENGINE_MOUNT_POINTS,
    startupPaths: spec.startupPaths ?? [],
  });
  return {
    slotDir,
    rootDir: String(prepared.rootDir),
    workDirHostPath: String(prepared.workDirHostPath),
    workDir: `/${workDir}`,
    uid,
    startupPathsFound: Number(prepared.startupPathsFound),
  };
}

/** Unmounts the overlay and drops its tmpfs: everything the job wrote is gone with it. */
export async function destroyRoot(agent: MountAgent, root: PreparedRoot): Promise<void> {
  await agent.request('destroyRoot', { slotDir: root.slotDir, detach: false }).catch(async (err: unknown) => {
    // EBUSY: something (a straggler of the job) still has it open; detach instead of leaking.
    if ((err as { code?: string }).code !== 'EBUSY') throw err;
    await agent.request('destroyRoot', { slotDir: root.slotDir, detach: true });
  });
}
