// Webhook delivery on its own: what cannot be sent, what a delivery leaves behind, and where a
// webhook may go (the operator's networks, checked on the address connected to).
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { OutboundPolicy, parseSubnet } from '../../src/queue/outbound.js';
import { deliverNotification, webhookNotification, type WebhookPolicy } from '../../src/queue/webhook.js';

/** An HTTP server on a free loopback port; `close` ends its connections too. */
async function receiver(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let server: Awaited<ReturnType<typeof receiver>>;
let url: string;
let requests = 0;

before(async () => {
  // Every delivery fails with a retryable status: each one goes through every backoff.
  server = await receiver((request, response) => {
    requests++;
    request.resume();
    response.statusCode = 503;
    response.end();
  });
  url = `http://127.0.0.1:${server.port}/hook`;
});
after(() => server.close());

test('a body that cannot be serialised is not delivered, and nothing is thrown', async () => {
  const body: Record<string, unknown> = { id: 'x' };
  body.self = body;
  const before = requests;
  const outcome = await deliverNotification(webhookNotification(url, 'x', body), { attempts: 3, timeoutMs: 1000, backoffMs: 1, destinations: new OutboundPolicy() });
  assert.equal(outcome.delivered, false);
  assert.equal(outcome.attempts, 0);
  assert.match(outcome.error ?? '', /cannot serialise the job as JSON/);
  assert.equal(requests, before, 'no request made');
});

test("retries leave no listener on the worker's stop signal", async () => {
  const stop = new AbortController();
  for (let i = 0; i < 5; i++) {
    const outcome = await deliverNotification(webhookNotification(url, `job${i}`, { i }), { attempts: 3, timeoutMs: 1000, backoffMs: 1, destinations: new OutboundPolicy() }, stop.signal);
    assert.deepEqual([outcome.delivered, outcome.attempts, outcome.status], [false, 3, 503]);
  }
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
});

test('a notification that stops at any answer (a Judge0 callback) is sent once to a 503; failures to connect are tried again', async () => {
  const before = requests;
  const once = { ...webhookNotification(url, 'x', {}), method: 'PUT' as const, retryOnStatus: false, attempts: 3, backoffMs: 0 };
  const answered = await deliverNotification(once, { attempts: 5, timeoutMs: 1000, backoffMs: 1000, destinations: new OutboundPolicy() });
  assert.deepEqual([answered.delivered, answered.attempts, answered.status], [false, 1, 503]);
  assert.equal(requests, before + 1);
  // A port nothing listens on (the receiver's, closed): every attempt fails to connect.
  const closed = await receiver(() => {});
  const port = closed.port;
  await closed.close();
  const refused = await deliverNotification({ ...once, url: `http://127.0.0.1:${port}/` }, { attempts: 5, timeoutMs: 1000, backoffMs: 1000, destinations: new OutboundPolicy() });
  assert.deepEqual([refused.delivered, refused.attempts], [false, 3]);
  assert.match(refused.error ?? '', /ECONNREFUSED/);
});

test('the default destinations: anywhere but link-local (cloud metadata services)', () => {
  const policy = new OutboundPolicy();
  for (const address of ['127.0.0.1', '10.1.2.3', '192.0.2.7', '::1', '2001:db8::1']) assert.ok(policy.permits(address), address);
  for (const address of ['169.254.169.254', '::ffff:169.254.169.254', 'fe80::1']) assert.ok(!policy.permits(address), address);
  // This host by another name, whatever the lists: a deny list of loopback would not name them.
  const everywhere = new OutboundPolicy(['0.0.0.0/0', '::/0'], []);
  for (const address of ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0']) assert.ok(!everywhere.permits(address), address);
  const denyAll = new OutboundPolicy([], ['0.0.0.0/0', '::/0']);
  for (const address of ['10.1.2.3', '2001:db8::1', '127.0.0.1']) assert.ok(!denyAll.permits(address), address);
});

test('allow and deny lists: deny wins, allow bounds the rest, mapped IPv4 counts as IPv4', () => {
  const policy = new OutboundPolicy(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], ['10.9.0.0/16']);
  assert.ok(policy.permits('10.1.2.3'));
  assert.ok(policy.permits('::ffff:10.1.2.3'));
  assert.ok(policy.permits('192.0.2.7'));
  assert.ok(policy.permits('2001:db8::5'));
  assert.ok(!policy.permits('10.9.1.1'), 'denied inside an allowed network');
  assert.ok(!policy.permits('192.0.2.8'), 'outside every allowed network');
  assert.ok(!policy.permits('127.0.0.1'));
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::/129', '10.0.0.0/x', '']) {
    assert.throws(() => parseSubnet(bad), /is not an address or a network/, bad);
  }
});

