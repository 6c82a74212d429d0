// One build at a time per data directory: two builders renaming the same layer or rewriting the
// same image record would race. The lock is a file holding the builder's pid; a lock whose pid
// is gone (a builder that died) is taken over.
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageStoreError } from './errors.js';

function holderPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A zombie (dead, not yet reaped by its parent) holds nothing any more. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
    // link(2) of a file already holding our pid: the lock never exists without its holder.
    const mine = `${path}.${process.pid}`;
    writeFileSync(mine, `${process.pid}\n`);
    try {
      linkSync(mine, path);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(mine, { force: true });
    }
    const holder = holderPid(path);
    if (holder === undefined || !alive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new ImageStoreError(`another image build (pid ${holder}) holds ${path}`);
    if (!told) onWait(holder);
    told = true;
    await sleep(500);
  }
}
