// The live session's own rules, without Redis: input held until a worker took the job and sent in
// order after (merged, one publish at a time), lost input told, the wire format's refusals, and the
// end told once, with the record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobRecord, LiveEvent } from '../../src/jobs/model.js';
import { QueueLiveSession } from '../../src/queue/live-session.js';
import { decodeEvent, decodeInput, encodeEvent, encodeInput } from '../../src/queue/live-wire.js';

function session(options: { publishFails?: boolean; receivers?: number; terminal?: boolean } = {}) {
  const published: string[] = [];
  const events: LiveEvent[] = [];
  let finish: (record: JobRecord | undefined) => void = () => {};
  const finished = new Promise<JobRecord | undefined>((resolve) => (finish = resolve));
  const running: JobRecord = { id: 'id', status: 'running', createdAt: new Date(0).toISOString() };
  const jobs = {
    // As the client's: the record once it finished, else the current one when the slice is over.
    wait: (_id: string, timeoutMs: number) => Promise.race([finished, new Promise<JobRecord>((resolve) => setTimeout(() => resolve(running), Math.min(timeoutMs, 20)))]),
    cancel: async () => undefined,
    publish: async (_channel: string, message: string) => {
      if (options.publishFails) throw new Error('Connection is closed.');
      published.push(message);
      return options.receivers ?? 1;
    },
  };
  const subscriber = { unlisten: async () => undefined };
  const live = new QueueLiveSession('id', { events: 'e', input: 'i' }, jobs, subscriber, (event) => events.push(event), options.terminal);
  return { live, published, events, finish };
}

const inputs = (published: string[]) => published.map((message) => decodeInput(message));
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('input is held until the worker says started, then sent in the order written, merged', async () => {
  const { live, published } = session();
  live.open();
  live.write(Buffer.from('a'));
  live.write(Buffer.from('b'));
  live.endStdin();
  await settle();
  assert.deepEqual(published, []);
  live.heard(encodeEvent({ type: 'started' }));
  await settle();
  assert.deepEqual(inputs(published), [{ type: 'stdin', data: Buffer.from('ab') }, { type: 'stdinEnd' }]);
  live.write(Buffer.from('c'));
  await settle();
  assert.equal(published.length, 2, 'nothing after the end of input');
});

test('one publish at a time: what is written meanwhile goes as one', async () => {
  const { live, published } = session();
  live.open();
  live.heard(encodeEvent({ type: 'started' }));
  for (const byte of 'abcde') live.write(Buffer.from(byte));
  await settle();
  assert.deepEqual(inputs(published), [{ type: 'stdin', data: Buffer.from('a') }, { type: 'stdin', data: Buffer.from('bcde') }]);
});

test('input held for a `started` that was lost goes with the worker\'s next word', async () => {
  const { live, published } = session();
  live.open();
  live.write(Buffer.from('a'));
  live.heard(encodeEvent({ type: 'stage', stage: 'run' }));
  await settle();
  assert.deepEqual(inputs(published), [{ type: 'stdin', data: Buffer.from('a') }]);
});

test('input published to no one is lost unless the worker\'s end comes within a second', async () => {
  const lost = session({ receivers: 0 });
  lost.live.open();
  lost.live.heard(encodeEvent({ type: 'started' }));
  lost.live.write(Buffer.from('a'));
  const ended = session({ receivers: 0 });
  ended.live.open();
  ended.live.heard(encodeEvent({ type: 'started' }));
  ended.live.write(Buffer.from('a'));
  await settle();
  ended.live.heard(encodeEvent({ type: 'end' }));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.deepEqual(lost.events, [{ type: 'started' }, { type: 'inputLost' }]);
  assert.deepEqual(ended.events, [{ type: 'started' }]);
});

test('a job no worker took (cancelled while queued) ends its session at once', async () => {
  const { live, events, finish } = session();
  live.open();
  const record: JobRecord = { id: 'id', status: 'cancelled', createdAt: new Date(0).toISOString() };
  finish(record);
  const startedAt = Date.now();
  await live.watch();
  assert.ok(Date.now() - startedAt < 500, `ended after ${Date.now() - startedAt} ms`);
  assert.deepEqual(events, [{ type: 'end', record }]);
});

test('input that cannot be published is told once as inputLost', async () => {
  const { live, events } = session({ publishFails: true });
  live.open();
  live.heard(encodeEvent({ type: 'started' }));
  live.write(Buffer.from('a'));
  await settle();
  live.write(Buffer.from('b'));
  await settle();
  assert.deepEqual(events, [{ type: 'started' }, { type: 'inputLost' }]);
});

