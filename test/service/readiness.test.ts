// /readyz's bound: Redis's PING within READINESS_REDIS_MS; the live workers' count (a SCAN of the
// whole keyspace, long where Redis holds many keys) from the last count completed, not within it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { healthRoutes, READINESS_REDIS_MS } from '../../src/api/routes/system.js';
import type { JobService } from '../../src/api/service.js';
import type { WorkerLiveness } from '../../src/queue/heartbeat.js';

test('a count of the live workers longer than the bound answers the probes that follow, and no probe waits past the bound', async () => {
  // Each count takes twice the bound, as a SCAN of a keyspace of many millions may.
  const countMs = 2 * READINESS_REDIS_MS;
  let counts = 0;
  const jobs = {
    ping: async () => {},
    liveWorkers: async () => {
      counts++;
      await new Promise((resolve) => setTimeout(resolve, countMs));
      return [{ workerId: 'w1' }] as unknown as WorkerLiveness[];
    },
  } as unknown as JobService;
  const app = Fastify();
  await app.register(healthRoutes, { jobs });
  try {
    const probe = async () => {
      const started = Date.now();
      const response = await app.inject({ url: '/readyz' });
      const tookMs = Date.now() - started;
      assert.ok(tookMs < READINESS_REDIS_MS + 500, `answered in ${tookMs} ms`);
      return { status: response.statusCode, body: response.json() };
    };
    // None counted yet: not ready, for want of workers (Redis answers).
    assert.deepEqual(await probe(), { status: 503, body: { status: 'no_workers', redis: 'ok', workers: 0 } });
    // Once that count completes, the next probe answers with it while its own count goes on.
    await new Promise((resolve) => setTimeout(resolve, countMs));
    assert.deepEqual(await probe(), { status: 200, body: { status: 'ready', redis: 'ok', workers: 1 } });
    assert.equal(counts, 2, 'a count per probe, none at once beside another');
  } finally {
    await app.close();
  }
});
