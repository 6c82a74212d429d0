// The OpenAPI document (/docs/json) as the service answers: each route's statuses, bodies and
// headers, its own and those every route of its kind is answered with (a rate limit's 429, an
// HTTP parser's 431, ...). @fastify/swagger reads each route's schema; this file's transform adds
// to what it reads, for the document only: nothing here validates a request or shapes an answer.
// A route whose request or answers no fastify schema should check or serialize (the compat
// fronts', which parse their requests as the APIs they imitate do and answer bodies of their own
// shapes, which a response schema would strip of fields it does not list) says them in its
// config's `openapi`, read by this file alone.
import { STATUS_CODES } from 'node:http';
import type { FastifySchema, RouteOptions } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { ErrorBody } from './schemas.js';

/** One answer of a route, for the document. */
export interface DocumentedResponse {
  description: string;
  /** The body's schema; none for an empty body. */
  schema?: TSchema;
  /** The body's media type (application/json unless said). */
  mediaType?: string;
}

/** What a route's config says for the document alone (never checked against a request or used to
 * serialize an answer). */
export interface RouteDocument {
  /** The route's description, where its schema has none. */
  description?: string;
  querystring?: TSchema;
  params?: TSchema;
  headers?: TSchema;
  body?: TSchema;
  /** The media types the body is taken in (application/json unless said). */
  consumes?: string[];
  /** Answers beyond the route schema's `response` (its own shapes, for a compat front). */
  responses?: Record<number, DocumentedResponse>;
  /** The body the route's error handler answers its errors with (a front's own: Judge0's
   * `{"error"}`, Piston's `{"message"}`); /v1's ErrorBody when absent. */
  errorBody?: TSchema;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route as the OpenAPI document says it, beyond its schema (src/api/openapi.ts). */
    openapi?: RouteDocument;
  }
}

/** A schema or null, as the fronts' documents write their nullable fields. */
export const nullable = (schema: TSchema) => Type.Union([schema, Type.Null()]);

/** A documented answer with a JSON body. */
export const jsonAnswer = (description: string, schema: TSchema): DocumentedResponse => ({ description, schema });

/** The answer to an upgrade that opens a live socket (/v1/live, Piston's /connect). */
export const LIVE_SOCKET_OPENED: DocumentedResponse = { description: "Switching Protocols: the WebSocket is open (its messages: the route's description)" };

const RETRY_AFTER = { type: 'integer', description: 'Seconds to wait before trying again.' };
/** @fastify/rate-limit's, on every answer of a rate-limited route past its key's check. */
const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': { type: 'integer', description: "Requests this key (or, without keys, this address) may make per window." },
  'X-RateLimit-Remaining': { type: 'integer', description: 'Requests left in the window.' },
  'X-RateLimit-Reset': { type: 'integer', description: 'Seconds until the window ends.' },
};

/** What an error status means on any route (README, "Errors", names every code). */
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed or invalid request (README, "Errors"): a body or query the route does not take, or a request the HTTP parser refuses (bad_request, in /v1\'s shape on every route, the connection then closed)',
  401: 'API keys are configured and none, or an unknown one, came with the request (api_key_required, invalid_api_key; invalid_ticket)',
  403: 'Forbidden',
  404: 'Not found (job_not_found: no such job, or its result has expired)',
  406: 'The answer would be too large as JSON text (response_too_large): ask for base64 outputs',
  408: 'The request did not arrive in time (request_timeout); the connection is closed',
  413: 'The body is larger than CELLBLOCK_BODY_LIMIT_BYTES (body_too_large)',
  414: 'A path parameter longer than the router takes (url_too_long)',
  415: 'A body that is not of a media type the route takes (unsupported_media_type), or a compressed one (unsupported_content_encoding)',
  422: 'The request cannot be taken as it is (idempotency_key_reused: the Idempotency-Key names a job of another submission)',
  426: 'Not a WebSocket upgrade (upgrade_required)',
  429: 'Too many requests: the rate limit of this key, or address (rate_limited); or the route\'s own limit (queue_full, too_many_live_sessions). With Retry-After',
  431: "The request's headers are larger than the server takes (headers_too_large); the connection is closed",
  500: 'The service failed',
  503: 'The service cannot take the request now (Redis unreachable, full or refusing writes, an upgrade under way, the API stopping); with Retry-After',
};

