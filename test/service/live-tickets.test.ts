// Live tickets: a browser cannot set headers on a WebSocket, so where API keys are required its
// page's server asks for a ticket with its key (POST /v1/live/tickets) and the page connects with
// it (?ticket=): once, for the key that asked, on the live socket routes only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/queue/keys.js';
import { openLiveSocket, type LiveSocket } from '../helpers/live-socket.js';
import { until } from '../helpers/until.js';
import { listen, startService, type ServiceHarness } from './fixtures.js';

const KEY = 'page-server-key-0';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const TIGHT_KEY = 'key-with-one-00';
/** A key with a live socket cap of its own (CELLBLOCK_API_KEYS' third figure). */
const ONE_SOCKET_KEY = 'one-socket-key-0';

function assertError(response: LightMyRequestResponse, statusCode: number, code: string): string {
  assert.equal(response.statusCode, statusCode, response.body);
  const body = response.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, response.body);
  return body.error.message;
}

describe('live tickets', () => {
  let service: ServiceHarness;
  let wsBase: string;
  const issue = async (key = KEY): Promise<string> => {
    const issued = await service.app.inject({ method: 'POST', url: '/v1/live/tickets', headers: { 'x-api-key': key } });
    assert.equal(issued.statusCode, 201, issued.body);
    const body = issued.json() as { ticket: string; expiresInMs: number };
    assert.equal(body.expiresInMs, 60_000);
    return body.ticket;
  };

  before(async () => {
    service = await startService({
      config: {
        apiKeys: [
          { key: KEY, requestsPerWindow: 100 },
          { key: TIGHT_KEY, requestsPerWindow: 2 },
          { key: ONE_SOCKET_KEY, requestsPerWindow: 100, maxLiveSessions: 1 },
        ],
        rateLimitWindowMs: 60_000,
      },
    });
    wsBase = (await listen(service)).replace(/^http/, 'ws');
  });
  after(async () => {
    await service?.close();
  });

  test('issued only to a key; a socket opened with one works, and the ticket is spent', async () => {
    assertError(await service.app.inject({ method: 'POST', url: '/v1/live/tickets' }), 401, 'api_key_required');
    const ticket = await issue();
    assert.match(ticket, /^[A-Za-z0-9_-]{43}$/);
    const socket = await openLiveSocket(`${wsBase}/v1/live?ticket=${ticket}`);
    socket.send({ type: 'shout' });
    const error = await socket.next((m) => m.type === 'error');
    assert.equal(error.error.code, 'invalid_message', 'the socket is open and served');
    await socket.closed;
    await assert.rejects(openLiveSocket(`${wsBase}/v1/live?ticket=${ticket}`), /401/);
    // Said as every refusal is (a plain GET reaches the same check before its 426).
    assertError(await service.app.inject({ url: `/v1/live?ticket=${ticket}` }), 401, 'invalid_ticket');
  });

  test('a ticket given twice is 400 invalid_request naming the parameter, and spent', async () => {
    const ticket = await issue();
    const twice = await service.app.inject({ url: `/v1/live?ticket=${ticket}&ticket=${ticket}` });
    assert.match(assertError(twice, 400, 'invalid_request'), /^querystring\/ticket is given 2 times/);
    assert.deepEqual(twice.json().error.details, { issues: [{ path: 'querystring/ticket', message: 'is given 2 times: give one ticket, once' }] });
    assertError(await service.app.inject({ url: `/v1/live?ticket=${ticket}` }), 401, 'invalid_ticket');
  });

  test('of a ticket given many times, the first 4 distinct are spent, not one Redis transaction each; the message counts them all', async () => {
    const redeem = service.jobs.redeemLiveTicket.bind(service.jobs);
    let redeemed = 0;
    service.jobs.redeemLiveTicket = (ticket) => ((redeemed += 1), redeem(ticket));
    try {
      const tickets = await Promise.all([1, 2, 3, 4, 5].map(() => issue()));
      const query = [...tickets, ...new Array<string>(300).fill(tickets[0]!)].map((ticket) => `ticket=${ticket}`).join('&');
      const many = await service.app.inject({ url: `/v1/live?${query}` });
      assert.match(assertError(many, 400, 'invalid_request'), /^querystring\/ticket is given 305 times/);
      assert.equal(redeemed, 4);
      for (const ticket of tickets.slice(0, 4)) assertError(await service.app.inject({ url: `/v1/live?ticket=${ticket}` }), 401, 'invalid_ticket');
      assert.equal((await service.app.inject({ url: `/v1/live?ticket=${tickets[4]}` })).statusCode, 426, 'the fifth is left');
    } finally {
      service.jobs.redeemLiveTicket = redeem;
    }
  });

  test('POST /v1/live/tickets takes no body: 415 for one not JSON, 400 invalid_request for JSON; none, an empty one or `{}` is issued', async () => {
    const post = (headers: Record<string, string>, payload?: string) =>
      service.app.inject({ method: 'POST', url: '/v1/live/tickets', headers: { 'x-api-key': KEY, ...headers }, ...(payload === undefined ? {} : { payload }) });
    assertError(await post({ 'content-type': 'text/plain' }, 'hello'), 415, 'unsupported_media_type');
    assertError(await post({ 'content-type': 'application/json' }, '{"a": 1}'), 400, 'invalid_request');
    assertError(await post({ 'content-type': 'application/json' }, 'null'), 400, 'invalid_request');
    assertError(await post({ 'content-type': 'application/json' }, '[]'), 400, 'invalid_request');
    assert.equal((await post({})).statusCode, 201);
    assert.equal((await post({ 'content-type': 'application/json' }, '{}')).statusCode, 201, 'an empty object says nothing');
    assert.equal((await post({ 'content-type': 'text/plain' }, '')).statusCode, 201);
  });

  test("a /v1/live message with a key that could set a prototype is refused as an HTTP body with one is: 400 invalid_request, close 4400", async () => {
    for (const text of ['{"type": "submit", "__proto__": {"admin": true}}', '{"type": "submit", "job": {"constructor": {"prototype": {"admin": true}}}}']) {
      const socket = await openLiveSocket(`${wsBase}/v1/live?ticket=${await issue()}`);
      socket.send(JSON.parse(text));
      const error = await socket.next((m) => m.type === 'error');
      assert.equal(error.error.code, 'invalid_request', text);
      assert.match(error.error.message, /__proto__.*constructor.*not accepted/);
      assert.equal((await socket.closed).code, 4400);
    }
  });

  test('a /v1/live message of an array of 200,000 items is walked for prototype keys without overflowing the stack: answered, the API up', async () => {
    const items = new Array(200_000).fill(0).join(',');
    // A \u escape has the message walked (it could spell a prototype key); the key deep in the
    // array is found, the one without is answered as any message of no known type.
    for (const [text, code] of [
      [`{"x": "\\u0003", "a": [${items}]}`, 'invalid_message'],
      [`{"type": "submit", "a": [${items}, {"__proto__": {"admin": true}}]}`, 'invalid_request'],
    ] as const) {
      const socket = await openLiveSocket(`${wsBase}/v1/live?ticket=${await issue()}`);
      socket.send(text);
      const error = await socket.next((m) => m.type === 'error');
      assert.equal(error.error.code, code, error.error.message);
      assert.equal((await socket.closed).code, 4400);
    }
    assert.equal((await service.app.inject({ url: '/healthz' })).statusCode, 200);
  });

  test("Piston's /api/v2/connect takes one too; a ticket stands for no key on any other route", async () => {
    const socket = await openLiveSocket(`${wsBase}/api/v2/connect?ticket=${await issue()}`);
    socket.close();
    await socket.closed;
    const ticket = await issue();
    assertError(await service.app.inject({ url: `/v1/runtimes?ticket=${ticket}` }), 401, 'api_key_required');
    assertError(await service.app.inject({ method: 'POST', url: `/v1/live/tickets?ticket=${ticket}` }), 401, 'api_key_required');
    // Untouched by those: still good for a socket.
    assert.equal((await service.app.inject({ url: `/v1/live?ticket=${ticket}` })).statusCode, 426);
  });

  test('without a key or a ticket the socket routes say both ways; an unknown ticket is refused, on each front as it says errors', async () => {
    const message = assertError(await service.app.inject({ url: '/v1/live' }), 401, 'api_key_required');
    assert.match(message, /\?ticket=/);
    assertError(await service.app.inject({ url: '/v1/live?ticket=not-a-ticket' }), 401, 'invalid_ticket');
    assertError(await service.app.inject({ url: `/v1/live?ticket=${'A'.repeat(43)}` }), 401, 'invalid_ticket');
    await assert.rejects(openLiveSocket(`${wsBase}/v1/live`), /401/);
    const piston = await service.app.inject({ url: `/api/v2/connect?ticket=${'A'.repeat(43)}` });
    assert.equal(piston.statusCode, 401);
    assert.equal(typeof piston.json().message, 'string');
  });

  test('a ticket is spent by the request that brings it to a live route, with a key or not; of two at once, one has it', async () => {
    const withKey = await issue();
    assert.equal((await service.app.inject({ url: `/v1/live?ticket=${withKey}`, headers: { 'x-api-key': KEY } })).statusCode, 426);
    assertError(await service.app.inject({ url: `/v1/live?ticket=${withKey}` }), 401, 'invalid_ticket');
    const raced = await issue();
    const answers = await Promise.all([1, 2].map(() => service.app.inject({ url: `/v1/live?ticket=${raced}` })));
    assert.deepEqual(answers.map((a) => a.statusCode).sort(), [401, 426]);
  });

  test("a ticket counts against its key's rate limit, and Redis keeps only its digest, for its lifetime", async () => {
    const ticket = await issue(TIGHT_KEY);
    const redis = new Redis(service.redis.url, { lazyConnect: true });
    try {
      const stored = redisKeys(service.prefix).liveTicket(sha256(ticket));
      assert.equal(await redis.get(stored), sha256(TIGHT_KEY), 'the holder: the key by its digest');
      assert.deepEqual(await redis.keys(`*${ticket}*`), [], 'the ticket itself in no key');
      const ttl = await redis.pttl(stored);
      assert.ok(ttl > 0 && ttl <= 60_000, String(ttl));
    } finally {
      redis.disconnect();
    }
    // The tight key's two requests: the ticket's issue, then its use; the third is over.
    assert.equal((await service.app.inject({ url: `/v1/live?ticket=${ticket}` })).statusCode, 426);
    assertError(await service.app.inject({ url: '/v1/runtimes', headers: { 'x-api-key': TIGHT_KEY } }), 429, 'rate_limited');
  });

  test("a ticket's socket counts against its key's live socket cap, the key's own where it has one", async () => {
    const first = await openLiveSocket(`${wsBase}/v1/live?ticket=${await issue(ONE_SOCKET_KEY)}`);
    try {
      await assert.rejects(openLiveSocket(`${wsBase}/v1/live?ticket=${await issue(ONE_SOCKET_KEY)}`), /429/);
      // Another key has the server's cap (16 by default): two at once.
      const others = await Promise.all([1, 2].map(async () => openLiveSocket(`${wsBase}/v1/live?ticket=${await issue()}`)));
      for (const other of others) other.close();
    } finally {
      first.close();
      await first.closed;
    }
    // The socket's removal follows its close on the server: the key has room again once it is
    // counted out (each try spends a ticket).
    let again: LiveSocket | undefined;
    await until(async () => (again = await openLiveSocket(`${wsBase}/v1/live?ticket=${await issue(ONE_SOCKET_KEY)}`).catch(() => undefined)) !== undefined, 5000, 50, 'room again');
    again!.close();
    await again!.closed;
  });
});
