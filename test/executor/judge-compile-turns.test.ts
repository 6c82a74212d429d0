// Which job compiles a judge program after another's compile of it failed, with the executor on a
// fake pool and stage runner (no sandbox): a compile that hit a limit (a busy host) gives its turn
// to one waiting job while the others wait on (one compile at a time), where the compiler's own
// error would send every waiting job into the same compile at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CompileCache } from '../../src/executor/compile-cache.js';
import type { StageRunner, StageSpec } from '../../src/executor/engine.js';
import { SubmissionExecutor } from '../../src/executor/executor.js';
import type { ExecuteRequest } from '../../src/executor/types.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { RunResult } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';
import { fakePool, stageOutcome } from './helpers.js';

const skip = process.getuid?.() === 0 ? false : "needs root: the work dirs' files are chowned to the sandbox's uid";
const scratch = mkdtempSync(join(tmpdir(), 'cellblock-judge-turns-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const runtimes = loadRuntimes().filter((runtime) => runtime.id === 'python' || runtime.id === 'c');

/** Three jobs at once with the same checker (C, compiled), whose first compile ends `first`;
 * answers how many of the checker's compiles ran, and the most at once. */
let calls = 0;

async function threeJobs(first: RunResult): Promise<{ compiles: number; mostAtOnce: number }> {
  const dir = join(scratch, `jobs-${++calls}`);
  const pool = fakePool(dir);
  let compiles = 0;
  let running = 0;
  let mostAtOnce = 0;
  const runner: StageRunner<never> = {
    run: async (_slot, stage: StageSpec) => {
      if (stage.argv[0] !== '/usr/bin/gcc') return stageOutcome('ok', 0);
      const n = ++compiles;
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await new Promise((resolve) => setTimeout(resolve, 50));
      running--;
      return n === 1 ? first : stageOutcome('ok', 0);
    },
    runConnected: () => assert.fail('no interactive test here'),
    runStreaming: () => assert.fail('no live job here'),
  };
  const judgeCompiles = new CompileCache(join(dir, 'cache'), 64 * MiB, () => 'build');
  const executor = new SubmissionExecutor(runtimes, pool, runner, { judgeCompiles });
  const job: ExecuteRequest = {
    runtimeId: 'python',
    files: [{ name: 'main.py', content: Buffer.from('print(1)\n') }],
    tests: [{ stdin: '', expectedOutput: '1\n' }],
    checker: { runtimeId: 'c', files: [{ name: 'checker.c', content: Buffer.from('int main(void) { return 0; }\n') }] },
  };
  let verdicts: string[];
  try {
    const settled = await Promise.allSettled([executor.execute(job), executor.execute(job), executor.execute(job)]);
    verdicts = settled.map((job) => (job.status === 'fulfilled' ? job.value.verdict : `threw: ${String(job.reason)}`));
  } finally {
    await executor.close();
    await judgeCompiles.close();
  }
  // The first job's checker did not compile; the others' did (kept, or compiled in their turn).
  assert.deepEqual(verdicts, ['compile_error', 'ok', 'ok']);
  return { compiles, mostAtOnce };
}

test('a judge compile that hit a limit gives its turn to one waiting job: one compile at a time', { skip }, async () => {
  const limitHit = { ...stageOutcome('cpu_time_limit', null), signal: 9, signalName: 'SIGKILL' };
  assert.deepEqual(await threeJobs(limitHit), { compiles: 2, mostAtOnce: 1 });
});

test("the compiler's own error sends the waiting jobs into the same compile at once (it would fail alike)", { skip }, async () => {
  assert.deepEqual(await threeJobs(stageOutcome('runtime_error', 1)), { compiles: 3, mostAtOnce: 2 });
});