/** A status's schemas by media type, its description and its headers, as they are gathered. */
interface Answer {
  description: string;
  bodies: Map<string, TSchema[]>;
  headers: Record<string, object>;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The route's schema as the document says it: its own, with its config's `openapi` and the
 * answers every route of its kind gets. */
export function documentedSchema(schema: FastifySchema | undefined, route: RouteOptions, keysRequired: boolean): FastifySchema {
  const document = route.config?.openapi ?? {};
  const frontError = document.errorBody ?? ErrorBody;
  const answers = new Map<number, Answer>();
  const answer = (status: number, description?: string): Answer => {
    let found = answers.get(status);
    if (!found) answers.set(status, (found = { description: description ?? ERROR_DESCRIPTIONS[status] ?? STATUS_CODES[status] ?? String(status), bodies: new Map(), headers: {} }));
    return found;
  };
  const add = (status: number, body: TSchema | undefined, mediaType = 'application/json', description?: string): void => {
    const found = answer(status, description);
    if (body === undefined) return;
    const bodies = found.bodies.get(mediaType) ?? [];
    if (!bodies.includes(body)) bodies.push(body);
    found.bodies.set(mediaType, bodies);
  };

  for (const [status, body] of Object.entries((schema?.response ?? {}) as Record<string, TSchema>)) add(Number(status), body);
  for (const [status, response] of Object.entries(document.responses ?? {})) add(Number(status), response.schema, response.mediaType, response.description);

  // Before any route: Node's HTTP parser (clientErrorHandler) and the router (frameworkErrors)
  // answer in /v1's shape whatever the route.
  add(400, ErrorBody);
  add(408, ErrorBody);
  add(431, ErrorBody);
  const url = String(route.url ?? '');
  if (url.includes(':')) {
    add(400, ErrorBody); // bad_url
    add(414, ErrorBody);
  }
  // The app's own hooks, answered by the route's error handler in its front's shape.
  add(415, frontError); // unsupported_content_encoding, on every route
  add(503, frontError); // shutting_down, a request that comes while the API stops
  const methods = [route.method].flat();
  if (methods.some((method) => BODY_METHODS.has(method))) {
    add(400, frontError); // invalid_json
    add(413, frontError);
    add(415, frontError);
  }
  const rateLimited = route.config?.apiKeyProtected === true;
  if (rateLimited) {
    // The key check runs only where keys are configured (registerAuth).
    if (keysRequired) add(401, frontError);
    add(429, frontError);
  }
  for (const [status, found] of answers) {
    if (status === 429 || status === 503) found.headers['Retry-After'] = RETRY_AFTER;
    if (rateLimited) Object.assign(found.headers, RATE_LIMIT_HEADERS);
  }

  const response: Record<string, unknown> = {};
  for (const status of [...answers.keys()].sort((a, b) => a - b)) {
    const { description, bodies, headers } = answers.get(status)!;
    const content = Object.fromEntries(
      [...bodies].map(([mediaType, schemas]) => [mediaType, { schema: schemas.length === 1 ? schemas[0] : Type.Union(schemas) }]),
    );
    response[status] = {
      description,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      // An empty body: swagger writes no content for a schema of type null.
      ...(bodies.size > 0 ? { content } : { type: 'null' }),
    };
  }
  const { description, querystring, params, headers, body, consumes } = document;
  return {
    ...schema,
    ...(description && !schema?.description ? { description } : {}),
    ...(querystring && !schema?.querystring ? { querystring } : {}),
    ...(params && !schema?.params ? { params } : {}),
    ...(headers && !schema?.headers ? { headers } : {}),
    ...(body && !schema?.body ? { body, ...(consumes ? { consumes } : {}) } : {}),
    response,
  };
}
