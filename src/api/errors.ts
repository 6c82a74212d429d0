// One error shape for every front: `{ error: { code, message } }` with a 4xx for anything the
// caller got wrong and 429/503 + Retry-After when the service is busy or Redis is away. Nothing
// a client can send reaches the 500 branch.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { shownUnits } from '../executor/check.js';
import { BatchAboveQueueMaximumError, IdempotencyConflictError, QueueFullError, QueueUnavailableError, RedisRefusingWritesError, WorkersBehindError } from '../queue/errors.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new ApiError(400, code, message, details);

/** A JSON text with a key that could set an object's prototype, refused as what it is (HTTP bodies,
 * /v1/live's messages). */
export const prototypeKeyRefusal = (): ApiError =>
  badRequest('invalid_request', "a key named __proto__, or a constructor key holding a prototype key, is not accepted: it could set an object's prototype");

/** Could `text` hold such a key: the words, or a \u escape that could spell them (secure-json-parse
 * reads escaped keys too). A cheap test before hasPrototypeKey's walk. */
const MAYBE_PROTOTYPE_KEY = /__proto__|constructor|\\u00/;

/** Whether a parsed JSON value (from `text`) has a key named `__proto__`, or a `constructor` key
 * holding an object with a `prototype` key, at any depth: what fastify's JSON parser refuses. */
export function hasPrototypeKey(text: string, value: unknown): boolean {
  if (!MAYBE_PROTOTYPE_KEY.test(text)) return false;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (next === null || typeof next !== 'object') continue;
    if (Object.hasOwn(next, '__proto__')) return true;
    const constructor = Object.hasOwn(next, 'constructor') ? (next as Record<string, unknown>).constructor : undefined;
    if (constructor !== null && typeof constructor === 'object' && Object.hasOwn(constructor, 'prototype')) return true;
    // One push a value, never push(...values): a spread passes each value as an argument on the
    // stack, and an array of ~150,000 items (a 300 KB message) overflowed it, ending the API.
    for (const inner of Object.values(next)) if (inner !== null && typeof inner === 'object') pending.push(inner);
  }
  return false;
}

