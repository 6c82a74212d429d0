// Webhook delivery on its own: what cannot be sent, what a delivery leaves behind, and where a
// webhook may go (the operator's networks, checked on the address connected to).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { OutboundPolicy, parseSubnet } from '../../src/queue/outbound.js';
import { attemptDelivery, deliveryPlan, retryDelayMs, webhookNotification } from '../../src/queue/webhook.js';

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

/** Every destination the default permits (loopback among them), and a stop that never comes. */
const anywhere = new OutboundPolicy();
const never = new AbortController().signal;

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
  const outcome = await attemptDelivery(webhookNotification(url, 'x', body), 1000, anywhere, never);
  assert.deepEqual([outcome.delivered, outcome.retryable], [false, false]);
  assert.match(outcome.error ?? '', /cannot serialise the job as JSON/);
  assert.equal(requests, before, 'no request made');
});

test("a webhook's 503 is worth another attempt", async () => {
  const before = requests;
  const outcome = await attemptDelivery(webhookNotification(url, 'job', {}), 1000, anywhere, never);
  assert.deepEqual([outcome.delivered, outcome.status, outcome.retryable], [false, 503, true]);
  assert.equal(requests, before + 1, 'one request per attempt');
});

test("a delivery's plan: the notification's own attempts, timeout and backoff over the operator's; the wait doubles", () => {
  const policy = { attempts: 5, timeoutMs: 1000, backoffMs: 100, destinations: anywhere };
  const plan = deliveryPlan(webhookNotification(url, 'x', {}), policy);
  assert.deepEqual(plan, { attempts: 5, timeoutMs: 1000, backoffMs: 100 });
  assert.deepEqual([2, 3, 4].map((next) => retryDelayMs(plan, next)), [100, 200, 400]);
  assert.deepEqual(deliveryPlan({ ...webhookNotification(url, 'x', {}), attempts: 3, timeoutMs: 5000, backoffMs: 0 }, policy), { attempts: 3, timeoutMs: 5000, backoffMs: 0 });
});

test('a notification that stops at any answer (a Judge0 callback) is final at a 503; a failure to connect is worth another attempt', async () => {
  const before = requests;
  const once = { ...webhookNotification(url, 'x', {}), method: 'PUT' as const, retryOnStatus: false, attempts: 3, backoffMs: 0 };
  const answered = await attemptDelivery(once, 1000, anywhere, never);
  assert.deepEqual([answered.delivered, answered.status, answered.retryable], [false, 503, false]);
  assert.equal(requests, before + 1);
  // A port nothing listens on (the receiver's, closed): the attempt fails to connect.
  const closed = await receiver(() => {});
  const port = closed.port;
  await closed.close();
  const refused = await attemptDelivery({ ...once, url: `http://127.0.0.1:${port}/` }, 1000, anywhere, never);
  assert.deepEqual([refused.delivered, refused.retryable], [false, true]);
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
  test('is delivered where loopback is permitted', async () => {
    const before = received;
    const outcome = await attemptDelivery(webhookNotification(`http://127.0.0.1:${port}/hook`, 'job', { ok: 1 }), 1000, anywhere, never);
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
      const outcome = await attemptDelivery(webhookNotification(url, 'job', { ok: 1 }), 1000, destinations, never);
      assert.equal(outcome.delivered, false, url);
      assert.equal(outcome.retryable, false, `${url}: a refusal is final, not retried`);
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
    for (let i = 0; i < 2; i++) {
      const outcome = await attemptDelivery(webhookNotification(url, 'job', {}), 300, anywhere, never);
      assert.deepEqual([outcome.delivered, outcome.status], [true, 200]);
    }
    assert.equal(requests, 2, 'one request per delivery');
  } finally {
    await stalling.close();
  }
});
