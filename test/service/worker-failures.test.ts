// What a job's failure tells its submitter when the worker's own side fails: an error of a system
// call (one of Node's fs calls, say, copying a work dir) names host paths, which stay in the
// worker's log. Real Redis and the real worker's queue side, on a stand-in executor: no sandbox.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ExecutorError } from '../../src/executor/errors.js';
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { PoolError } from '../../src/pool/types.js';
import type { JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const runtimes = loadRuntimes();
const HOST_PATH = '/var/lib/cellblock/pool/owner-1234-abcd/slots/gcc_compile-7/rw/box/bad\ufffdname';

/** Fails each job as its stdin names: a work dir's copy failing in the worker (ENOENT from lstat,
 * with its path), the pool's mount agent failing a slot's mount (a PoolError naming the slot), or
 * the executor refusing the job (its own words, for the submitter). */
const executor: JobExecutor = {
  execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
    const kind = Buffer.from(request.stdin ?? '').toString();
    if (kind === 'pool') throw new PoolError('mount', 'ENOSPC', `mount ${HOST_PATH}: No space left on device`, 28);
    if (kind === 'refused') throw new ExecutorError('bad_request', 'a refusal written for the submitter');
    throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${HOST_PATH}'`), { code: 'ENOENT', syscall: 'lstat', path: HOST_PATH, errno: -2 });
  },
  close: async () => {},
};

describe("a worker's own failure, as its submitter reads it", () => {
  let service: ServiceHarness;
  let worker: QueueWorker;

  before(async () => {
    service = await startService({ runtimes });
    worker = await startStandInWorker(service, executor);
  });
  after(async () => {
    await worker?.close();
    await service?.close();
  });

  const python = runtimes.find((runtime) => runtime.id.startsWith('python'))!;
  const failureOf = async (stdin: string) => {
    const id = await service.jobs.submit({ runtimeId: python.id, files: [{ name: 'main.py', contentBase64: Buffer.from('print(1)').toString('base64') }], stdinBase64: Buffer.from(stdin).toString('base64'), args: [], limits: {} });
    const record = await service.jobs.wait(id, 20_000);
    assert.equal(record?.status, 'failed');
    assert.doesNotMatch(JSON.stringify(record), /cellblock\/pool|\\ufffd|\ufffd/);
    return record!.failure!;
  };

  test('a system call that failed: internal_error naming the call and its code, not the host path', async () => {
    assert.deepEqual(await failureOf('syscall'), { code: 'internal_error', message: "executor: lstat failed (ENOENT); the worker's log has the details, under this job's id" });
  });

  test("the pool's mount agent failed: its operation and code, not the slot's path", async () => {
    assert.deepEqual(await failureOf('pool'), { code: 'internal_error', message: "executor: mount failed (ENOSPC); the worker's log has the details, under this job's id" });
  });

  test("the executor's own refusal: its words, written for the submitter", async () => {
    assert.equal((await failureOf('refused')).message, 'executor: a refusal written for the submitter');
  });
});
