// Liveness, readiness and the runtime list.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Runtime } from '../../images/types.js';
import { ErrorBody, Health, NoQuery, Readiness, RuntimeList } from '../schemas.js';
import { evictionPolicyLog } from '../../queue/redis-health.js';
import type { JobService } from '../service.js';
import { QueueUnavailableError } from '../../queue/errors.js';

/** How long /readyz waits for Redis in all: a probe is answered (503 when Redis has not answered
 * by then: down, frozen, or cut off by the network, where a connection hears nothing for as long
 * as the cut lasts), not timed out, under Kubernetes' default probe timeout of 1 s. */
export const READINESS_REDIS_MS = 800;

/** How long a background count of the live workers may take (a SCAN of the whole keyspace for
 * their liveness keys: long where Redis holds many keys). */
const WORKER_COUNT_TIMEOUT_MS = 30_000;

/** `workerCountMaxAgeMs`: how long a completed count of the live workers is trusted (the API's
 * CELLBLOCK_WORKER_HEARTBEAT_TTL_MS, passed in by the app: see the count below). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ jobs: JobService; workerCountMaxAgeMs: number }> = async (app, { jobs, workerCountMaxAgeMs }) => {
  // A change of Redis's eviction policy while the API runs (the start refused an evicting one),
  // logged as /readyz reads it.
  const policyLog = evictionPolicyLog(app.log);
  app.get(
    '/healthz',
    { schema: { summary: 'The API process is up', tags: ['service'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

  // The live workers' count: a SCAN over the whole keyspace, whose time grows with the keys Redis
  // holds, so that within READINESS_REDIS_MS it failed where they are many and the probe flapped
  // 503. Only Redis's health check (redisHealth) is bounded by it; each probe starts a count (or
  // joins the one under way) and waits for it while the bound lasts, answering with the last
  // completed one otherwise. A count is trusted for workerCountMaxAgeMs (the heartbeat TTL: a
  // worker it saw may have died since, its key expired) from when it completed (its liveness keys
  // are read at its end, after the SCAN),
  // and beyond that while no count since has failed: a count slower than the bound, or probes
  // further apart than the TTL, leave the last one older than that though every count succeeds.
  // Past that age with a count failed (or timed out) since, or before the first, the workers are
  // unknown: not ready, rather than the last count's answer for ever where every later count fails.
  let counted: { workers: number; atMs: number } | undefined;
  let countFailedSince = false;
  let counting: Promise<void> | undefined;
  const stopCounting = new AbortController();
  app.addHook('onClose', async () => stopCounting.abort());
  const countWorkers = (): Promise<void> =>
    (counting ??= jobs
      .liveWorkers(WORKER_COUNT_TIMEOUT_MS, stopCounting.signal)
      .then(
        (workers) => {
          counted = { workers: workers.length, atMs: Date.now() };
          countFailedSince = false;
        },
        // Redis away or too slow: no count (Redis's health check says which, or the count's age does); a
        // failure other than Redis's (a liveness key it cannot read) counts no worker.
        (error: unknown) => {
          if (stopCounting.signal.aborted) return;
          if (error instanceof QueueUnavailableError) countFailedSince = true;
          else counted = { workers: 0, atMs: Date.now() };
        },
      )
      .finally(() => (counting = undefined)));

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Ready to run jobs: Redis answers, keeps every key and takes writes, and at least one worker is alive',
        tags: ['service'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const deadline = Date.now() + READINESS_REDIS_MS;
      // Redis's health (INFO memory and a probe write, not PING, which a Redis refusing writes for
      // a failed disk write refuses too) is the part bounded by READINESS_REDIS_MS.
      const health = await jobs.redisHealth(READINESS_REDIS_MS, policyLog);
      if (health.redis === 'unreachable') {
        return reply.code(503).header('retry-after', '5').send({ status: 'unavailable', redis: 'unreachable', workers: 0 });
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([countWorkers(), new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      // The last count is trusted while it is young, and past that while no count since has failed.
      const ageMs = counted && Date.now() - counted.atMs;
      const known = counted !== undefined && !(ageMs! > workerCountMaxAgeMs && countFailedSince);
      // Reachable, but evicting keys or refusing writes: no job can be taken (or kept) now,
      // whatever the workers; said with Redis's reason, for the operator who must act (the
      // workers as last counted, or null where that count is too old to trust).
      if (health.redis !== 'ok') {
        return reply
          .code(503)
          .header('retry-after', '10')
          .send({ status: 'unavailable', redis: health.redis, reason: health.reason, workers: known ? counted!.workers : null });
      }
      // Not ready for want of workers, or of their count: a balancer or a client asks again, as
      // when Redis is away.
      if (!known) {
        const reason = counted
          ? `the live workers are unknown: their last count completed ${ageMs} ms ago, longer than a worker's liveness lasts (${workerCountMaxAgeMs} ms), and one since failed or timed out`
          : 'the live workers are unknown: no count of them has completed yet';
        return reply.code(503).header('retry-after', '5').send({ status: 'unavailable', redis: 'ok', workers: null, reason });
      }
      const { workers } = counted!;
      const ready = workers > 0;
      if (!ready) reply.header('retry-after', '5');
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'no_workers', redis: 'ok', workers });
    },
  );
};

export const runtimeRoutes: FastifyPluginAsyncTypebox<{ runtimes: Runtime[] }> = async (app, { runtimes }) => {
  const list = runtimes.map((runtime) => ({
    id: runtime.id,
    language: runtime.language,
    version: runtime.version,
    aliases: runtime.aliases,
    compiled: runtime.compile !== undefined,
    sourceFile: runtime.sourceFile,
    defaultLimits: runtime.defaultLimits,
    maxLimits: runtime.maxLimits,
    ...(runtime.minLimits ? { minLimits: runtime.minLimits } : {}),
  }));
  app.get(
    '/runtimes',
    { schema: { summary: 'Languages and versions this service runs', tags: ['runtimes'], querystring: NoQuery, response: { 200: RuntimeList, 400: ErrorBody } } },
    async () => list,
  );
};