/** fastify's own errors, by code, as ours. */
const FASTIFY_ERRORS: Record<string, { statusCode: number; code: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { statusCode: 400, code: 'invalid_json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { statusCode: 400, code: 'invalid_json' },
  FST_ERR_CTP_BODY_TOO_LARGE: { statusCode: 413, code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { statusCode: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { statusCode: 400, code: 'invalid_content_length' },
  FST_ERR_CTP_INVALID_TYPE: { statusCode: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_EMPTY_TYPE: { statusCode: 415, code: 'unsupported_media_type' },
  FST_ERR_BAD_URL: { statusCode: 400, code: 'bad_url' },
  FST_ERR_MAX_PARAM_LENGTH: { statusCode: 414, code: 'url_too_long' },
  FST_ERR_ASYNC_CONSTRAINT: { statusCode: 400, code: 'bad_request' },
};

/** A request's path as a message quotes it: its start where it is long (up to the headers' 16
 * KiB), as a file name is shortened, never inside a character. */
const shownPath = (request: FastifyRequest): string => JSON.stringify(shownUnits(request.url.split('?')[0]!));

/** fastify's messages for the router's errors repeat the whole path (a 414's, thousands of
 * characters): ours quote its start. */
const URL_ECHOING_ERRORS: Record<string, (request: FastifyRequest) => string> = {
  FST_ERR_BAD_URL: (request) => `a path parameter of ${shownPath(request)} is not valid percent-encoding`,
  FST_ERR_MAX_PARAM_LENGTH: (request) =>
    `a path parameter of ${shownPath(request)} is longer than the router takes (${request.server.initialConfig.maxParamLength ?? 100} characters)`,
};

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Unknown fields a message names: the first few, and how many more (a body may have 400,000). */
const SHOWN_NAMES = 10;

function shownNames(names: string[]): string {
  const shown = names.slice(0, SHOWN_NAMES).map((name) => shownUnits(name)).join(', ');
  return names.length > SHOWN_NAMES ? `${shown}, and ${names.length - SHOWN_NAMES} more` : shown;
}

function describeValidation(error: FastifyError): { message: string; issues: { path: string; message: string }[] } {
  const context = error.validationContext ?? 'request';
  const issues = ((error.validation ?? []) as ValidationIssue[])
    // TypeBox reports an unknown property twice (as `schema is false` and as additionalProperties);
    // the validator reports them itself, once per object (validator.ts), but keeps the clear one.
    .filter((issue) => issue.keyword !== 'boolean')
    .map((issue) => {
      const extra = issue.keyword === 'additionalProperties' ? ` (${shownNames((issue.params?.additionalProperties as string[] | undefined) ?? [])})` : '';
      return { path: `${context}${issue.instancePath ?? ''}`, message: `${issue.message ?? 'is invalid'}${extra}` };
    });
  const first = issues[0];
  return { message: first ? `${first.path} ${first.message}` : error.message, issues };
}

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  const body: { error: { code: string; message: string; details?: Record<string, unknown> } } = {
    error: { code: error.code, message: error.message },
  };
  if (error.details) body.error.details = error.details;
  return reply.code(error.statusCode).send(body);
}

/** Turns any thrown error into an ApiError; unknown ones become a logged 500. */
export function toApiError(error: unknown, request: FastifyRequest): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof QueueUnavailableError) {
    // A submission Redis did not answer in time: its jobs by id, so that the caller can read them
    // (withdrawn: cancelled, or unknown), and whether they were withdrawn.
    const unanswered = error.unanswered;
    const details = unanswered && {
      ...(unanswered.batch ? { ids: unanswered.jobIds } : { id: unanswered.jobIds[0] }),
      withdrawn: unanswered.withdrawn,
    };
    return new ApiError(503, 'queue_unavailable', error.message, details, error.retryAfterSeconds);
  }
  if (error instanceof RedisRefusingWritesError) {
    return new ApiError(503, error.refusal === 'full' ? 'redis_full' : 'redis_refusing_writes', error.message, undefined, error.retryAfterSeconds);
  }
  if (error instanceof IdempotencyConflictError) {
    return new ApiError(422, 'idempotency_key_reused', error.message, { id: error.jobId });
  }
  if (error instanceof WorkersBehindError) {
    return new ApiError(503, 'workers_behind', error.message, { fields: error.fields, workers: error.workers }, error.retryAfterSeconds);
  }
  if (error instanceof BatchAboveQueueMaximumError) {
    return new ApiError(400, 'batch_above_queue_maximum', error.message, { jobs: error.jobs, maximum: error.maxQueuedJobs });
  }
  if (error instanceof QueueFullError) {
    return new ApiError(429, 'queue_full', error.message, { queuedJobs: error.queuedJobs }, error.retryAfterSeconds);
  }
  if (error instanceof RangeError && /Invalid string length/.test(error.message)) {
    // The answer's JSON text would pass V8's longest string: outputs of control bytes, escaped as
    // \u0000 (six characters a byte), across many tests. Base64 is 4/3 of the bytes.
    return new ApiError(406, 'response_too_large', 'the result is too large to answer as JSON text; ask for its outputs as base64 (?outputEncoding=base64 on /v1, ?base64_encoded=true on Judge0)');
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { message, issues } = describeValidation(fastifyError);
    return new ApiError(400, 'invalid_request', message, { issues });
  }
  const known = fastifyError.code ? FASTIFY_ERRORS[fastifyError.code] : undefined;
  if (known) return new ApiError(known.statusCode, known.code, URL_ECHOING_ERRORS[fastifyError.code!]?.(request) ?? fastifyError.message);
  if (fastifyError.statusCode === 429) {
    return new ApiError(429, 'rate_limited', fastifyError.message);
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new ApiError(fastifyError.statusCode, 'bad_request', fastifyError.message);
  }
  request.log.error({ err: error }, 'unhandled error');
  return new ApiError(500, 'internal_error', 'the server failed to handle the request');
}

/** For fastify's `clientErrorHandler` option: a request Node's HTTP parser refuses before fastify
 * sees it (a body shorter than its Content-Length, both Content-Length and Transfer-Encoding, too
 * many header bytes, too slow) gets the same body shape as every other error, then the connection
 * is closed. (fastify's default answers `{"error": "Bad Request", ...}`.) */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection is gone: there is no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request did not arrive in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', "the request's headers are larger than the server takes"]
        : [400, 'bad_request', `the request is not valid HTTP (${error.code ?? error.message})`];
  // The code and message alone: Node's parser error carries the raw request (rawPacket), API keys
  // in its headers included, which the error serializer would log (as a Buffer's bytes).
  this.log.debug({ code: error.code, reason: error.message }, 'malformed HTTP request');
  // Not once an answer on the connection has begun (a request timing out or malformed behind one
  // being answered: pipelined, or a body still coming after an early answer): ours would land in
  // its midst, and the client would read both as garbage. Node's own handler checks the same.
  if (!(socket as { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent) writeRawAnswer(socket, statusCode, { error: { code, message } });
  socket.destroy(error);
}

/** An answer written on a connection fastify does not answer on (Node's parser refused the
 * request, or it asked for an upgrade), which is then closed: the caller destroys it. */
export function writeRawAnswer(socket: Duplex, statusCode: number, answer: unknown, headers: Record<string, string> = {}): void {
  if (!socket.writable) return;
  const body = JSON.stringify(answer);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\n${extra}Connection: close\r\n\r\n${body}`);
}

/** For fastify's `frameworkErrors` option: errors the router raises before any route (a URL that
 * does not decode, a path parameter that is too long) get the same shape as every other error. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toApiError(error, request));
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => sendError(reply, toApiError(error, request)));
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError(404, 'route_not_found', `no route ${request.method} ${shownPath(request)}`)),
  );
}
