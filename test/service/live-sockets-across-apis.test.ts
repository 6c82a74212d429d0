// A client's live socket cap across API processes: two APIs on one Redis share it (counted in
// Redis, src/queue/live-socket-ledger.ts); a place whose API died comes back when its claim lapses;
// an open socket's claim is renewed for as long as it is open.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { buildApp } from '../../src/api/app.js';
import { LiveSockets } from '../../src/api/live-socket.js';
import { loadConfig } from '../../src/config.js';
import { BullJobClient } from '../../src/queue/client.js';
import { redisKeys } from '../../src/queue/keys.js';
import { openLiveSocket, type LiveSocket } from '../helpers/live-socket.js';
import { until } from '../helpers/until.js';
import { startService, testRuntime, type ServiceHarness } from './fixtures.js';

describe('live sockets across API processes', () => {
  let service: ServiceHarness;
  let secondJobs: BullJobClient;
  let secondApp: FastifyInstance;
  let first: string;
  let second: string;

  before(async () => {
    service = await startService({ config: { maxLiveSessionsPerClient: 2 } });
    first = (await service.app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws');
    // A second API machine: its own job client and app, the same Redis and prefix.
    secondJobs = new BullJobClient({ redisUrl: service.redis.url, prefix: service.prefix, resultTtlSeconds: 600, maxQueuedJobs: 1000 });
    await secondJobs.ready();
    secondApp = await buildApp({ jobs: secondJobs, runtimes: [testRuntime], config: { ...loadConfig({}), maxLiveSessionsPerClient: 2 } });
    second = (await secondApp.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws');
  });
  after(async () => {
    await secondApp?.close();
    await secondJobs?.close();
    await service?.close();
  });

  test("one client's sockets on two APIs count together; a place given back is free on either", async () => {
    const open: LiveSocket[] = [];
    try {
      open.push(await openLiveSocket(`${first}/v1/live`));
      open.push(await openLiveSocket(`${second}/v1/live`));
      await assert.rejects(openLiveSocket(`${first}/v1/live`), /429/);
      await assert.rejects(openLiveSocket(`${second}/api/v2/connect`), /429/);
      const closing = open.shift()!;
      closing.close();
      await closing.closed;
      // The close gives the place back (a round trip after it).
      let reopened: LiveSocket | undefined;
      await until(async () => (reopened = await openLiveSocket(`${second}/v1/live`).catch(() => undefined)) !== undefined, 5000, 50, 'a place free again');
      open.push(reopened!);
    } finally {
      for (const socket of open) socket.close();
      await Promise.all(open.map((socket) => socket.closed));
    }
  });

  /** An upgrade as LiveSockets sees it, from `client` (keyless: by its address): the request, and
   * its connection. */
  const upgrade = (client: { id: string }) =>
    ({ ip: client.id.replace(/^ip:/, ''), raw: { socket: Object.assign(new EventEmitter(), { destroyed: false }) } }) as unknown as FastifyRequest;
  /** The refusal of a client over the server-wide cap of 1 (or 2). */
  const refusedAt = (maximum: number) => ({ maximum, setting: 'CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT' });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  test("a claim lapses unless renewed: a dead API's places come back; an open socket's are kept, and given back at its removal", async () => {
    const leaseMs = 1200;
    const sockets = new LiveSockets({ maxPerClient: 1, maxStdinBytes: 1024 }, service.jobs, leaseMs);
    const client = { id: 'ip:192.0.2.1' };
    // Claimed for an upgrade whose API died before it became a socket: no one renews it.
    assert.deepEqual(await sockets.admit(upgrade(client)), undefined);
    assert.deepEqual(await sockets.admit(upgrade(client)), refusedAt(1));
    // Redis holds the client by digest (its id holds an API key where there are keys).
    const redis = new Redis(service.redis.url, { lazyConnect: true });
    try {
      const digest = createHash('sha256').update(client.id).digest('hex');
      assert.equal(await redis.zcard(redisKeys(service.prefix).liveSockets(digest)), 1);
      assert.deepEqual(await redis.keys(`*${client.id}*`), []);
    } finally {
      redis.disconnect();
    }
    await sleep(leaseMs + 200);
    const held = upgrade(client);
    assert.deepEqual(await sockets.admit(held), undefined, 'the lapsed claim no longer counts');
    const remove = sockets.add(held, async () => {});
    // Past two leases the open socket's claim still holds: it is renewed every third of one.
    await sleep(leaseMs * 2.5);
    assert.deepEqual(await sockets.admit(upgrade(client)), refusedAt(1), 'renewed');
    remove();
    // Its release goes before this claim on the same connection: no lapse needed.
    assert.deepEqual(await sockets.admit(upgrade(client)), undefined, 'given back at the removal');
    await sockets.closeAll();
  });

  test('an upgrade that does not become a socket gives its place back when its connection closes', async () => {
    const sockets = new LiveSockets({ maxPerClient: 1, maxStdinBytes: 1024 }, service.jobs);
    const client = { id: 'ip:192.0.2.3' };
    const refused = upgrade(client);
    assert.deepEqual(await sockets.admit(refused), undefined);
    assert.deepEqual(await sockets.admit(upgrade(client)), refusedAt(1));
    refused.raw.socket.emit('close');
    await until(async () => (await sockets.admit(upgrade(client))) === undefined, 5000, 20, 'the place back');
  });

  test('a stopping API gives its sockets\' places back before it closes, and claims no more', async () => {
    const sockets = new LiveSockets({ maxPerClient: 1, maxStdinBytes: 1024 }, service.jobs);
    const client = { id: 'ip:192.0.2.4' };
    const request = upgrade(client);
    assert.deepEqual(await sockets.admit(request), undefined);
    let ended = false;
    sockets.add(request, async () => void (ended = true));
    await sockets.closeAll();
    assert.equal(ended, true);
    await assert.rejects(sockets.admit(upgrade(client)), /stopping/);
    // Another API finds the place free at once.
    assert.deepEqual(await new LiveSockets({ maxPerClient: 1, maxStdinBytes: 1024 }, service.jobs).admit(upgrade(client)), undefined);
  });

  test('a lapsed claim stops counting while others keep its client\'s set alive', async () => {
    const leaseMs = 3000;
    const sockets = new LiveSockets({ maxPerClient: 2, maxStdinBytes: 1024 }, service.jobs, leaseMs);
    const client = { id: 'ip:192.0.2.2' };
    assert.deepEqual(await sockets.admit(upgrade(client)), undefined);
    await sleep(1800);
    // A second claim: the set lives on past the first one's lease.
    assert.deepEqual(await sockets.admit(upgrade(client)), undefined);
    await sleep(1500);
    assert.deepEqual(await sockets.admit(upgrade(client)), undefined, 'the first lapsed: one place free');
    assert.deepEqual(await sockets.admit(upgrade(client)), refusedAt(2), 'the second and the third hold both');
  });

  test('an upgrade refused by the rate limit claims no place (the limit comes first)', async () => {
    const limited = await startService({ config: { maxLiveSessionsPerClient: 5, defaultRequestsPerWindow: 1, rateLimitWindowMs: 60_000 } });
    try {
      let claims = 0;
      const claim = limited.jobs.claimLiveSocket.bind(limited.jobs);
      limited.jobs.claimLiveSocket = (...args) => {
        claims++;
        return claim(...args);
      };
      const ws = (await limited.app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws');
      const socket = await openLiveSocket(`${ws}/v1/live`);
      await assert.rejects(openLiveSocket(`${ws}/v1/live`), /429/);
      assert.equal(claims, 1, 'the refused upgrade made no claim');
      const redis = new Redis(limited.redis.url, { lazyConnect: true });
      try {
        const [set] = await redis.keys(redisKeys(limited.prefix).liveSockets('*'));
        assert.equal(await redis.zcard(set!), 1, 'the open socket only');
      } finally {
        redis.disconnect();
      }
      socket.close();
      await socket.closed;
    } finally {
      await limited.close();
    }
  });

  test('Redis away: an upgrade is 503 (its place cannot be counted), on each front', async () => {
    await service.redis.pause();
    try {
      await assert.rejects(openLiveSocket(`${first}/v1/live`), /503/);
      await assert.rejects(openLiveSocket(`${second}/api/v2/connect`), /503/);
    } finally {
      await service.redis.resume();
    }
    // Back once the API's connection is (ioredis reconnects after a pause).
    let socket: LiveSocket | undefined;
    await until(async () => (socket = await openLiveSocket(`${first}/v1/live`).catch(() => undefined)) !== undefined, 15_000, 100, 'upgrades admitted again');
    socket!.close();
    await socket!.closed;
  });
});
