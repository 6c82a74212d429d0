// How many pool slots (each a sandbox uid) one job holds at once, counted on a fake pool and stage
// runner (no sandbox): MOST_SLOTS_PER_JOB and COMPILED_JOB_SLOTS, on which a worker's start bounds
// its jobs at once against the machine's 1024 uids (config.ts checkSandboxUids), are what the
// executor takes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { StageRunner } from '../../src/executor/engine.js';
import { SubmissionExecutor } from '../../src/executor/executor.js';
import { COMPILED_JOB_SLOTS, MOST_SLOTS_PER_JOB } from '../../src/executor/slot-keys.js';
import type { ExecuteRequest } from '../../src/executor/types.js';
import type { Pool } from '../../src/pool/index.js';
import { fakePool, SH, SHC, stageOutcome } from './helpers.js';

const skip = process.getuid?.() === 0 ? false : "needs root: the work dirs' files are chowned to the sandbox's uid";
const scratch = mkdtempSync(join(tmpdir(), 'cellblock-slots-per-job-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ok = stageOutcome('ok', 0);

/** The most slots `request` held at once, on a pool that counts its takes and releases. */
async function mostSlotsHeld(name: string, request: ExecuteRequest): Promise<number> {
  const pool = fakePool(join(scratch, name));
  let held = 0;
  let most = 0;
  const counting = {
    ...pool,
    take: async (key: string) => {
      most = Math.max(most, ++held);
      return pool.take(key);
    },
    release: () => void held--,
  } as Pool<never>;
  const runner: StageRunner<never> = {
    run: async () => ok,
    runConnected: async () => [ok, ok],
    runStreaming: () => assert.fail('no live job here'),
  };
  const executor = new SubmissionExecutor([SH, SHC], counting, runner);
  try {
    const result = await executor.execute(request);
    assert.equal(result.verdict, 'ok', JSON.stringify(result));
  } finally {
    await executor.close();
  }
  assert.equal(held, 0, 'every slot given back');
  return most;
}

const compiled = { runtimeId: 'shc', files: [{ name: 'main.sh', content: Buffer.from('echo 1\n') }] };
const judge = { runtimeId: 'shc', files: [{ name: 'judge.sh', content: Buffer.from('exit 0\n') }] };
const tests = [{ stdin: '1\n' }, { stdin: '2\n' }];

test('an interactive job with a compiled program and a compiled interactor holds MOST_SLOTS_PER_JOB slots at once', { skip }, async () => {
  assert.equal(await mostSlotsHeld('interactive', { ...compiled, tests, interactor: judge }), MOST_SLOTS_PER_JOB);
});

test("a checked job holds one fewer; a compiled runtime's other jobs COMPILED_JOB_SLOTS, an interpreted runtime's one", { skip }, async () => {
  assert.equal(await mostSlotsHeld('checked', { ...compiled, tests, checker: judge }), MOST_SLOTS_PER_JOB - 1);
  assert.equal(await mostSlotsHeld('tests', { ...compiled, tests }), COMPILED_JOB_SLOTS);
  assert.equal(await mostSlotsHeld('plain', compiled), COMPILED_JOB_SLOTS);
  // So COMPILED_JOB_SLOTS is not every job's least (the start's refusal says whose it is).
  const interpreted = { ...compiled, runtimeId: 'sh' };
  assert.equal(await mostSlotsHeld('interpreted', interpreted), 1);
  assert.equal(await mostSlotsHeld('interpreted-tests', { ...interpreted, tests }), 1);
});
