// One build at a time per data directory: two builders renaming the same layer or rewriting the
// same image record would race. The lock is an flock(2) on `build.lock` (src/lock-file.ts), held
// for the build's lifetime: the kernel drops it when the builder exits or dies, however (SIGKILL,
// a crash), so a lock left by a dead builder is free at once and never mistaken for a live one,
// whatever pid the file names or a later process is given (a restarted container's builder often
// gets its predecessor's pid), and builders in other pid namespaces (containers sharing the data
// dir's volume) exclude each other too. The file holds the holder's pid only for the waiting
// message (a pid of the holder's own pid namespace; the last holder's once none holds it), and is
// never removed (lock-file.ts: removing a lock file others take races).
import { closeSync, ftruncateSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NativeAddonMissingError } from '../native-addon.js';
import { tryHoldLockFile } from '../lock-file.js';
import { ImageStoreError } from './errors.js';

/** Between looks at a lock another builder holds. */
const WAIT_STEP_MS = 500;

/** The pid the holder wrote, if it has written one yet. */
function holderPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock at `path` without waiting: its fd, or undefined when another holds it. */
function tryLock(path: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = tryHoldLockFile(path);
  } catch (err) {
    if (err instanceof NativeAddonMissingError) throw new ImageStoreError(`the build lock (${path}) is an flock, taken through the native addon: ${err.message}`);
    throw new ImageStoreError(`cannot lock ${path}: ${(err as Error).message}`);
  }
  if (fd === undefined) return undefined;
  // Our pid over the last holder's: written at the start, then the rest cut, so that a waiter
  // reads one pid or the other, never a mix.
  const text = `${process.pid}\n`;
  try {
    writeSync(fd, text, 0);
    ftruncateSync(fd, Buffer.byteLength(text));
  } catch (err) {
    closeSync(fd);
    throw new ImageStoreError(`cannot write ${path}: ${(err as Error).message}`);
  }
  return fd;
}

/**
 * Takes the data dir's build lock, waiting up to `waitMs` for a builder that holds it (`onWait`
 * is told once, with the pid it wrote, if any); `signal` ends the wait (rejecting with its
 * reason). Returns the release, which may be called more than once.
 */
export async function acquireBuildLock(
  dataDir: string,
  waitMs: number,
  onWait: (holder: number | undefined) => void = () => {},
  signal?: AbortSignal,
): Promise<() => void> {
  const path = join(dataDir, 'build.lock');
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    signal?.throwIfAborted();
    const fd = tryLock(path);
    if (fd !== undefined) {
      let held = true;
      return () => {
        if (held) closeSync(fd);
        held = false;
      };
    }
    const holder = holderPid(path);
    const left = deadline - Date.now();
    if (left <= 0) throw new ImageStoreError(`another image build${holder === undefined ? '' : ` (pid ${holder})`} holds ${path}`);
    if (!told) onWait(holder);
    told = true;
    try {
      await sleep(Math.min(WAIT_STEP_MS, left), undefined, signal ? { signal } : undefined);
    } catch (err) {
      signal?.throwIfAborted();
      throw err;
    }
  }
}
