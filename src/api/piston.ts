// Piston v2 compatible API (engineer-man/piston api/src/api/v2.js), served at /api/v2 beside our
// own, and again at /api/v2/piston (the public instance's path: app.ts, COMPAT_FRONTS):
// GET /runtimes, GET /packages, POST /execute, and the WebSocket /connect (a live job,
// compat/piston-connect.ts). Translation only: requests become JobRequests
// on the same queue and workers; results come back in Piston's shape.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { pistonRuntimeList, pistonVersion } from './compat/piston-runtimes.js';
import { pistonFields, PistonRequestError, translatePistonExecute } from './compat/piston-request.js';
import { PistonExecutionError, pistonResponse, PistonWaitTimeoutError } from './compat/piston-response.js';
import { DEFAULT_MAX_WAIT_MS, serviceErrorStatus, type CompatPluginOptions } from './compat/plugin-options.js';
import { QueueUnavailableError } from '../queue/errors.js';
import { admissionMessage, admissionProblem } from './submission.js';
import { pistonConnect } from './compat/piston-connect.js';
import { pistonDocuments } from './compat/piston-openapi.js';
import { LIVE_SESSIONS_RETRY_AFTER_SECONDS } from './live-socket.js';

export type { CompatPluginOptions } from './compat/plugin-options.js';

/** Content types Piston's execute accepts. Piston itself requires application/json; text/plain is
 * taken too because the official Node client (piston-client, node-fetch) posts JSON without
 * setting a Content-Type, which node-fetch then sends as text/plain. */
const JSON_BODY_TYPES = ['application/json', 'text/plain'];

export const pistonPlugin: FastifyPluginAsync<CompatPluginOptions> = async (app, options) => {
  const { jobs, runtimes } = options;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;

  app.removeContentTypeParser(JSON_BODY_TYPES);
  app.addContentTypeParser(JSON_BODY_TYPES, { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? {} : JSON.parse(body as string));
    } catch {
      done(new PistonRequestError('request body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(request.method)) return;
    const contentType = request.headers['content-type'] ?? '';
    if (!JSON_BODY_TYPES.some((type) => contentType.startsWith(type))) {
      return reply.code(415).send({ message: 'requests must be of type application/json' });
    }
  });

  app.setErrorHandler((error, request, reply: FastifyReply) => {
    if (error instanceof PistonRequestError || error instanceof PistonExecutionError) {
      if (error instanceof PistonExecutionError) request.log.error({ err: error }, 'piston execute failed');
      return reply.code(error.statusCode).send({ message: error.message });
    }
    const status = serviceErrorStatus(error);
    if (status) {
      if (status.retryAfterSeconds !== undefined) reply.header('retry-after', String(status.retryAfterSeconds));
      return reply.code(status.statusCode).send({ message: (error as Error).message });
    }
    request.log.error({ err: error }, 'piston front: unexpected error');
    return reply.code(500).send({ message: 'internal error' });
  });

  app.get('/runtimes', { schema: { tags: ['piston'], summary: 'Piston v2: installed runtimes' }, config: { openapi: pistonDocuments.runtimes } }, async () =>
    pistonRuntimeList(runtimes),
  );

  // Our runtimes are built into images, not installed at run time: every one is "installed".
  app.get('/packages', { schema: { tags: ['piston'], summary: 'Piston v2: runtime packages' }, config: { openapi: pistonDocuments.packages } }, async () =>
    runtimes.map((runtime) => ({ language: runtime.language, language_version: pistonVersion(runtime), installed: true })),
  );

  app.route({
    method: 'GET',
    url: '/connect',
    schema: {
      tags: ['piston'],
      summary: 'Piston v2: an interactive job over a WebSocket (init, data, signal; runtime, stage, data, exit)',
      querystring: Type.Object({ ticket: Type.Optional(Type.String({ description: 'A live ticket (POST /v1/live/tickets) in place of an API key header, where keys are configured.' })) }),
    },
    // A browser's page reaches it with a live ticket where keys are required (POST /v1/live/tickets).
    config: { liveTicket: true, openapi: pistonDocuments.connect },
    preHandler: async (request, reply) => {
      const refusal = request.ws ? await options.liveSockets.admit(request) : undefined;
      if (refusal) {
        return reply
          .code(429)
          .header('retry-after', String(LIVE_SESSIONS_RETRY_AFTER_SECONDS))
          .send({ message: `at most ${refusal.maximum} interactive sockets at once per client` });
      }
    },
    handler: async (request, reply) =>
      reply.code(426).header('upgrade', 'websocket').send({ message: `${request.routeOptions.url} is a WebSocket: connect with an Upgrade: websocket request` }),
    wsHandler: (socket, request) =>
      pistonConnect(socket, request, options),
  });

  app.post('/execute', { schema: { tags: ['piston'], summary: 'Piston v2: run code and wait for the result' }, config: { openapi: pistonDocuments.execute } }, async (request) => {
    const { runtime, request: jobRequest } = translatePistonExecute(request.body, runtimes);
    const problem = admissionProblem(jobRequest, runtime, options.policy, pistonFields);
    if (problem !== undefined) throw new PistonRequestError(admissionMessage(problem));
    const id = await jobs.submit(jobRequest);
    let record;
    try {
      record = await jobs.wait(id, maxWaitMs);
    } catch (error) {
      // Accepted, then Redis went away for the whole wait. Piston has no id to poll by; ours is
      // told, so that the caller can read the job rather than run it again.
      if (!(error instanceof QueueUnavailableError)) throw error;
      request.log.warn({ jobId: id }, 'redis unavailable while waiting for the job');
      error.message = `job ${id} was accepted, but its result cannot be read now (${error.message}); GET /v1/jobs/${id} reads it later`;
      throw error;
    }
    if (record === undefined) throw new PistonExecutionError(`job ${id} disappeared before it finished`);
    if (record.status === 'queued' || record.status === 'running') {
      // Nobody will read this result any more: free the worker. The job may have ended just
      // now: the cancel answers it as it is, and its end (a result, or its failure) is the answer.
      const cancelled = await jobs.cancel(id).catch(() => undefined);
      const endedAnyway = cancelled?.status === 'failed' || (cancelled?.status === 'done' && cancelled.result?.verdict !== 'cancelled');
      // Unfinished with time left: the wait ended because the API is stopping (jobs.endWaits).
      const ended = jobs.waitsEnded ? ('stopping' as const) : { maxWaitMs };
      if (!endedAnyway) throw new PistonWaitTimeoutError(id, ended, cancelled?.status === 'cancelled');
      record = cancelled!;
    }
    return pistonResponse(record, runtime);
  });
};