describe('a webhook outside the permitted networks', () => {
  let listening: Awaited<ReturnType<typeof receiver>>;
  let port: number;
  let received = 0;
  before(async () => {
    listening = await receiver((request, response) => {
      received++;
      request.resume();
      response.end();
    });
    port = listening.port;
  });
  after(() => listening.close());
  const policy = (destinations: OutboundPolicy): WebhookPolicy => ({ attempts: 3, timeoutMs: 1000, backoffMs: 1, destinations });

  test('is delivered where loopback is permitted', async () => {
    const before = received;
    const outcome = await deliverNotification(webhookNotification(`http://127.0.0.1:${port}/hook`, 'job', { ok: 1 }), policy(new OutboundPolicy()));
    assert.deepEqual([outcome.delivered, outcome.status], [true, 200]);
    assert.equal(received, before + 1);
  });

  test('is refused, once and without a request, by address or by a name that resolves there', async () => {
    const noLoopback = new OutboundPolicy([], ['127.0.0.0/8', '::1/128']);
    const onlyElsewhere = new OutboundPolicy(['192.0.2.0/24'], []);
    const before = received;
    for (const [url, destinations] of [
      [`http://127.0.0.1:${port}/hook`, noLoopback],
      [`http://localhost:${port}/hook`, noLoopback],
      [`http://[::ffff:127.0.0.1]:${port}/hook`, noLoopback],
      [`http://[::]:${port}/hook`, noLoopback],
      [`http://0.0.0.0:${port}/hook`, noLoopback],
      [`http://localhost:${port}/hook`, onlyElsewhere],
    ] as const) {
      const outcome = await deliverNotification(webhookNotification(url, 'job', { ok: 1 }), policy(destinations));
      assert.equal(outcome.delivered, false, url);
      assert.equal(outcome.attempts, 1, `${url}: a refusal is final, not retried`);
      assert.match(outcome.error ?? '', /not a permitted destination/, url);
    }
    assert.equal(received, before, 'the receiver heard nothing');
  });
});

test('an answer is the answer: a body cut short or slow after it neither fails nor repeats the delivery', async () => {
  let requests = 0;
  const stalling = await receiver((request, response) => {
    requests++;
    request.resume();
    response.writeHead(200, { 'content-length': '1000' });
    response.write('partial');
    // Then either silence past the delivery's timeout or a reset, by turns.
    if (requests % 2 === 0) setTimeout(() => response.socket?.destroy(), 50);
  });
  try {
    const url = `http://127.0.0.1:${stalling.port}/hook`;
    const policy = { attempts: 3, timeoutMs: 300, backoffMs: 1, destinations: new OutboundPolicy() };
    for (let i = 0; i < 2; i++) {
      const outcome = await deliverNotification(webhookNotification(url, 'job', {}), policy);
      assert.deepEqual([outcome.delivered, outcome.attempts, outcome.status], [true, 1, 200]);
    }
    assert.equal(requests, 2, 'one request per delivery');
  } finally {
    await stalling.close();
  }
});
