// One build at a time per data directory: two builders renaming the same layer or rewriting the
// same image record would race. The lock is a file holding the builder's pid; a lock whose pid
// is gone (a builder that died) is taken over, one builder at a time (removeStaleLock).
import { linkSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from '../processes.js';
import { ImageStoreError } from './errors.js';

function holderPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A takeover lock older than this was left by a builder that died within removeStaleLock's few
 * lines: it is removed. */
const TAKEOVER_STALE_MS = 10_000;
/** Between looks while another builder takes a stale lock over. */
const TAKEOVER_WAIT_MS = 10;

/** Links a file holding our pid at `path`: true if it was not there (the lock is ours). */
function linkOwnPid(path: string): boolean {
  // link(2) of a file already holding our pid: the lock never exists without its holder.
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, `${process.pid}\n`);
  try {
    linkSync(mine, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    rmSync(mine, { force: true });
  }
}

/**
 * Removes the lock at `path` if it is still `stalePid`'s (a holder seen dead a moment ago, or
 * undefined for a lock that named none); false when another builder is taking it over meanwhile.
 * Exclusive: two builders that saw the same dead holder would otherwise each remove the lock the
 * other had just taken in its place, and both build. The takeover is itself a lock
 * (`<path>.takeover`, linked as the lock is); one left by a builder that died in these few lines
 * is removed once it is TAKEOVER_STALE_MS old.
 */
export function removeStaleLock(path: string, stalePid: number | undefined): boolean {
  const takeover = `${path}.takeover`;
  if (!linkOwnPid(takeover)) {
    try {
      if (Date.now() - statSync(takeover).mtimeMs > TAKEOVER_STALE_MS) rmSync(takeover, { force: true });
    } catch {
      // Gone meanwhile: its taker finished.
    }
    return false;
  }
  try {
    if (holderPid(path) === stalePid) rmSync(path, { force: true });
    return true;
  } finally {
    rmSync(takeover, { force: true });
  }
}

/** Takes the data dir's build lock, waiting up to `waitMs` for another live builder. */
export async function acquireBuildLock(
  dataDir: string,
  waitMs: number,
  onWait: (holder: number) => void = () => {},
): Promise<() => void> {
  const path = join(dataDir, 'build.lock');
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    if (linkOwnPid(path)) return () => rmSync(path, { force: true });
    const holder = holderPid(path);
    if (holder === undefined || !processAlive(holder)) {
      if (!removeStaleLock(path, holder)) await sleep(TAKEOVER_WAIT_MS);
      continue;
    }
    if (Date.now() >= deadline) throw new ImageStoreError(`another image build (pid ${holder}) holds ${path}`);
    if (!told) onWait(holder);
    told = true;
    await sleep(500);
  }
}
