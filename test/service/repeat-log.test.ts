// The worker's log of repeated errors (Redis away): the first of a kind at once, then a count.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { repeatedErrorLogger } from '../../src/queue/repeat-log.js';

test('a repeated error is logged once per interval, with how often it repeated', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  const logError = repeatedErrorLogger(pino(sink), 'worker error', 200);
  const refused = new Error('connect ECONNREFUSED 127.0.0.1:6379');
  for (let i = 0; i < 5; i++) logError(refused);
  logError(new Error('another failure'));
  await new Promise((resolve) => setTimeout(resolve, 250));
  logError(refused);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    lines.map((line) => [(line.err as { message: string }).message, line.repeatsSinceLastLine]),
    [
      ['connect ECONNREFUSED 127.0.0.1:6379', undefined],
      ['another failure', undefined],
      ['connect ECONNREFUSED 127.0.0.1:6379', 4],
    ],
  );
  assert.ok(lines.every((line) => line.msg === 'worker error'));
});

test('kinds that name a job each are forgotten once their interval is over', async () => {
  const logError = repeatedErrorLogger(pino(new Writable({ write: (_chunk, _encoding, done) => done() })), 'worker error', 20);
  for (let i = 0; i < 1000; i++) logError(new Error(`could not renew lock for job ${i}`));
  await new Promise((resolve) => setTimeout(resolve, 30));
  for (let i = 0; i < 1000; i++) logError(new Error(`could not renew lock for job ${1000 + i}`));
  assert.ok(logError.kinds <= 1000, `${logError.kinds} kinds remembered`);
});
