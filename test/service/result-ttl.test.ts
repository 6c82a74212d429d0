// Finished jobs expire at CELLBLOCK_RESULT_TTL_SECONDS on a quiet queue: reads answer as for an
// unknown job from the TTL on, and the API's result cleaner removes the job from Redis within its
// interval, with no later job finishing (BullMQ's own age removal waits for one). Unfinished jobs
// are never removed, however old; an Idempotency-Key whose job expired makes a new job. Real
// Redis; the "worker" is BullMQ's manual fetch, so that nothing finishes but what a test finishes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'bullmq';
import { createRedis } from '../../src/queue/connection.js';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import type { StoredJobResult } from '../../src/queue/codec.js';
import { resultCleanIntervalMs } from '../../src/queue/result-cleaner.js';
import { until } from '../helpers/until.js';
import { startService, type ServiceHarness } from './fixtures.js';

const TTL_SECONDS = 2;
const TTL_MS = TTL_SECONDS * 1000;
const INTERVAL_MS = resultCleanIntervalMs(TTL_MS);
/** Room for this machine's timers and Redis round trips beyond the interval. */
const SLACK_MS = 1000;

const hello = { language: 'python', source: 'print("hi")' };
const other = { language: 'python', source: 'print("other")' };
const result: StoredJobResult = { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3.11.2' }, queueWaitMs: 1 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

describe('finished jobs expire at their TTL on a quiet queue', () => {
  let service: ServiceHarness;
  let worker: Worker;
  let redis: ReturnType<typeof createRedis>;
  const jobKey = (id: string) => `${service.prefix}:${QUEUE_NAME}:${id}`;
  const guardKey = () => service.jobs.keys.resultClean(TTL_SECONDS);

  before(async () => {
    service = await startService({ resultTtlSeconds: TTL_SECONDS });
    redis = createRedis(service.redis.url, 'blocking', 'cellblock-test-result-ttl');
    worker = new Worker(QUEUE_NAME, null, { connection: redis, prefix: service.prefix, autorun: false });
  });
  after(async () => {
    await worker?.close();
    redis?.disconnect();
    await service?.close();
  });

  const submit = async (body: object, idempotencyKey?: string) => {
    const response = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body, headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {} });
    return { status: response.statusCode, json: response.json() };
  };
  const read = async (id: string, url = `/v1/jobs/${id}`) => {
    const response = await service.app.inject({ url });
    return { status: response.statusCode, json: response.json() };
  };
  /** Takes the next queued job, which must be `id`: it is running from then on. */
  const take = async (id: string, token: string) => {
    const job = await worker.getNextJob(token);
    assert.equal(job?.id, id, 'the job taken is the one submitted');
    return job!;
  };
  /** Runs the job to its end; its finish time (BullMQ's finishedOn, epoch ms). */
  const finish = async (id: string, outcome: 'completed' | 'failed'): Promise<number> => {
    const token = `token-${id}`;
    const job = await take(id, token);
    if (outcome === 'completed') await job.moveToCompleted(result, token, false);
    else await job.moveToFailed(new Error('executor: closed'), token, false);
    return Number(await redis.hget(jobKey(id), 'finishedOn'));
  };
  const exists = async (id: string) => (await redis.exists(jobKey(id))) === 1;

  test('a finished job is 404 from its TTL on, and leaves Redis within the clean interval though no other job finishes', async () => {
    const done = (await submit(hello)).json.id as string;
    const failed = (await submit(other)).json.id as string;
    // The last two jobs to finish: nothing ends after them to set off BullMQ's age removal.
    await finish(done, 'completed');
    const finishedOn = await finish(failed, 'failed');
    assert.deepEqual([(await read(done)).json.status, (await read(failed)).json.status], ['done', 'failed']);
    await sleep(finishedOn + TTL_MS - Date.now());
    for (const id of [done, failed]) {
      const gone = await read(id);
      assert.deepEqual([gone.status, gone.json.error?.code], [404, 'job_not_found'], `${id} past its TTL: ${JSON.stringify(gone.json)}`);
    }
    await until(async () => !(await exists(done)) && !(await exists(failed)), INTERVAL_MS + SLACK_MS, 20, 'the expired jobs removed from Redis');
    assert.ok(Date.now() - (finishedOn + TTL_MS) <= INTERVAL_MS + SLACK_MS);
  });

  test('reads answer as for an unknown job exactly at the TTL, before the clean has removed it', async () => {
    // Another process's clean just now, as far as this API can tell: none comes until it is gone.
    await redis.set(guardKey(), 'test', 'PX', 60_000);
    try {
      const id = (await submit(hello)).json.id as string;
      const finishedOn = await finish(id, 'failed');
      await sleep(finishedOn + TTL_MS - 300 - Date.now());
      assert.equal((await read(id)).status, 200, 'readable until its TTL');
      await sleep(finishedOn + TTL_MS - Date.now());
      const gone = await read(id);
      assert.deepEqual([gone.status, gone.json.error?.code], [404, 'job_not_found'], JSON.stringify(gone.json));
      assert.equal((await read(id, `/submissions/${id}`)).status, 404, "Judge0's read too");
      assert.ok(await exists(id), 'still in Redis: the read itself said it expired');
      await redis.del(guardKey());
      await until(async () => !(await exists(id)), INTERVAL_MS + SLACK_MS, 20, 'the expired job removed once the clean comes');
    } finally {
      await redis.del(guardKey());
    }
  });

  test('a running or queued job older than the TTL is never removed', async () => {
    const finished = (await submit(hello)).json.id as string;
    const running = (await submit(hello)).json.id as string;
    const queued = (await submit(hello)).json.id as string;
    await finish(finished, 'completed');
    const runningJob = await take(running, 'token-running');
    // The finished one's removal: the clean ran after all three had passed their TTL since they
    // were submitted, and once more an interval later.
    await until(async () => !(await exists(finished)), TTL_MS + INTERVAL_MS + SLACK_MS, 20, 'the finished job removed');
    await sleep(INTERVAL_MS + 100);
    assert.ok((await exists(running)) && (await exists(queued)), 'the unfinished jobs are kept');
    assert.equal((await read(running)).json.status, 'running');
    assert.equal((await read(queued)).json.status, 'queued');
    await runningJob.moveToCompleted(result, 'token-running', false);
    assert.equal((await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${queued}` })).json().status, 'cancelled');
  });

  test('an Idempotency-Key whose job expired makes a new job, once however many tries come at once', async () => {
    // The expired job still in Redis, as between its TTL and the next clean.
    await redis.set(guardKey(), 'test', 'PX', 60_000);
    try {
      const first = await submit(hello, 'order-ttl');
      assert.equal(first.status, 202);
      const id = first.json.id as string;
      const firstCreatedAt = (await read(id)).json.createdAt as string;
      let finishedOn = await finish(id, 'failed');
      await sleep(finishedOn + TTL_MS - Date.now());
      assert.ok(await exists(id), 'the expired job is still in Redis');
      const again = await submit(hello, 'order-ttl');
      assert.deepEqual([again.status, again.json.id, again.json.status], [202, id, 'queued'], 'a new job, not the expired one replayed');
      const renewed = (await read(id)).json;
      assert.equal(renewed.status, 'queued');
      assert.ok(Date.parse(renewed.createdAt) > Date.parse(firstCreatedAt), 'created by this try');
      // Expired again: tries at once, with another submission (the key names nothing now), make
      // one job, and each answers it.
      finishedOn = await finish(id, 'completed');
      await sleep(finishedOn + TTL_MS - Date.now());
      const waitingBefore = (await service.jobs.counts()).waiting;
      const racing = await Promise.all([submit(other, 'order-ttl'), submit(other, 'order-ttl'), submit(other, 'order-ttl')]);
      for (const answer of racing) assert.deepEqual([answer.status, answer.json.id, answer.json.status], [202, id, 'queued'], JSON.stringify(answer.json));
      assert.equal((await service.jobs.counts()).waiting, waitingBefore + 1, 'one job queued');
      const stored = (await service.jobs.get(id))!.request!;
      assert.equal(Buffer.from(stored.files[0]!.contentBase64, 'base64').toString(), other.source);
      assert.equal((await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).json().status, 'cancelled');
    } finally {
      await redis.del(guardKey());
    }
  });
});
