// Webhook delivery on its own: what cannot be sent, and what a delivery leaves behind.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { deliverWebhook } from '../../src/queue/webhook.js';

let server: http.Server;
let url: string;
let requests = 0;

before(async () => {
  // Every delivery fails with a retryable status: each one goes through every backoff.
  server = http.createServer((request, response) => {
    requests++;
    request.resume();
    response.statusCode = 503;
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('a body that cannot be serialised is not delivered, and nothing is thrown', async () => {
  const body: Record<string, unknown> = { id: 'x' };
  body.self = body;
  const before = requests;
  const outcome = await deliverWebhook(url, 'x', body, { attempts: 3, timeoutMs: 1000, backoffMs: 1 });
  assert.equal(outcome.delivered, false);
  assert.equal(outcome.attempts, 0);
  assert.match(outcome.error ?? '', /cannot serialise the job as JSON/);
  assert.equal(requests, before, 'no request made');
});

test("retries leave no listener on the worker's stop signal", async () => {
  const stop = new AbortController();
  for (let i = 0; i < 5; i++) {
    const outcome = await deliverWebhook(url, `job${i}`, { i }, { attempts: 3, timeoutMs: 1000, backoffMs: 1 }, stop.signal);
    assert.deepEqual([outcome.delivered, outcome.attempts, outcome.status], [false, 3, 503]);
  }
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
});
