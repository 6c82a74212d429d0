// What a job's failure says when the pool could not make its slot, or its sandbox found no
// descriptor, with the executor on a fake pool and stage runner (no sandbox).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExecutorError } from '../../src/executor/errors.js';
import { SubmissionExecutor } from '../../src/executor/executor.js';
import type { StageRunner } from '../../src/executor/engine.js';
import { PoolError, type Pool } from '../../src/pool/index.js';
import { internalErrorResult } from '../../src/sandbox/container.js';
import { SandboxError, type RunResult } from '../../src/sandbox/types.js';
import type { ExecuteResult } from '../../src/executor/types.js';
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

/** A job of SH on a fake pool whose take does `take`, its runs ending as `run` says. */
async function outcomeOf(take: () => Promise<unknown>, run: () => RunResult = () => assert.fail('no run expected')): Promise<ExecuteResult | ExecutorError> {
  const pool = { take, release: () => {}, unusable: undefined, close: async () => {} } as unknown as Pool<never>;
  const runner: StageRunner<never> = { run: async () => run(), runConnected: () => assert.fail('no connected run'), runStreaming: () => assert.fail('no live run') };
  const executor = new SubmissionExecutor([SH], pool, runner);
  try {
    return await executor.execute({ runtimeId: 'sh', files: [{ name: 'main.sh', content: Buffer.from('echo hi\n') }] });
  } catch (err) {
    assert.ok(err instanceof ExecutorError, `an ExecutorError: ${String(err)}`);
    return err;
  } finally {
    await executor.close();
  }
}

test("a job whose sandbox found no descriptor (EMFILE, ENFILE) fails no_descriptors, whether its slot's preparation or its run's setup met it; other setup failures are the run's internal_error", { skip: process.getuid?.() !== 0 && 'needs root: the work dir is chowned to the sandbox group' }, async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'cellblock-pool-errors-test-'));
  try {
    const slot = async () => ({ image: 'busybox', root: { workDirHostPath: mkdtempSync(join(workDir, 'slot-')), uid: 0 } });
    const refused = (err: unknown) => async () => {
      throw err;
    };
    const failedRun = (step: string, errno: number, code: string) => () => internalErrorResult(new SandboxError(step, errno, code));
    const cases: [ExecuteResult | ExecutorError, string][] = [
      [await outcomeOf(refused(new SandboxError('open_memfd', 24, 'EMFILE'))), "the worker process reached its open files limit (RLIMIT_NOFILE) (EMFILE at the sandbox's setup step open_memfd)"],
      [await outcomeOf(refused(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE', syscall: 'open' }))), 'the worker process reached its open files limit (RLIMIT_NOFILE) (EMFILE in open)'],
      [await outcomeOf(slot, failedRun('open_pipe', 23, 'ENFILE')), "the machine's open files are all in use (fs.file-max) (ENFILE at the sandbox's setup step open_pipe)"],
    ];
    for (const [outcome, what] of cases) {
      assert.ok(outcome instanceof ExecutorError, `an ExecutorError: ${JSON.stringify(outcome)}`);
      assert.equal(outcome.code, 'no_descriptors');
      assert.equal(outcome.message, `the job's sandbox could not be made: ${what}`);
    }
    // A run whose clone found the worker's pids limit: the sandbox's failure, reported as it is.
    const limited = await outcomeOf(slot, failedRun('clone_init', 11, 'EAGAIN'));
    assert.ok(!(limited instanceof ExecutorError), `a result: ${String(limited)}`);
    assert.equal(limited.verdict, 'internal_error');
    assert.equal(limited.run?.error?.code, 'EAGAIN');
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});
