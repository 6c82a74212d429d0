// Releasing what dead pool owners left in a pool state dir (mounts, cgroups, files), the way a new
// worker would: a new pool reclaims every dead owner's dir under its state root when it starts.
import { createExecutor } from '../../src/executor/create.js';
import { dataDirFromEnv } from '../../src/images/paths.js';

export async function reclaimPoolState(stateRoot: string): Promise<void> {
  // No pool of its own: nothing is prepared only to be torn down again.
  const executor = await createExecutor({
    dataDir: dataDirFromEnv(),
    pool: { stateRoot, warmImages: [], sizing: { minReady: 0, maxReady: 0 }, prewarmContainers: false },
  });
  await executor.close();
}
