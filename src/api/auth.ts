// Optional API keys and per-key rate limits, for the routes that run code (/v1 and the compat
// fronts). Keys arrive as `Authorization: Bearer KEY` or `X-API-Key: KEY`, or in headers a
// route names in its config (`apiKeyHeaders`: the Judge0 front's `X-Auth-Token`, which clients of
// a self-hosted Judge0 send, and `X-RapidAPI-Key`, which clients of the hosted one on RapidAPI
// send), or in a query parameter it names (`apiKeyQueryParameter`: Judge0's X-Auth-Token). A live
// socket's upgrade may bring a live ticket instead (`?ticket=`, a route whose config says
// `liveTicket`): a browser cannot set headers on a WebSocket, so its page's server asks for a
// ticket with its key (POST /v1/live/tickets) and hands it on; the ticket stands for that key,
// once. Without configured keys the API is open and callers are rate-limited by address; with
// them, requests that bring no valid key or ticket are, before they are refused.
import rateLimit from '@fastify/rate-limit';
import type { FastifyContextConfig, FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { ApiKey } from '../config.js';
import { sha256Hex } from '../digest.js';
import { ApiError } from './errors.js';

export interface AuthOptions {
  apiKeys: ApiKey[];
  /** The holder a live ticket was issued for (liveTicketHolder's), once; undefined for a ticket
   * unknown, used or expired. */
  redeemLiveTicket: (ticket: string) => Promise<string | undefined>;
  rateLimitWindowMs: number;
  defaultRequestsPerWindow: number;
  /** Shared counter store, so that limits hold across API machines; in-process when absent. */
  rateLimitRedis?: Redis;
}

const digest = sha256Hex;

/** Who a live ticket is issued for: the asking request's API key, by digest (none without keys). */
export function liveTicketHolder(request: FastifyRequest): string {
  return request.apiKey ? digest(request.apiKey.key) : '';
}

/** Of a request that repeats `?ticket=`, how many distinct tickets are spent at most. */
const MAX_TICKETS_SPENT = 4;

/** The `ticket` query parameters of a route that takes one: none, one, or (a request that repeats
 * the parameter, which is refused) several. */
function presentedTickets(request: FastifyRequest): string[] {
  if (!request.routeOptions.config?.liveTicket) return [];
  const ticket = (request.query as Record<string, unknown> | undefined)?.ticket;
  if (typeof ticket === 'string') return [ticket];
  return Array.isArray(ticket) ? ticket.filter((each): each is string => typeof each === 'string') : [];
}

/** A URL as the access log writes it: a ticket in its query is not (one refused before it was
 * redeemed, or sent to another route, would still be good), nor a key (Judge0's X-Auth-Token,
 * which Judge0 takes from the query too, or a key header's name used as a parameter). Headers are
 * never logged, so a key sent in one (X-Auth-Token, X-RapidAPI-Key, ...) is not either. */
export function loggableUrl(url: string): string {
  // Read as the router and its query parser read it: the query after the first `?` or `#`,
  // parameters between `&`, a name up to its first `=`, `+` a space, then percent-decoded (the
  // raw name where that fails).
  const start = url.search(/[?#]/);
  if (start < 0) return url;
  const parameters = url.slice(start + 1).split('&').map((parameter) => {
    const equals = parameter.indexOf('=');
    const name = equals < 0 ? parameter : parameter.slice(0, equals);
    let decoded = name.replace(/\+/g, ' ');
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      // Not percent-encoding: as written.
    }
    return SECRET_QUERY_PARAMETERS.has(decoded.toLowerCase()) ? `${name}=[redacted]` : parameter;
  });
  return `${url.slice(0, start + 1)}${parameters.join('&')}`;
}


/** The key headers a request's route takes, in the order they are read: ours, then its own. */
const keyHeadersOf = (request: FastifyRequest): string[] => ['X-API-Key', ...(request.routeOptions.config?.apiKeyHeaders ?? [])];

/** `Authorization: Bearer KEY`, the scheme's name in any case (RFC 9110 11.1: case-insensitive). */
const BEARER = /^bearer[ \t]+(.*)$/is;

function presentedKey(request: FastifyRequest): string | undefined {
  const bearer = request.headers.authorization?.match(BEARER);
  if (bearer) return bearer[1]!.trim();
  for (const name of keyHeadersOf(request)) {
    const header = request.headers[name.toLowerCase()];
    if (typeof header === 'string') return header.trim();
  }
  // A route may take the key as a query parameter too, as Judge0 takes its X-Auth-Token ("in
  // headers or query parameters": a browser's link or a form cannot set one).
  const parameter = request.routeOptions.config?.apiKeyQueryParameter;
  const inQuery = parameter === undefined ? undefined : (request.query as Record<string, unknown> | undefined)?.[parameter];
  return typeof inQuery === 'string' ? inQuery.trim() : undefined;
}

const headersNamed = (request: FastifyRequest): string => {
  const names = ['Authorization: Bearer KEY', ...keyHeadersOf(request)];
  return `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
};

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
  interface FastifyContextConfig {
    /** Other headers the route takes the API key from, as the API it imitates names them (read
     * after Authorization and X-API-Key, in this order). */
    apiKeyHeaders?: readonly string[];
    /** A query parameter the route takes the API key from too (read after every header); the
     * access log hides it (loggableUrl, SECRET_QUERY_PARAMETERS). */
    apiKeyQueryParameter?: string;
    /** A live socket's route: its upgrade may bring a live ticket (`?ticket=`) in place of a key. */
    liveTicket?: boolean;
    /** Behind the optional API keys (set by registerAuth): what the OpenAPI document says. */
    apiKeyProtected?: boolean;
  }
}

/** The OpenAPI security schemes a key may arrive by: the document's components. */
export const API_KEY_SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer KEY' },
  'X-API-Key': { type: 'apiKey', in: 'header', name: 'X-API-Key' },
  'X-Auth-Token': { type: 'apiKey', in: 'header', name: 'X-Auth-Token', description: 'Judge0 CE routes only, as Judge0 names it' },
  'X-RapidAPI-Key': { type: 'apiKey', in: 'header', name: 'X-RapidAPI-Key', description: 'Judge0 CE routes only, as the hosted Judge0 on RapidAPI names it (X-RapidAPI-Host is ignored)' },
  liveTicket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'Live socket routes only: a live ticket (POST /v1/live/tickets), for one connection' },
} as const;

/** Query parameters that carry a secret (loggableUrl): a live ticket; a key where a route takes
 * one there (apiKeyQueryParameter: Judge0's X-Auth-Token), and one a client put there by mistake
 * under the name of a key header (X-API-Key, X-RapidAPI-Key, Authorization: refused, but a key
 * all the same). Matched as the query parser reads them (decoded, any case). */
const SECRET_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  ...Object.values(API_KEY_SECURITY_SCHEMES).flatMap((scheme) => (scheme.type === 'apiKey' ? [scheme.name.toLowerCase()] : [])),
  'authorization',
]);

/** A route's OpenAPI `security`: for a protected route, any one of the headers it takes a key
 * from, or none as well when the server has no keys configured; undefined for an open route. */
export function openApiSecurity(config: FastifyContextConfig | undefined, keysRequired: boolean): Array<Record<string, string[]>> | undefined {
  if (!config?.apiKeyProtected) return undefined;
  const own = (config.apiKeyHeaders ?? []).filter((name) => name in API_KEY_SECURITY_SCHEMES);
  const schemes = ['bearer', 'X-API-Key', ...own, ...(config.liveTicket ? ['liveTicket'] : [])];
  return [...schemes.map((scheme) => ({ [scheme]: [] })), ...(keysRequired ? [] : [{}])];
}

/** Call inside the scope of the protected routes, before registering them. */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  // Looked up by digest, so that comparing keys does not leak how much of a key matched.
  const keysByDigest = new Map(options.apiKeys.map((apiKey) => [digest(apiKey.key), apiKey]));
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, apiKeyProtected: true };
  });
  /** Sets request.apiKey from its key or live ticket; throws its refusal (401, a repeated ticket's 400). */
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    // A ticket brought to a live route is spent, whatever else the request carries: one seen
    // (in a page's history, say) next to a key must not stay good.
    const tickets = presentedTickets(request);
    if (tickets.length > 1) {
      // Spent all the same (one seen beside another must not stay good), then refused as the
      // query it is: the schema takes one ticket (and says so, without keys). The first few
      // distinct ones only: this runs before the rate limit counts the request, and the header
      // limit fits ~320 (a Redis transaction each); a page's URL carries one, so a request with
      // more than a few was made so, and its tickets are its maker's own.
      await Promise.all([...new Set(tickets)].slice(0, MAX_TICKETS_SPENT).map((ticket) => options.redeemLiveTicket(ticket)));
      const message = `is given ${tickets.length} times: give one ticket, once`;
      throw new ApiError(400, 'invalid_request', `querystring/ticket ${message}`, { issues: [{ path: 'querystring/ticket', message }] });
    }
    const ticket = tickets[0];
    if (ticket !== undefined) {
      // A well-shaped unknown ticket costs one Redis round trip (as an unknown key costs a
      // lookup), anything else none.
      const holder = await options.redeemLiveTicket(ticket);
      const apiKey = holder === undefined ? undefined : keysByDigest.get(holder);
      if (!apiKey) throw new ApiError(401, 'invalid_ticket', 'the live ticket is unknown, used or expired: POST /v1/live/tickets issues one, for one connection');
      request.apiKey = apiKey;
      return;
    }
    const key = presentedKey(request);
    if (!key) {
      const orTicket = request.routeOptions.config?.liveTicket ? ', or a live ticket as ?ticket=' : '';
      throw new ApiError(401, 'api_key_required', `this server needs an API key (${headersNamed(request)}${orTicket})`);
    }
    const apiKey = keysByDigest.get(digest(key));
    if (!apiKey) throw new ApiError(401, 'invalid_api_key', 'the API key is not valid');
    request.apiKey = apiKey;
  };
  /** A request's refusal for its key or ticket, thrown once the rate limit has counted it (below). */
  const refusals = new WeakMap<FastifyRequest, ApiError>();
  if (keysByDigest.size > 0) {
    app.addHook('onRequest', async (request) => {
      try {
        await authenticate(request);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        refusals.set(request, error);
      }
    });
  }
  await app.register(rateLimit, {
    // After authentication (the scope's onRequest hook above runs before a route's own), so that
    // the limit is the key's own; before anything a refused request should not cost: its body's
    // parsing, a live socket's claim on its place (a route preHandler). A request without a
    // valid key (or ticket) counts against its client address, as without keys, before its
    // refusal: thrown at once, those were never limited (1,400 401s a second from one client,
    // slowing the keys' own requests: a probe by hand, 2026-12-07).
    hook: 'onRequest',
    timeWindow: options.rateLimitWindowMs,
    max: (request) => request.apiKey?.requestsPerWindow ?? options.defaultRequestsPerWindow,
    keyGenerator: (request) => (request.apiKey ? `key:${digest(request.apiKey.key)}` : `ip:${request.ip}`),
    nameSpace: 'cellblock-ratelimit:',
    skipOnError: true,
    ...(options.rateLimitRedis ? { redis: options.rateLimitRedis } : {}),
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, 'rate_limited', `rate limit of ${context.max} requests exceeded; retry in ${context.after}`),
  });
  // Thrown once the rate limit has counted the request: its hook is each route's own onRequest
  // (it adds one to each route as it is declared), and a scope's preParsing hooks run after every
  // onRequest hook (fastify's lifecycle), GET's included. Only with keys: without, nothing is refused.
  if (keysByDigest.size > 0) {
    app.addHook('preParsing', async (request) => {
      const refusal = refusals.get(request);
      if (refusal) throw refusal;
    });
  }
}
