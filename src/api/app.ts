// The HTTP API as one fastify instance: /v1 (ours), the compat fronts when present (Piston,
// Judge0), health, metrics, and the OpenAPI document at /docs. It knows jobs only through a
// JobService and runtimes only as data, so it runs on any machine that reaches Redis.
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Runtime } from '../images/types.js';
import { API_KEY_SECURITY_SCHEMES, loggableUrl, openApiSecurity, registerAuth } from './auth.js';
import type { CompatPluginOptions } from './compat/plugin-options.js';
import { ApiError, clientErrorHandler, frameworkErrorHandler, prototypeKeyRefusal, registerErrorHandling, writeRawAnswer } from './errors.js';
import { jobRoutes } from './routes/jobs.js';
import { liveRoutes } from './routes/live.js';
import { LiveSockets } from './live-socket.js';
import { metricsRoutes } from './routes/metrics.js';
import { documentedSchema } from './openapi.js';
import { healthRoutes, runtimeRoutes } from './routes/system.js';
import { ErrorBody } from './schemas.js';
import type { JobService } from './service.js';
import { validatorCompiler } from './validator.js';

export type ApiConfig = Pick<
  Config,
  | 'bodyLimitBytes'
  | 'maxFiles'
  | 'maxTests'
  | 'maxArgs'
  | 'maxJobOutputBytes'
  | 'maxBatchJobs'
  | 'maxWaitMs'
  | 'requestTimeoutMs'
  | 'apiKeys'
  | 'rateLimitWindowMs'
  | 'defaultRequestsPerWindow'
  | 'webhookDestinations'
  | 'maxQueuedJobs'
  | 'maxLiveSessionsPerClient'
  | 'trustedProxies'
  | 'corsOrigins'
  | 'workerHeartbeatTtlMs'
>;

export interface BuildAppOptions {
  jobs: JobService;
  runtimes: Runtime[];
  config: ApiConfig;
  /** A pino logger instance or fastify's logger options; off when absent. */
  logger?: FastifyServerOptions['loggerInstance'];
  rateLimitRedis?: Redis;
}

interface CompatFront {
  plugin: FastifyPluginAsync<CompatPluginOptions>;
  prefixes: readonly string[];
}

/** Piston's routes' root: each of its prefixes is under it. */
const PISTON_ROOT = '/api/v2';
const PISTON_PREFIXES = [PISTON_ROOT, `${PISTON_ROOT}/piston`] as const;

/** Compat fronts, registered when their module is present (they are written alongside this one),
 * each under the path prefixes its original serves: the same routes under each. Piston's are also
 * under /api/v2/piston, the path of the public Piston instance (emkc.org), which its clients
 * hard-code (piston-client does for its default server): such a client then needs a new host only. */
const COMPAT_FRONTS = [
  { module: './piston.js', exportName: 'pistonPlugin', prefixes: PISTON_PREFIXES },
  { module: './judge0.js', exportName: 'judge0Plugin', prefixes: [''] },
] as const;

async function loadCompatFronts(): Promise<CompatFront[]> {
  const fronts: CompatFront[] = [];
  for (const front of COMPAT_FRONTS) {
    let loaded: Record<string, unknown>;
    try {
      loaded = (await import(front.module)) as Record<string, unknown>;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(front.module.slice(2, -3))) continue;
      throw error;
    }
    const plugin = loaded[front.exportName];
    if (typeof plugin === 'function') fronts.push({ plugin: plugin as FastifyPluginAsync<CompatPluginOptions>, prefixes: front.prefixes });
  }
  return fronts;
}

/** Bodies of application/json as fastify's own parser takes them (secure-json-parse, which
 * refuses a key that could set an object's prototype: prototype poisoning), except that such a
 * body is refused as what it is: its parser says only "not valid JSON", which it is. Every front
 * that takes JSON (/v1, Judge0's; Piston's parses its own) answers the ApiError in its shape. */
function takeJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error') as (request: FastifyRequest, body: string, done: (error: Error | null, body?: unknown) => void) => void;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (error, parsed) => {
      if (error && (error as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' && isJsonText(body as string)) {
        done(prototypeKeyRefusal());
        return;
      }
      done(error, parsed);
    });
  });
}

/** Whether `text` is JSON as the secure parser reads it: after a byte order mark, which it skips. */
function isJsonText(text: string): boolean {
  try {
    JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return true;
  } catch {
    return false;
  }
}

