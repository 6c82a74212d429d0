// What a job's failure says when the pool could not make its slot, with the executor on a fake
// pool and stage runner (no sandbox, no root).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExecutorError } from '../../src/executor/errors.js';
import { SubmissionExecutor } from '../../src/executor/executor.js';
import type { StageRunner } from '../../src/executor/engine.js';
import { PoolError, type Pool } from '../../src/pool/index.js';
import { SH } from './helpers.js';

test("a job whose slot finds no sandbox uid free fails saying so (no_sandbox_uid), not by the pool's op and code", async () => {
  const shortage = new PoolError('uid', 'EAGAIN', "no sandbox uid is free: all 1024 of this machine (60000-61023) are leased by its workers' slots, and this worker had no idle slot to give one up");
  const pool = {
    take: async () => {
      throw shortage;
    },
    release: () => {},
    unusable: undefined,
    close: async () => {},
  } as unknown as Pool<never>;
  const runner: StageRunner<never> = {
    run: () => assert.fail('nothing runs without a slot'),
    runConnected: () => assert.fail('nothing runs without a slot'),
    runStreaming: () => assert.fail('nothing runs without a slot'),
  };
  const executor = new SubmissionExecutor([SH], pool, runner);
  try {
    await assert.rejects(
      executor.execute({ runtimeId: 'sh', files: [{ name: 'main.sh', content: Buffer.from('echo hi\n') }] }),
      (err: unknown) => {
        assert.ok(err instanceof ExecutorError, `an ExecutorError, whose message the worker gives the submitter: ${String(err)}`);
        assert.equal(err.code, 'no_sandbox_uid');
        assert.equal(err.message, `the job's sandbox could not be made: ${shortage.message}`);
        return true;
      },
    );
  } finally {
    await executor.close();
  }
});
