// /readyz's bound: Redis's health check (INFO and a probe write) within READINESS_REDIS_MS; the live
// workers' count (a SCAN of the whole keyspace, long where Redis holds many keys) from the last
// count completed, not within it, trusted while that count is younger than a worker's liveness
// (the heartbeat TTL), and past that while no count since has failed. A Redis unfit for the queue
// (full, refusing writes, evicting) is said beside that count, with one reason: Redis's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { healthRoutes, READINESS_REDIS_MS } from '../../src/api/routes/system.js';
import type { JobService } from '../../src/api/service.js';
import { BullJobClient } from '../../src/queue/client.js';
import { QueueUnavailableError } from '../../src/queue/errors.js';
import type { WorkerLiveness } from '../../src/queue/heartbeat.js';
import { start } from '../helpers/redis.js';

test('a count of the live workers longer than the bound answers the probes that follow, and no probe waits past the bound', async () => {
  // Each count takes twice the bound, as a SCAN of a keyspace of many millions may.
  const countMs = 2 * READINESS_REDIS_MS;
  let counts = 0;
  const jobs = {
    redisHealth: async () => ({ redis: 'ok' }),
    liveWorkers: async () => {
      counts++;
      await new Promise((resolve) => setTimeout(resolve, countMs));
      return [{ workerId: 'w1' }] as unknown as WorkerLiveness[];
    },
  } as unknown as JobService;
  const app = Fastify();
  // The heartbeat TTL's default: longer than this test, so that no count here grows too old.
  await app.register(healthRoutes, { jobs, workerCountMaxAgeMs: 15_000 });
  try {
    const probe = async () => {
      const started = Date.now();
      const response = await app.inject({ url: '/readyz' });
      const tookMs = Date.now() - started;
      assert.ok(tookMs < READINESS_REDIS_MS + 500, `answered in ${tookMs} ms`);
      return { status: response.statusCode, body: response.json() };
    };
    // None counted yet: not ready, the workers unknown (Redis answers).
    const first = await probe();
    assert.equal(first.status, 503);
    assert.deepEqual({ ...first.body, reason: undefined }, { status: 'unavailable', redis: 'ok', workers: null, reason: undefined });
    assert.match(first.body.reason, /no count of them has completed yet/);
    // Once that count completes, the next probe answers with it while its own count goes on.
    await new Promise((resolve) => setTimeout(resolve, countMs));
    assert.deepEqual(await probe(), { status: 200, body: { status: 'ready', redis: 'ok', workers: 1 } });
    assert.equal(counts, 2, 'a count per probe, none at once beside another');
  } finally {
    await app.close();
  }
});

test('a count older than the heartbeat TTL, a count since failing or timing out, is no answer: 503 with the workers unknown', async () => {
  const maxAgeMs = 300;
  let fail = false;
  const jobs = {
    redisHealth: async () => ({ redis: 'ok' }),
    liveWorkers: async () => {
      if (fail) throw new QueueUnavailableError(new Error('no answer from redis in 30000 ms'));
      return [{ workerId: 'w1' }] as unknown as WorkerLiveness[];
    },
  } as unknown as JobService;
  const app = Fastify();
  await app.register(healthRoutes, { jobs, workerCountMaxAgeMs: maxAgeMs });
  try {
    assert.deepEqual((await app.inject({ url: '/readyz' })).json(), { status: 'ready', redis: 'ok', workers: 1 });
    // Every worker gone, and the counts that would say so fail: still ready while the last count is young...
    fail = true;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    // ...and unknown once it is older than a worker's liveness.
    await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 50));
    const stale = await app.inject({ url: '/readyz' });
    assert.equal(stale.statusCode, 503);
    assert.equal(stale.headers['retry-after'], '5');
    const body = stale.json();
    assert.deepEqual([body.status, body.redis, body.workers], ['unavailable', 'ok', null]);
    assert.match(body.reason, /last count completed \d+ ms ago, longer than a worker's liveness lasts \(300 ms\)/);
    // A count that completes again answers again.
    fail = false;
    assert.deepEqual((await app.inject({ url: '/readyz' })).json(), { status: 'ready', redis: 'ok', workers: 1 });
  } finally {
    await app.close();
  }
});

test('counts slower than the bound, probes further apart than the heartbeat TTL: the last count stands while none fails', async () => {
  const maxAgeMs = 300;
  const countMs = READINESS_REDIS_MS + 400;
  const jobs = {
    redisHealth: async () => ({ redis: 'ok' }),
    liveWorkers: async () => {
      await new Promise((resolve) => setTimeout(resolve, countMs));
      return [{ workerId: 'w1' }] as unknown as WorkerLiveness[];
    },
  } as unknown as JobService;
  const app = Fastify();
  await app.register(healthRoutes, { jobs, workerCountMaxAgeMs: maxAgeMs });
  try {
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 503, 'none counted yet');
    // The first count completes; the next probe comes well past the TTL, its own count too slow
    // for the bound: the last count answers, older than the TTL, since no count has failed.
    await new Promise((resolve) => setTimeout(resolve, countMs + maxAgeMs + 200));
    assert.deepEqual((await app.inject({ url: '/readyz' })).json(), { status: 'ready', redis: 'ok', workers: 1 });
  } finally {
    await app.close();
  }
});