/** How long a stopping API lets the answers already made be sent (to a client that reads them
 * slowly, say) before it closes their connections. */
const STOP_CONNECTIONS_MS = 5_000;
/** How often a stopping API, past STOP_CONNECTIONS_MS, looks for handlers that have answered since. */
const STOP_CHECK_MS = 100;

/** A connection's requests in progress, each with its answer (several where the client pipelines:
 * Node answers them in turn), and what it had read when its last answer was sent. */
interface Exchange {
  responses: Set<ServerResponse>;
  bytesReadBetween: number;
}

/** Whether a connection's request is still arriving: a body, or headers (bytes have come since its
 * last answer, and no request has begun: Node reports one once its headers are in). */
const stillArriving = (socket: Socket, exchange: Exchange): boolean =>
  exchange.responses.size > 0 ? [...exchange.responses].some((response) => !response.req.complete) : socket.bytesRead > exchange.bytesReadBetween;

/** Whether a handler is still making one of a connection's answers: its request is all in, its
 * answer not ended. Such a handler is bounded by its own steps' timeouts (Redis's 5 s a command,
 * the submission's add answered 503 naming its jobs past it), and its answer is what a client
 * needs most: a submit's 202 cut off would have it send the job again, to run twice. */
const answering = (exchange: Exchange): boolean =>
  [...exchange.responses].some((response) => response.req.complete && !response.writableEnded);

