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

export const healthRoutes: FastifyPluginAsyncTypebox<{ jobs: JobService }> = async (app, { jobs }) => {
  app.get(
    '/healthz',
    { schema: { summary: 'The API process is up', tags: ['service'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

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
      const leftMs = () => Math.max(1, deadline - Date.now());
      let workers: number;
      try {
        await jobs.ping(leftMs());
        // A failure other than Redis's (a liveness key it cannot read) counts no worker.
        workers = (await jobs.liveWorkers(leftMs()).catch((error: unknown) => {
          if (error instanceof QueueUnavailableError) throw error;
          return [];
        })).length;
      } catch {
        return reply.code(503).header('retry-after', '5').send({ status: 'unavailable', redis: 'unreachable', workers: 0 });
      }
      const ready = workers > 0;
      // Not ready for want of workers: a balancer or a client asks again, as when Redis is away.
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