test("a Redis unfit for the queue is said with Redis's reason, beside the last count while it is trusted and null once a count failed past its age", async () => {
  const maxAgeMs = 300;
  let fail = false;
  let full = false;
  const bounds: (number | undefined)[] = [];
  const oom = 'OOM command not allowed when used memory > maxmemory. (used_memory 2M, maxmemory 1B)';
  const jobs = {
    redisHealth: async (timeoutMs?: number) => {
      bounds.push(timeoutMs);
      return full ? { redis: 'full', reason: oom } : { redis: 'ok' };
    },
    liveWorkers: async () => {
      if (fail) throw new QueueUnavailableError(new Error('no answer from redis in 30000 ms'));
      return [{ workerId: 'w1' }, { workerId: 'w2' }] as unknown as WorkerLiveness[];
    },
  } as unknown as JobService;
  const app = Fastify();
  await app.register(healthRoutes, { jobs, workerCountMaxAgeMs: maxAgeMs });
  try {
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    full = true;
    const young = await app.inject({ url: '/readyz' });
    assert.equal(young.statusCode, 503);
    assert.equal(young.headers['retry-after'], '10');
    assert.deepEqual(young.json(), { status: 'unavailable', redis: 'full', reason: oom, workers: 2 });
    // The counts fail, and the last one grows older than the TTL: the workers unknown, the reason
    // still Redis's.
    fail = true;
    await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 50));
    const stale = await app.inject({ url: '/readyz' });
    assert.equal(stale.statusCode, 503);
    assert.equal(stale.headers['retry-after'], '10');
    assert.deepEqual(stale.json(), { status: 'unavailable', redis: 'full', reason: oom, workers: null });
    // A count succeeds again, and grows older than the TTL with none failed since: still trusted
    // (the stale-count rule is the same whatever Redis's health).
    fail = false;
    await app.inject({ url: '/readyz' });
    await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 50));
    // This probe's count waits on a gate past the bound, so the one before answers.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    jobs.liveWorkers = async () => {
      await gate;
      return [] as unknown as WorkerLiveness[];
    };
    const old = await app.inject({ url: '/readyz' });
    open();
    assert.deepEqual(old.json(), { status: 'unavailable', redis: 'full', reason: oom, workers: 2 });
    // Redis's check is the part held to the bound.
    assert.deepEqual(new Set(bounds), new Set([READINESS_REDIS_MS]));
  } finally {
    await app.close();
  }
});

test("Redis's health check is bounded as a whole: a write that hangs after INFO answered is unreachable within the bound", async () => {
  const redis = await start();
  const admin = new Redis(redis.url);
  const jobs = new BullJobClient({ redisUrl: redis.url, prefix: 'readiness-health', resultTtlSeconds: 600, maxQueuedJobs: 1000 });
  try {
    await jobs.ready();
    assert.deepEqual(await jobs.redisHealth(READINESS_REDIS_MS), { redis: 'ok' });
    // Writes held (reads answered) for longer than the bound: INFO answers, the probe's SET waits.
    await admin.call('CLIENT', 'PAUSE', String(3 * READINESS_REDIS_MS), 'WRITE');
    const started = Date.now();
    const health = await jobs.redisHealth(READINESS_REDIS_MS);
    const tookMs = Date.now() - started;
    assert.equal(health.redis, 'unreachable');
    assert.ok(tookMs < READINESS_REDIS_MS + 200, `answered in ${tookMs} ms`);
    await admin.call('CLIENT', 'UNPAUSE');
  } finally {
    await jobs.close();
    admin.disconnect();
    await redis.stop();
  }
});

test('a count of the live workers that times out stops its SCAN: the next count does not run beside it', async () => {
  const redis = await start();
  const admin = new Redis(redis.url);
  const jobs = new BullJobClient({ redisUrl: redis.url, prefix: 'readiness-scan', resultTtlSeconds: 600, maxQueuedJobs: 1000 });
  try {
    await jobs.ready();
    // A keyspace whose SCAN takes a few hundred pages of 1000.
    await admin.eval("for i = 1, 300000 do redis.call('SET', 'filler:' .. i, 'x') end", 0);
    const scans = async () => Number(/cmdstat_scan:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await scans();
    await assert.rejects(jobs.liveWorkers(1), QueueUnavailableError);
    // Time for the rest of the SCAN, were it going on.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const pages = (await scans()) - before;
    assert.ok(pages <= 2, `${pages} SCAN pages after a count that timed out at its first`);
    // An abort from outside stops it likewise.
    const stop = new AbortController();
    const count = jobs.liveWorkers(30_000, stop.signal);
    stop.abort();
    await assert.rejects(count);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok((await scans()) - before - pages <= 2);
  } finally {
    await jobs.close();
    admin.disconnect();
    await redis.stop();
  }
});
