// Lock files held with flock(2): a lock belongs to an open file, so the kernel drops it when its
// holder closes the file or dies, however it dies (SIGKILL, a crash, a reboot), whatever its pid
// or pid namespace. Unlike a pid written in a file, it cannot outlive its holder nor be mistaken
// for the lock of a later process given the same pid (a restarted container's processes are
// numbered from 1 again), and it excludes the processes of every pid namespace of one kernel (on
// NFS, whose Linux client passes flock on to the server's locks, those of several hosts). Used by
// the sandbox (an instance proves it is alive) and the image builder (one build per data dir).
// Node has no flock: these are the native addon's (native/src/lockfile.cc), loaded at the first
// call. A lock file that several processes take in turn (the build lock) is never unlinked: one
// that had opened the old file would lock it while another created and locked a new one, and both
// would hold "the" lock.
import os from 'node:os';
import { loadNativeAddon } from './native-addon.js';

interface LockFileFunctions {
  /** Opens (creating, 0600) and locks the file without waiting: the fd, close-on-exec. Throws
   * with `errno` (EWOULDBLOCK: another open file holds it). */
  holdLockFile(path: string): number;
  /** Whether an open file holds the lock. Throws with `errno` when the file cannot be opened. */
  isLockFileHeld(path: string): boolean;
}

const functions = (): LockFileFunctions => loadNativeAddon() as LockFileFunctions;

/** Takes the lock of `path` (created if missing), without waiting; the lock lasts as long as
 * the returned fd is open (close it with fs.closeSync). Throws, with `errno`, when it is held
 * (EWOULDBLOCK) or the file cannot be opened. */
export function holdLockFile(path: string): number {
  return functions().holdLockFile(path);
}

/** As holdLockFile, but undefined when another open file holds the lock: another process, or
 * another open of the file in this one (flock locks of two opens of one file exclude each other). */
export function tryHoldLockFile(path: string): number | undefined {
  try {
    return functions().holdLockFile(path);
  } catch (err) {
    if ((err as { errno?: number }).errno === os.constants.errno.EWOULDBLOCK) return undefined;
    throw err;
  }
}

/** Whether some open file holds the lock of `path`. Throws, with `errno`, when it cannot be
 * opened (ENOENT: there is no such lock file). */
export function isLockFileHeld(path: string): boolean {
  return functions().isLockFileHeld(path);
}
