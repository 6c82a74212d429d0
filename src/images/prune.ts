// Removes layers that no image record uses any more (left by rebuilds of changed definitions).
// A layer still mounted anywhere — in any process's mount namespace, e.g. a pool's overlay that
// was set up before the rebuild — is kept: deleting files under a mounted lowerdir would break
// the containers using it.
import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { acquireBuildLock } from './build-lock.js';
import type { ImageStore } from './store.js';

export interface PruneReport {
  removed: string[];
  keptMounted: string[];
  freedBytes: number;
}

/** Every mountinfo line of every process: mounts of all mount namespaces on the machine. */
function allMountInfo(): string {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
    } catch {
      // The process ended, or its mountinfo is not readable: nothing to learn from it.
    }
  }
  return lines.join('');
}

export async function pruneLayers(store: ImageStore): Promise<PruneReport> {
  const release = await acquireBuildLock(store.dataDir, 0);
  try {
    const used = new Set(store.list().flatMap((image) => store.layerHashes(image.name) ?? []));
    const unused = store.layers().filter((h) => !used.has(h));
    const mounts = unused.length ? allMountInfo() : '';
    const report: PruneReport = { removed: [], keptMounted: [], freedBytes: 0 };
    for (const hash of unused) {
      if (mounts.includes(join(store.layersDir, hash))) {
        report.keptMounted.push(hash);
        continue;
      }
      report.freedBytes += store.layerRecord(hash)?.sizeBytes ?? 0;
      // Renamed out of the store first, so that no reader ever sees a half-deleted layer.
      const doomed = join(store.layersDir, `.prune-${hash}`);
      renameSync(join(store.layersDir, hash), doomed);
      rmSync(doomed, { recursive: true, force: true });
      rmSync(join(store.logsDir, `${hash}.log`), { force: true });
      report.removed.push(hash);
    }
    return report;
  } finally {
    release();
  }
}
