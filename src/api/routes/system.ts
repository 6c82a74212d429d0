// Liveness, readiness and the runtime list.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Runtime } from '../../images/types.js';
import { ErrorBody, Health, NoQuery, Readiness, RuntimeList } from '../schemas.js';
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
  app.get(
    '/healthz',
    { schema: { summary: 'The API process is up', tags: ['service'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

  // The live workers' count: a SCAN over the whole keyspace, whose time grows with the keys Redis
  // holds, so that within READINESS_REDIS_MS it failed where they are many and the probe flapped
  // 503. Only the PING is bounded by it; each probe starts a count (or joins the one under way) and
  // waits for it while the bound lasts, answering with the last completed one otherwise. A count
  // is trusted for workerCountMaxAgeMs (the heartbeat TTL: a worker it saw may have died since, its
  // key expired) from when it completed (its liveness keys are read at its end, after the SCAN),
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
        // Redis away or too slow: no count (the PING says which, or the count's age does); a
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
        summary: 'Ready to run jobs: Redis answers and at least one worker is alive',
        tags: ['service'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const deadline = Date.now() + READINESS_REDIS_MS;
      try {
        await jobs.ping(READINESS_REDIS_MS);
      } catch {
        return reply.code(503).header('retry-after', '5').send({ status: 'unavailable', redis: 'unreachable', workers: 0 });
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([countWorkers(), new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      // Not ready for want of workers, or of their count: a balancer or a client asks again, as
      // when Redis is away.
      const ageMs = counted && Date.now() - counted.atMs;
      if (counted === undefined || (ageMs! > workerCountMaxAgeMs && countFailedSince)) {
        const reason = counted
          ? `the live workers are unknown: their last count completed ${ageMs} ms ago, longer than a worker's liveness lasts (${workerCountMaxAgeMs} ms), and one since failed or timed out`
          : 'the live workers are unknown: no count of them has completed yet';
        return reply.code(503).header('retry-after', '5').send({ status: 'unavailable', redis: 'ok', workers: null, reason });
      }
      const { workers } = counted;
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