test('events heard before the caller has the session are told, in order, when it opens it', () => {
  const { live, events } = session();
  live.heard(encodeEvent({ type: 'started' }));
  live.heard(encodeEvent({ type: 'stage', stage: 'run' }));
  assert.deepEqual(events, []);
  live.open();
  assert.deepEqual(events, [{ type: 'started' }, { type: 'stage', stage: 'run' }]);
});

test('a session closed before the caller opened it tells nothing', () => {
  const { live, events } = session();
  live.heard(encodeEvent({ type: 'started' }));
  live.close();
  live.open();
  assert.deepEqual(events, []);
});

test('events pass on in order; end comes once, with the record, after the worker\'s end message', async () => {
  const { live, events, finish } = session();
  live.open();
  const watching = live.watch();
  live.heard(encodeEvent({ type: 'started' }));
  live.heard(encodeEvent({ type: 'output', stage: 'run', stream: 'stdout', data: Buffer.from([0, 255]) }));
  const record: JobRecord = { id: 'id', status: 'done', createdAt: new Date(0).toISOString() };
  finish(record);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(events.length, 2, 'the record waits for the end message');
  live.heard(encodeEvent({ type: 'end' }));
  await watching;
  assert.deepEqual(events, [
    { type: 'started' },
    { type: 'output', stage: 'run', stream: 'stdout', data: Buffer.from([0, 255]) },
    { type: 'end', record },
  ]);
  live.heard(encodeEvent({ type: 'stage', stage: 'run' }));
  assert.equal(events.length, 3, 'nothing after the end');
});

test('a job that ended without its worker\'s end message (its worker died) ends the session after a short grace', async () => {
  const { live, events, finish } = session();
  live.open();
  live.heard(encodeEvent({ type: 'started' }));
  const record: JobRecord = { id: 'id', status: 'failed', createdAt: new Date(0).toISOString() };
  finish(record);
  const startedAt = Date.now();
  await live.watch();
  const waitedMs = Date.now() - startedAt;
  // A worker was heard: its end message is waited for, briefly (a done job's would be waited 15 s).
  assert.ok(waitedMs >= 900 && waitedMs < 5000, `waited ${waitedMs} ms`);
  assert.deepEqual(events, [{ type: 'started' }, { type: 'end', record }]);
});

test('closed: no event after, and the watch stops at its next look', async () => {
  const { live, events } = session();
  live.open();
  const watching = live.watch();
  live.close();
  live.heard(encodeEvent({ type: 'started' }));
  const stopped = await Promise.race([watching.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 2000))]);
  assert.equal(stopped, true, 'the watch ended');
  assert.deepEqual(events, []);
});

test('the wire drops what it does not know', () => {
  for (const message of ['', 'null', '[]', '{"type":"stage","stage":"link"}', '{"type":"output","stage":"run","stream":"stdin","data":""}', '{"type":"exit","stage":"run"}', '{"type":"gossip"}']) {
    assert.equal(decodeEvent(message), undefined, message);
  }
  for (const message of ['{"type":"stdin"}', '{"type":"stdin","data":1}', '{"type":"eof"}']) assert.equal(decodeInput(message), undefined, message);
  assert.deepEqual(decodeInput(encodeInput({ type: 'stdin', data: Buffer.from([1, 2]) })), { type: 'stdin', data: Buffer.from([1, 2]) });
});

test("a terminal's sizes go in order with stdin, sizes not yet sent merged into the last; none without a terminal", async () => {
  const { live, published } = session({ terminal: true });
  live.open();
  live.resize({ rows: 30, cols: 90 });
  live.resize({ rows: 31, cols: 91 });
  live.write(Buffer.from('a'));
  live.resize({ rows: 32, cols: 92 });
  live.heard(encodeEvent({ type: 'started' }));
  await settle();
  assert.deepEqual(inputs(published), [{ type: 'resize', rows: 31, cols: 91 }, { type: 'stdin', data: Buffer.from('a') }, { type: 'resize', rows: 32, cols: 92 }]);

  const plain = session();
  plain.live.open();
  plain.live.heard(encodeEvent({ type: 'started' }));
  plain.live.resize({ rows: 30, cols: 90 });
  await settle();
  assert.deepEqual(plain.published, []);
});
