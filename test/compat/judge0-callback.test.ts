// Judge0's callback_url on its own: a watch outlives a Redis outage.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { Judge0Callbacks } from '../../src/api/compat/judge0-callback.js';
import { Judge0Languages } from '../../src/api/compat/judge0-languages.js';
import type { JobClient, JobRecord } from '../../src/jobs/model.js';
import { QueueUnavailableError } from '../../src/queue/errors.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import { done, python311, stage } from './fixtures.js';

test('a callback is sent once the submission finishes, though Redis was away for a while of the wait', async () => {
  const bodies: string[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      bodies.push(`${request.method} ${body}`);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const finished: JobRecord = { ...done({ run: stage({ stdout: 'hi\n' }) }), id: 'A'.repeat(21) };
    let waits = 0;
    // Away for the first two waits (a restart), then the submission is done.
    const jobs = {
      wait: async () => {
        waits++;
        if (waits <= 2) throw new QueueUnavailableError(new Error('connection is reconnecting'));
        return finished;
      },
    } as unknown as JobClient;
    const callbacks = new Judge0Callbacks(jobs, new Judge0Languages([python311]), new OutboundPolicy(), pino({ level: 'silent' }));
    callbacks.watch(finished.id, `http://127.0.0.1:${(server.address() as AddressInfo).port}/judge0`);
    const deadline = Date.now() + 15_000;
    while (bodies.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await callbacks.close();
    assert.equal(bodies.length, 1, 'one PUT');
    assert.match(bodies[0]!, /^PUT \{.*"stdout":"aGkK/);
    assert.equal(waits, 3);
  } finally {
    server.close();
  }
});

test('a callback whose host resolves outside the permitted networks is not sent', async () => {
  let puts = 0;
  const server = http.createServer((request, response) => {
    puts++;
    request.resume();
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const finished: JobRecord = { ...done({ run: stage({ stdout: 'hi\n' }) }), id: 'B'.repeat(21) };
    const jobs = { wait: async () => finished } as unknown as JobClient;
    const noLoopback = new OutboundPolicy([], ['127.0.0.0/8', '::1/128']);
    const callbacks = new Judge0Callbacks(jobs, new Judge0Languages([python311]), noLoopback, pino({ level: 'silent' }));
    callbacks.watch(finished.id, `http://localhost:${(server.address() as AddressInfo).port}/judge0`);
    await callbacks.close();
    assert.equal(puts, 0);
  } finally {
    server.close();
  }
});
