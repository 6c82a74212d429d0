// A cancel that races a worker: the job is read as waiting, then taken and finished before the
// cancel removes it. The finished job must keep its result (the cancel only signals), and a job
// still queued must still be removed, even by a cancel that Redis failed halfway. Real Redis;
// the "worker" is BullMQ's manual fetch, so that the race happens at the same point every run.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker, type Job } from 'bullmq';
import type { JobRequest, StoredStage } from '../../src/jobs/model.js';
import { createRedis } from '../../src/queue/connection.js';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import type { StoredJobResult } from '../../src/queue/codec.js';
import { startService, type ServiceHarness } from './fixtures.js';

const request: JobRequest = {
  runtimeId: 'python',
  files: [{ name: 'main.py', contentBase64: Buffer.from('print("raced")').toString('base64') }],
  stdinBase64: '',
  args: [],
  limits: {},
};

const stage: StoredStage = {
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdoutBase64: Buffer.from('raced\n').toString('base64'),
  stderrBase64: '',
  stdoutTruncated: false,
  stderrTruncated: false,
  cpuTimeMs: 10,
  wallTimeMs: 12,
  peakMemoryBytes: 1 << 20,
};
const finished: StoredJobResult = {
  verdict: 'ok',
  runtime: { id: 'python', language: 'python', version: '3.11.2' },
  run: stage,
  queueWaitMs: 1,
};

describe('cancel racing a worker', () => {
  let service: ServiceHarness;
  let worker: Worker;
  let workerRedis: ReturnType<typeof createRedis>;
  /** The client's queue, whose getJob the tests wrap to run a worker's step at the race point. */
  let queue: { getJob(id: string): Promise<Job | undefined> };
  let getJob: (id: string) => Promise<Job | undefined>;

  before(async () => {
    service = await startService();
    await service.jobs.ready();
    workerRedis = createRedis(service.redis.url, 'blocking', 'cellblock-test-cancel-race');
    worker = new Worker(QUEUE_NAME, null, { connection: workerRedis, prefix: service.prefix, autorun: false });
    queue = (service.jobs as unknown as { queue: typeof queue }).queue;
    getJob = queue.getJob.bind(queue);
  });
  after(async () => {
    await worker?.close();
    workerRedis?.disconnect();
    await service?.close();
  });

  /** The next cancel reads the job's state, then `step` runs before the cancel goes on. */
  function raceNextCancel(step: () => Promise<void>): void {
    queue.getJob = async (id: string) => {
      queue.getJob = getJob;
      const job = await getJob(id);
      if (!job) return job;
      const getState = job.getState.bind(job);
      job.getState = async () => {
        const state = await getState();
        await step();
        return state;
      };
      return job;
    };
  }

  test('a job taken and finished after the cancel read it as waiting keeps its result', async () => {
    const id = await service.jobs.submit(request);
    raceNextCancel(async () => {
      const token = 'race-token';
      const job = await worker.getNextJob(token);
      assert.equal(job?.id, id, 'the worker takes the job the cancel is about');
      await job!.moveToCompleted(finished, token, false);
    });
    const record = await service.jobs.cancel(id);
    assert.equal(record?.status, 'done', JSON.stringify(record));
    assert.equal(Buffer.from(record!.result!.run!.stdoutBase64, 'base64').toString(), 'raced\n');
    const again = await service.jobs.get(id);
    assert.equal(again?.status, 'done', 'the finished job is still there to read');
  });

  test('a cancel that lost Redis between taking the job out of the queue and removing it: cancelled, and finished by the next', async () => {
    const id = await service.jobs.submit(request);
    const removable = queue as unknown as { remove(id: string): Promise<number> };
    const remove = removable.remove.bind(removable);
    removable.remove = async () => {
      removable.remove = remove;
      throw new Error('Connection is closed.');
    };
    await assert.rejects(service.jobs.cancel(id), { name: 'QueueUnavailableError' });
    assert.ok(await getJob(id), 'the job hash is left, in no list of the queue');
    // ... and goes with the cancel marker, should no cancel come again.
    const ttl = await workerRedis.ttl(`${service.prefix}:${QUEUE_NAME}:${id}`);
    assert.ok(ttl > 0 && ttl <= 600, `the left hash expires (ttl ${ttl} s)`);
    assert.equal((await service.jobs.get(id))?.status, 'cancelled', 'read as the cancel left it, not as queued forever');
    assert.equal((await service.jobs.cancel(id))?.status, 'cancelled');
    assert.equal(await getJob(id), undefined, 'the cancel tried again removed it');
    assert.equal(await worker.getNextJob('after-cancel', { block: false }), undefined);
  });

  test('an idempotent retry whose first try was cancelled in between does not bring the job back', async () => {
    // The retry read the key before the first try added its job; then the job was cancelled
    // (removed, its marker left); then the retry's add re-created it.
    const { id: first } = await service.jobs.submitOnce(request, 'retried-key');
    const client = service.jobs as unknown as { submittedUnder(id: string, options?: object): Promise<object | undefined> };
    const submittedUnder = client.submittedUnder.bind(client);
    client.submittedUnder = async () => {
      client.submittedUnder = submittedUnder;
      assert.equal((await service.jobs.cancel(first))?.status, 'cancelled');
      return undefined;
    };
    const retried = await service.jobs.submitOnce(request, 'retried-key');
    assert.deepEqual(retried, { id: first, replay: true }, 'answered as it is now (cancelled), not as queued by this try');
    assert.equal((await service.jobs.get(first))?.status, 'cancelled');
    assert.equal(await worker.getNextJob('after-retry', { block: false }), undefined, 'the cancelled job is not queued again');
  });

  test('an idempotent retry that finds the queue full of its own first try answers that job', async () => {
    const capped = await startService({ maxQueuedJobs: 1 });
    try {
      const { id: first } = await capped.jobs.submitOnce(request, 'capped-key');
      // The retry read the key before the first try added its job.
      const client = capped.jobs as unknown as { submittedUnder(id: string, options?: object): Promise<object | undefined> };
      const submittedUnder = client.submittedUnder.bind(client);
      client.submittedUnder = async () => {
        client.submittedUnder = submittedUnder;
        return undefined;
      };
      assert.deepEqual(await capped.jobs.submitOnce(request, 'capped-key'), { id: first, replay: true });
      await assert.rejects(capped.jobs.submitOnce(request, 'another-key'), { name: 'QueueFullError' });
    } finally {
      await capped.close();
    }
  });

  test('a job still queued when the cancel removes it is cancelled and never taken', async () => {
    const id = await service.jobs.submit(request);
    raceNextCancel(async () => {});
    const record = await service.jobs.cancel(id);
    assert.equal(record?.status, 'cancelled', JSON.stringify(record));
    assert.equal(await worker.getNextJob('after-cancel', { block: false }), undefined, 'nothing left to take');
  });
});