/** Node's default headers timeout, kept where the request timeout allows it. */
const NODE_HEADERS_TIMEOUT_MS = 60_000;
/** Bounds of how often Node looks for requests past their timeout (a quarter of it between). */
const MIN_CONNECTIONS_CHECK_MS = 50;
const MAX_CONNECTIONS_CHECK_MS = 5_000;

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { jobs, runtimes, config } = options;
  const app = Fastify({
    bodyLimit: config.bodyLimitBytes,
    // A request must arrive whole (headers and body) within this, or it is answered 408 where an
    // answer can still be sent (clientErrorHandler) and its connection closed: fastify's default
    // (0) let a body that never ends (a short one under a long Content-Length, a chunked one never
    // closed, a byte a second) hold its socket and its bytes for ever, 4 MiB each. Node stops the
    // clock once the request has arrived, so a `?wait` held past it is not cut.
    requestTimeout: config.requestTimeoutMs,
    http: {
      // Node's own default (60 s), unless the whole request is allowed less: where the headers'
      // timeout is above the request's, Node's check for expired requests swaps the two, which
      // would stretch the request timeout to 60 s. (fastify sets requestTimeout once the server is
      // made, so Node's own refusal of such a pair at its creation does not see it.)
      headersTimeout: Math.min(NODE_HEADERS_TIMEOUT_MS, config.requestTimeoutMs),
      // Node looks for requests past their time only this often (its default: 30 s, which made a
      // slow request's 408 come up to 30 s late): a request is cut within its timeout and a quarter.
      connectionsCheckingInterval: Math.max(MIN_CONNECTIONS_CHECK_MS, Math.min(MAX_CONNECTIONS_CHECK_MS, Math.floor(config.requestTimeoutMs / 4))),
    },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // request.ip is then the address the nearest trusted proxy forwarded for (the rightmost
    // untrusted entry of X-Forwarded-For): what a client writes into the header itself is not
    // believed past it.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // One access line per request, written once it is answered (below); fastify's own are two,
    // one on arrival and one on the answer, which doubled the API's log writes.
    logController: new LogController({ disableRequestLogging: true }),
    // A request that comes on an open connection while the API stops gets our 503 (below), not
    // fastify's bare one (no Retry-After, not the front's error body).
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  if (options.logger) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.info(
        {
          method: request.method,
          url: loggableUrl(request.url),
          remoteAddress: request.ip,
          statusCode: reply.statusCode,
          responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
        },
        'request answered',
      );
      done();
    });
  }
  registerErrorHandling(app);
  takeJsonBodies(app);
  // Browser pages of the listed origins may call the API (a playground's, a judge's front end;
  // Judge0 allows any origin by default, Rack::Cors). Off unless configured: a page any site
  // serves could otherwise drive a service its visitors' browsers reach (one on an intranet) and
  // read the answers. No credentials: keys travel in headers a page sets, never in cookies.
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      // The headers a preflight asks for are allowed (its Access-Control-Request-Headers echoed,
      // as Judge0's Rack::Cors `headers: :any`): without credentials, a header a page may send
      // grants it nothing a non-browser client lacks.
      // An OPTIONS that is no preflight is answered as one (204), not refused 400 text/plain.
      strictPreflight: false,
      exposedHeaders: ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'],
      maxAge: 600,
    });
  }
  // Stopping (app.close: a rolling restart, say), requests still in flight are answered; one that
  // comes on an open keep-alive connection meanwhile is refused in its front's words, with when to
  // try again (on another API process, as a balancer would send it), and its connection closed.
  // Requests held for their job's end (?wait, Judge0's wait, Piston's execute) are answered at
  // once, as their wait's end would answer them: a wait of up to CELLBLOCK_MAX_WAIT_MS would hold
  // the stop (a rolling restart's next step waits for it).
  // Requests that have not arrived whole hold the stop too (fastify's close waits for each
  // connection, and Node's closes only those between requests: one whose headers are still coming
  // is not): a connection whose request is still arriving (or never will: a short body under a
  // long Content-Length, a chunked one never ended, headers cut off) is closed as the stop begins,
  // unless a handler is still answering an earlier request of it (pipelined). One between requests
  // is left to be answered 503 (below) or closed by Node. STOP_CONNECTIONS_MS later, every
  // connection left is closed (an answer a slow client does not read), except those whose handler
  // is still making an answer (`answering`: a submit whose Redis steps are slow): each of those is
  // closed by Node once its answer is sent (Connection: close), or STOP_CONNECTIONS_MS after its
  // answer was made where the client does not read it. So the stop is bounded by the handlers'
  // own timeouts. Live sockets are not among them: the WebSocket layer ends those.
  const connections = new Map<Socket, Exchange>();
  app.server.on('connection', (socket: Socket) => {
    connections.set(socket, { responses: new Set(), bytesReadBetween: 0 });
    socket.once('close', () => connections.delete(socket));
  });
  app.server.on('upgrade', (_request: IncomingMessage, socket: Socket) => connections.delete(socket));
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const exchange = connections.get(request.socket);
    if (!exchange) return;
    exchange.responses.add(response);
    response.once('finish', () => {
      exchange.responses.delete(response);
      if (exchange.responses.size === 0) exchange.bytesReadBetween = request.socket.bytesRead;
    });
  });
  /** Closes the connections no handler is answering on; those left, once their answer is made,
   * STOP_CONNECTIONS_MS after. */
  const closeUnanswering = (): void => {
    const left = new Set<Socket>();
    for (const [socket, exchange] of connections) {
      if (answering(exchange)) left.add(socket);
      else socket.destroy();
    }
    if (left.size === 0) return;
    const check = setInterval(() => {
      for (const socket of left) {
        const exchange = connections.get(socket);
        if (exchange && answering(exchange)) continue;
        left.delete(socket);
        if (exchange) setTimeout(() => socket.destroy(), STOP_CONNECTIONS_MS).unref();
      }
      if (left.size === 0) clearInterval(check);
    }, STOP_CHECK_MS);
    check.unref();
    app.server.once('close', () => clearInterval(check));
  };
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
    jobs.endWaits();
    for (const [socket, exchange] of connections) if (stillArriving(socket, exchange) && !answering(exchange)) socket.destroy();
    const closeLeft = setTimeout(closeUnanswering, STOP_CONNECTIONS_MS);
    closeLeft.unref();
    app.server.once('close', () => clearTimeout(closeLeft));
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!stopping) return;
    reply.header('connection', 'close');
    throw new ApiError(503, 'shutting_down', 'the API is stopping: send the request again (to another API process)', undefined, 1);
  });
  // Every answer sent once the stop has begun closes its connection, those of requests in flight
  // when it began too: fastify's close waits for each connection to end, and Node ends a
  // keep-alive one only once it has been idle for its keep-alive timeout (72 s).
  app.addHook('onSend', async (_request, reply) => {
    if (stopping) reply.header('connection', 'close');
  });
  // A body is parsed as sent: a compressed one would read as malformed JSON. Refused as what it
  // is instead (RFC 9110: 415 for a content coding the server does not take).
  app.addHook('onRequest', async (request) => {
    const coding = request.headers['content-encoding']?.trim().toLowerCase();
    if (coding !== undefined && coding !== '' && coding !== 'identity') {
      throw new ApiError(415, 'unsupported_content_encoding', `Content-Encoding "${coding}" is not supported: send the body uncompressed`);
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'cellblock',
        description: 'Sandboxed code execution: submit a program, get its output, verdict and metrics.',
        version: '1',
      },
      components: { securitySchemes: API_KEY_SECURITY_SCHEMES },
    },
    // Each route says every answer it gives (src/api/openapi.ts), and each route that runs code
    // names the key headers it takes (optional without configured keys).
    transform: ({ schema, url, route }) => {
      const keysRequired = config.apiKeys.length > 0;
      const documented = documentedSchema(schema, route, keysRequired);
      const security = openApiSecurity(route.config, keysRequired);
      return { schema: security ? { ...documented, security } : documented, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Live jobs' sockets (/v1/live, Piston's /api/v2/connect). A message is at most a body's size.
  // Closing, the API ends each open one with its front's word and cancels its job (no one will
  // read its output) while the job client is still open; the plugin's own would close them bare.
  // A session's stdin, all its messages together, at most what one submission's could be.
  const liveSockets = new LiveSockets({ maxPerClient: config.maxLiveSessionsPerClient, maxStdinBytes: config.bodyLimitBytes }, jobs);
  await app.register(websocket, {
    options: { maxPayload: config.bodyLimitBytes },
    // A socket's own errors are its client's (a reset, a message over maxPayload, which ws closes
    // with 1009): not the API's to log as errors. A throw from a route's handler is ours.
    errorHandler: (error, socket, request) => {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      const clients = code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE';
      request.log[clients ? 'info' : 'error']({ err: error }, 'live socket error');
      socket.terminate();
    },
    preClose: async () => {
      await liveSockets.closeAll();
      for (const client of app.websocketServer.clients) client.close(1001, 'server stopping');
    },
  });
  // ws refuses a handshake it cannot take (a malformed Sec-WebSocket-Key, an Upgrade other than
  // websocket, h2c say, a version it does not speak) in a text/html 400 of its own: said instead
  // as every refusal of the route is, in its front's shape (Piston's `{"message"}` under its
  // prefixes). The connection is closed, which frees the place the upgrade had claimed.
  app.websocketServer.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) => {
    const message = `the WebSocket handshake is not valid: ${error.message}`;
    const piston = request.url?.startsWith(`${PISTON_ROOT}/`) ?? false;
    // Sec-WebSocket-Version names the versions it speaks, as RFC 6455 (4.4) asks and ws does.
    const headers: Record<string, string> = /Sec-WebSocket-Version/i.test(error.message) ? { 'Sec-WebSocket-Version': '13, 8' } : {};
    writeRawAnswer(socket, 400, piston ? { message } : { error: { code: 'invalid_upgrade', message } }, headers);
    socket.destroy();
  });
  app.addSchema(ErrorBody);

  await app.register(healthRoutes, { jobs, workerCountMaxAgeMs: config.workerHeartbeatTtlMs });
  await app.register(metricsRoutes, { jobs, liveSockets });

  const fronts = await loadCompatFronts();
  // Everything that runs code sits behind the optional keys and the rate limit.
  await app.register(async (scope) => {
    await registerAuth(scope, {
      apiKeys: config.apiKeys,
      redeemLiveTicket: (ticket) => jobs.redeemLiveTicket(ticket),
      rateLimitWindowMs: config.rateLimitWindowMs,
      defaultRequestsPerWindow: config.defaultRequestsPerWindow,
      ...(options.rateLimitRedis ? { rateLimitRedis: options.rateLimitRedis } : {}),
    });
    await scope.register(runtimeRoutes, { prefix: '/v1', runtimes });
    const policy = {
      maxFiles: config.maxFiles,
      maxTests: config.maxTests,
      maxArgs: config.maxArgs,
      maxJobOutputBytes: config.maxJobOutputBytes,
      webhookDestinations: config.webhookDestinations,
    };
    await scope.register(jobRoutes, {
      prefix: '/v1',
      jobs,
      runtimes,
      policy: { ...policy, maxBatchJobs: config.maxBatchJobs, maxWaitMs: config.maxWaitMs },
    });
    await scope.register(liveRoutes, { prefix: '/v1', jobs, runtimes, policy, liveSockets });
    for (const front of fronts) {
      for (const prefix of front.prefixes) {
        await scope.register(front.plugin, { prefix, jobs, runtimes, policy, maxWaitMs: config.maxWaitMs, maxQueuedJobs: config.maxQueuedJobs, maxExpansionBytes: config.bodyLimitBytes, liveSockets });
      }
    }
  });

  return app;
}
