// A worker's executor across a rebuild of its image and an `images prune`: the old build's layers
// go once no root has them mounted, and the executor must then take the image's current build
// rather than mount layers that are gone. A data dir of its own, whose busybox image is a copy
// of the built one's layer; the pool disabled, so that no root keeps a layer mounted between jobs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createExecutor } from '../../src/executor/create.js';
import type { Executor } from '../../src/executor/executor.js';
import { pruneLayers } from '../../src/images/prune.js';
import { openImageStore } from '../../src/images/store.js';
import { until } from '../helpers/until.js';
import { dataDir as builtDataDir, executorSkipReason, SH } from './helpers.js';

const skip = executorSkipReason(['busybox']);
if (skip) console.log(`SKIP image rebuild tests: ${skip}`);

let scratch: string;
let executor: Executor | undefined;
const store = () => openImageStore(join(scratch, 'data'));

/** A build of the busybox image in the scratch data dir: a copy of the built image's layer
 * under a new hash, recorded as the image. Returns the hash. */
function buildCopy(): string {
  const [source] = openImageStore(builtDataDir).layerHashes('busybox')!;
  const hash = randomBytes(32).toString('hex');
  const layers = join(scratch, 'data', 'layers');
  mkdirSync(layers, { recursive: true });
  execFileSync('cp', ['-a', join(openImageStore(builtDataDir).layersDir, source!), join(layers, hash)]);
  mkdirSync(join(scratch, 'data', 'images'), { recursive: true });
  const record = { name: 'busybox', hash, layers: [hash], builtAt: new Date().toISOString() };
  writeFileSync(join(scratch, 'data', 'images', 'busybox.json'), JSON.stringify(record));
  return hash;
}

before(() => {
  if (skip) return;
  scratch = mkdtempSync(join(tmpdir(), 'cellblock-rebuild-test-'));
});
after(async () => {
  if (skip) return;
  await executor?.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('after a rebuild and a prune of the old layers, jobs run on the current build', { skip }, async () => {
  const first = buildCopy();
  executor = await createExecutor({
    dataDir: join(scratch, 'data'),
    runtimes: [SH],
    pool: { sizing: { minReady: 0, maxReady: 0 }, prewarmContainers: false },
    sandbox: { instanceId: `rebuildtest-${process.pid}` },
  });
  const job = { runtimeId: 'sh', files: [{ name: 'main.sh', content: Buffer.from('echo hi') }] };
  const before = await executor.execute(job);
  assert.equal(before.verdict, 'ok', JSON.stringify(before.run?.error));

  const second = buildCopy();
  // The first job's root is unmounted by the pool's upkeep, an instant after its result.
  await until(async () => (await pruneLayers(store())).removed.includes(first), 10_000, 50, 'the old layer pruned');
  assert.deepEqual(store().layers(), [second]);

  const afterPrune = await executor.execute(job);
  assert.equal(afterPrune.verdict, 'ok', JSON.stringify(afterPrune.run?.error ?? afterPrune));
  assert.equal(Buffer.from(afterPrune.run!.stdout).toString(), 'hi\n');
});
