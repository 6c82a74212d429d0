// A socket's job before its session exists: stdin counted at once, input applied in order once it
// does, and a job whose socket ended meanwhile cancelled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { JobRequest, LiveEvent, LiveSession } from '../../src/jobs/model.js';
import type { JobService } from '../../src/api/service.js';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Readable } from 'node:stream';
import { toApiError } from '../../src/api/errors.js';
import { jsonTextStream } from '../../src/api/json-stream.js';
import { JobSocket, LIVE_SEND_BUFFER_BYTES, LiveSockets, SocketJob, type SocketEnding } from '../../src/api/live-socket.js';
import { LIVE_FRAGMENTS_BUFFER_BYTES } from '../../src/api/streamed-message.js';
import { FakeSocket, noop } from '../helpers/fake-web-socket.js';
import { until } from '../helpers/until.js';

/** A job service whose submit resolves when told; `emit` passes an event as the session would. */
function lateJobs(log: string[]): { jobs: JobService; resolve: () => void; emit: (event: LiveEvent) => void } {
  let resolve: () => void = () => {};
  let onEvent: (event: LiveEvent) => void = () => {};
  let cancels = 0;
  const session: LiveSession = {
    id: 'job',
    write: (data) => void log.push(`write ${Buffer.from(data).toString()}`),
    endStdin: () => void log.push('end'),
    resize: (size) => void log.push(`resize ${size.rows}x${size.cols}`),
    cancel: async () => void log.push(`cancel ${++cancels}`),
    close: () => void log.push('close'),
  };
  const submitLive = (_request: JobRequest, listener: (event: LiveEvent) => void) => {
    onEvent = listener;
    return new Promise<LiveSession>((done) => (resolve = () => done(session)));
  };
  return { jobs: { submitLive } as unknown as JobService, resolve: () => resolve(), emit: (event) => onEvent(event) };
}

const request = { runtimeId: 'python', files: [], stdinBase64: '', args: [], limits: {} } satisfies JobRequest;
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('input sent while the job is queued is applied in order once its session exists, merged; stdin is counted from the first byte', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 4, () => false);
  assert.equal(socketJob.write(Buffer.from('x')), 'not_submitted');
  assert.equal(socketJob.endStdin(), false);
  assert.equal(socketJob.cancel(), undefined);
  socketJob.submit(jobs, request, () => {}, { accepted: () => log.push('accepted'), refused: () => log.push('refused') });
  assert.equal(socketJob.write(Buffer.from('ab')), 'sent');
  assert.equal(socketJob.write(Buffer.from('')), 'sent');
  assert.equal(socketJob.write(Buffer.from('c')), 'sent');
  assert.equal(socketJob.write(Buffer.from('de')), 'too_large', 'counted before the session exists');
  assert.equal(socketJob.endStdin(), true);
  resolve();
  await settle();
  assert.deepEqual(log, ['accepted', 'write abc', 'end']);
});

test('a cancel asked for many times is one', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => false);
  socketJob.submit(jobs, request, () => {}, { accepted: () => {}, refused: () => {} });
  const cancels = [socketJob.cancel(), socketJob.cancel()];
  resolve();
  await Promise.all([...cancels, socketJob.cancel()]);
  assert.deepEqual(log, ['cancel 1']);
});

test('abandoned while its job is being queued: resolves only once the job is cancelled', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  let ended = false;
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => ended);
  socketJob.submit(jobs, request, () => {}, { accepted: () => log.push('accepted'), refused: () => {} });
  ended = true;
  const abandoned = socketJob.abandon().then(() => log.push('abandoned'));
  await settle();
  assert.deepEqual(log, [], 'waits for the submit');
  resolve();
  await abandoned;
  assert.deepEqual(log, ['close', 'cancel 1', 'abandoned']);
});

test('a job whose socket ended while it was being queued is cancelled once it exists', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => true);
  socketJob.submit(jobs, request, () => {}, { accepted: () => log.push('accepted'), refused: () => log.push('refused') });
  const abandoned = socketJob.abandon();
  resolve();
  await abandoned;
  assert.deepEqual(log, ['close', 'cancel 1']);
});

/** A live session whose cancel fails `failures` times (Redis away), then succeeds. */
function failingCancels(failures: number): { jobs: JobService; cancels: () => number } {
  let cancels = 0;
  const session: LiveSession = {
    id: 'job',
    write: () => {},
    endStdin: () => {},
    resize: () => {},
    cancel: async () => {
      if (++cancels <= failures) throw new Error('redis connection is reconnecting');
    },
    close: () => {},
  };
  return { jobs: { submitLive: async () => session } as unknown as JobService, cancels: () => cancels };
}

const quickRetry = { firstMs: 10, maxMs: 40, boundMs: 5000 };

test("a live job's cancel that fails (Redis away) is tried again, backing off, until it is made; abandon resolves then", async () => {
  const { jobs, cancels } = failingCancels(4);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => true, quickRetry);
  socketJob.submit(jobs, request, () => {}, { accepted: () => {}, refused: () => {} });
  const started = Date.now();
  await socketJob.abandon();
  assert.equal(cancels(), 5, 'four failures, then the cancel made');
  // 10 + 20 + 40 + 40 ms between the tries.
  assert.ok(Date.now() - started >= 100, `${Date.now() - started} ms`);
});

test("a live job's cancel is given up past its bound, and at once once the API stops", async () => {
  const bounded = failingCancels(Infinity);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => true, { firstMs: 10, maxMs: 20, boundMs: 200 });
  socketJob.submit(bounded.jobs, request, () => {}, { accepted: () => {}, refused: () => {} });
  const started = Date.now();
  await socketJob.abandon();
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
  assert.ok(bounded.cancels() > 3 && bounded.cancels() < 20, `${bounded.cancels()} tries`);

  const stopping = new AbortController();
  const stopped = failingCancels(Infinity);
  const waiting = new SocketJob(pino({ level: 'silent' }), 100, () => true, { firstMs: 60_000, maxMs: 60_000, boundMs: 600_000, stopped: stopping.signal });
  waiting.submit(stopped.jobs, request, () => {}, { accepted: () => {}, refused: () => {} });
  const abandoned = waiting.abandon();
  await until(() => stopped.cancels() === 1, 1000, 5, 'the first try');
  const stopAt = Date.now();
  stopping.abort();
  await abandoned;
  assert.ok(Date.now() - stopAt < 500, 'the stop ends the wait before the next try');
  assert.equal(stopped.cancels(), 2, 'one last try as the API stops');

  // The API's live sockets stop their jobs' cancels as it closes them.
  const ledger = { claimLiveSocket: async () => true, releaseLiveSocket: async () => {}, renewLiveSockets: async () => {} };
  const sockets = new LiveSockets({ maxPerClient: 1, maxStdinBytes: 100 }, ledger);
  const retry = sockets.cancelRetry;
  assert.equal(retry.stopped?.aborted, false);
  await sockets.closeAll();
  assert.equal(retry.stopped?.aborted, true);
});

test('after the job\'s end, abandoning only stops listening', async () => {
  const log: string[] = [];
  const { jobs, resolve, emit } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => false);
  const heard: string[] = [];
  socketJob.submit(jobs, request, (event) => heard.push(event.type), { accepted: () => {}, refused: () => {} });
  resolve();
  await settle();
  emit({ type: 'end', record: undefined });
  assert.deepEqual(heard, ['end'], 'the front hears it too');
  await socketJob.abandon();
  assert.deepEqual(log, ['close']);
});

test('a terminal\'s size asked for while the job is queued goes once its session exists, the last one only; a job without a terminal refuses it', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100, () => false);
  assert.equal(socketJob.resize({ rows: 24, cols: 80 }), 'not_submitted');
  socketJob.submit(jobs, { ...request, terminal: { rows: 24, cols: 80 } }, () => {}, { accepted: () => log.push('accepted'), refused: () => {} });
  assert.equal(socketJob.resize({ rows: 30, cols: 90 }), 'sent');
  assert.equal(socketJob.write(Buffer.from('x')), 'sent');
  assert.equal(socketJob.resize({ rows: 40, cols: 100 }), 'sent');
  resolve();
  await settle();
  assert.deepEqual(log, ['accepted', 'write x', 'resize 40x100']);
  assert.equal(socketJob.resize({ rows: 50, cols: 110 }), 'sent');
  assert.deepEqual(log.at(-1), 'resize 50x110');

  const plain = new SocketJob(pino({ level: 'silent' }), 100, () => false);
  plain.submit(lateJobs([]).jobs, request, () => {}, { accepted: () => {}, refused: () => {} });
  assert.equal(plain.resize({ rows: 24, cols: 80 }), 'no_terminal');
});

function jobSocket(
  socket: FakeSocket,
  options: { logs?: { level: number; msg: string }[]; shutdown?: (stop: () => Promise<void>) => void; message?: (message: unknown) => void } = {},
): JobSocket {
  const log = options.logs
    ? pino({ level: 'debug' }, { write: (line: string) => void options.logs!.push(JSON.parse(line)) })
    : pino({ level: 'silent' });
  const request = { log } as unknown as FastifyRequest;
  const add = (_request: unknown, stop: () => Promise<void>) => (options.shutdown?.(stop), () => {});
  const liveSockets = { maxStdinBytes: 100, add } as unknown as LiveSockets;
  const live: JobSocket = new JobSocket(socket as unknown as WebSocket, request, liveSockets, 60_000, {
    message: options.message ?? (() => {}),
    notJson: () => {},
    // As the fronts do: the end's last message is an error, sent to the same slow client.
    tooSlow: () => void live.end(4429, 'client_too_slow', { type: 'error', error: { code: 'client_too_slow' } }),
    // As the fronts do: their word, once the socket is not ended already.
    shuttingDown: () => live.end(4503, 'shutting_down', { type: 'error', error: { code: 'shutting_down' } }),
    noSubmit: () => {},
  });
  return live;
}

test("a fault in taking one message ends that socket (1011) and is logged, not thrown from ws's listener, which would end the API", () => {
  const socket = new FakeSocket();
  const logs: { level: number; msg: string }[] = [];
  const live = jobSocket(socket, { logs, message: () => { throw new RangeError('Maximum call stack size exceeded'); } });
  assert.doesNotThrow(() => socket.emit('message', Buffer.from('{"type":"submit"}')));
  assert.deepEqual(socket.closes, [1011]);
  assert.equal(live.ended, true);
  assert.ok(logs.some((line) => line.level === 50 && /taking a message failed/.test(line.msg)), JSON.stringify(logs));
  socket.emit('message', Buffer.from('{"type":"stdin"}'));
  assert.deepEqual(socket.closes, [1011], 'nothing taken after the end');
});

test('a client too slow is ended once: its error is the last message, however much is unread (it recurred until the stack overflowed)', () => {
  const socket = new FakeSocket();
  const live = jobSocket(socket);
  socket.bufferedAmount = LIVE_SEND_BUFFER_BYTES + 1;
  live.send({ type: 'output', data: 'x' });
  assert.deepEqual(socket.closes, [4429]);
  assert.equal(socket.sent.length, 2);
  assert.match(socket.sent[1]!, /client_too_slow/);
  assert.equal(live.ended, true);
  live.send({ type: 'output', data: 'y' });
  assert.equal(socket.sent.length, 2, 'nothing after the end');
});

test('one message larger than the unread bound goes whole to a client that read everything before it', () => {
  const socket = new FakeSocket();
  const live = jobSocket(socket);
  live.sendText('x'.repeat(LIVE_SEND_BUFFER_BYTES + 10));
  assert.deepEqual([socket.closes, socket.sent.length, live.ended], [[], 1, false]);
  // The next message finds it unread: now the client is slow.
  live.send({ type: 'exit' });
  assert.deepEqual(socket.closes, [4429]);
});

/** The end /v1/live makes of an error: its message, then 4000 + its status. */
const ending = (error: unknown): SocketEnding => {
  const { statusCode, code } = toApiError(error, {} as FastifyRequest);
  return { code: 4000 + statusCode, reason: code, last: { type: 'error', error: { code } } };
};

test('a last message sent in fragments waits for the client to read it: room past the bound, nothing sent between, the close after the last', async () => {
  const socket = new FakeSocket();
  const live = jobSocket(socket);
  const done = { type: 'done', job: { stdout: 'x'.repeat(3 * 1024 * 1024) } };
  void live.endStreamed(1000, 'done', jsonTextStream(done), ending, { stallMs: 60_000, minBytesPerSecond: 1, stopMs: 60_000 });
  await until(() => socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  live.send({ type: 'output', data: 'late' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const held = socket.fragments.length;
  assert.ok(socket.bufferedAmount < LIVE_FRAGMENTS_BUFFER_BYTES + 64 * 1024, `at most the bound and a fragment held: ${socket.bufferedAmount}`);
  // The client reads: what was sent goes, and the rest follows.
  for (;;) {
    const unwritten = socket.fragments.find((f) => f.written !== noop);
    if (unwritten) {
      socket.bufferedAmount = 0;
      const { written } = unwritten;
      unwritten.written = noop;
      written();
    }
    if (socket.closes.length > 0) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(socket.fragments.length > held, 'more fragments once read');
  assert.deepEqual(socket.sent, [], 'nothing else, before or inside it');
  assert.deepEqual(socket.fragments.map((f) => f.fin), [...Array(socket.fragments.length - 1).fill(false), true]);
  assert.equal(Buffer.concat(socket.fragments.map((f) => f.data)).toString(), JSON.stringify(done));
  assert.deepEqual(socket.closes, [1000]);
});

test('a client that reads nothing of a fragmented last message for the wait is ended 4429, without a message inside it', async () => {
  const socket = new FakeSocket();
  const live = jobSocket(socket);
  void live.endStreamed(1000, 'done', jsonTextStream({ type: 'done', job: { stdout: 'x'.repeat(3 * 1024 * 1024) } }), ending, { stallMs: 100, minBytesPerSecond: 1, stopMs: 100 });
  await until(() => socket.closes.length > 0, 5000, 5, 'the close');
  assert.deepEqual(socket.closes, [4429]);
  assert.deepEqual(socket.sent, []);
  assert.ok(socket.fragments.every((f) => !f.fin), 'its message left unfinished');
});

test('a last message whose text cannot be made: before any fragment, the error message and its close; after, its close alone', async () => {
  const tooLong = () => new RangeError('Invalid string length');
  const unmade = new FakeSocket();
  void jobSocket(unmade).endStreamed(1000, 'done', new Readable({ read() { this.destroy(tooLong()); } }), ending);
  await until(() => unmade.closes.length > 0, 5000, 5, 'the close');
  assert.deepEqual([unmade.closes, unmade.fragments.length, JSON.parse(unmade.sent[0]!).error.code], [[4406], 0, 'response_too_large']);

  const cut = new FakeSocket();
  let reads = 0;
  const text = new Readable({
    read() {
      if (reads++ < 2) this.push(Buffer.alloc(64 * 1024, 'x'));
      else this.destroy(tooLong());
    },
  });
  void jobSocket(cut).endStreamed(1000, 'done', text, ending);
  await until(() => cut.closes.length > 0, 5000, 5, 'the close');
  assert.deepEqual([cut.closes, cut.sent], [[4406], []]);
  assert.ok(cut.fragments.length > 0 && cut.fragments.every((f) => !f.fin));
});

const bigDone = () => ({ type: 'done', job: { stdout: 'x'.repeat(3 * 1024 * 1024) } });
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a fragment waits only until the socket holds less than the bound, not until all of it has gone', async () => {
  const socket = new FakeSocket();
  void jobSocket(socket).endStreamed(1000, 'done', jsonTextStream(bigDone()), ending, { stallMs: 60_000, minBytesPerSecond: 1, stopMs: 60_000 });
  await until(() => socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  await wait(20);
  const held = socket.fragments.length;
  socket.readOne();
  await until(() => socket.fragments.length > held, 1000, 1, 'the next fragment, with the rest still unsent');
  assert.ok(socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES - 64 * 1024, `${socket.bufferedAmount} bytes unsent`);
});

test('a client reading steadily is not ended while fragments keep going, however long; one reading below the least rate is, 4429 (logged at info)', async () => {
  const pace = { stallMs: 100, minBytesPerSecond: 1, stopMs: 60_000 };
  const steady = new FakeSocket();
  void jobSocket(steady).endStreamed(1000, 'done', jsonTextStream(bigDone()), ending, pace);
  await until(() => steady.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  // A fragment every 50 ms: each wait is under stallMs, the whole far over it.
  const started = Date.now();
  while (steady.closes.length === 0 && Date.now() - started < 5000) {
    steady.readOne();
    await wait(50);
    if (Date.now() - started > 600) while (steady.readOne()) await wait(1);
  }
  assert.deepEqual(steady.closes, [1000], 'the whole message went');

  // 64 KiB every 50 ms (1.25 MiB/s) with 2 MiB/s asked for: ended once the message began
  // sentBytes ÷ 2 MiB/s ago, long before all of it went, though each wait is short.
  const logs: { level: number; msg: string }[] = [];
  const slow = new FakeSocket();
  void jobSocket(slow, { logs }).endStreamed(1000, 'done', jsonTextStream(bigDone()), ending, { stallMs: 100, minBytesPerSecond: 2 * 1024 * 1024, stopMs: 60_000 });
  const slowStart = Date.now();
  while (slow.closes.length === 0 && Date.now() - slowStart < 5000) {
    slow.readOne();
    await wait(50);
  }
  assert.deepEqual([slow.closes, slow.sent], [[4429], []]);
  assert.ok(slow.fragments.every((f) => !f.fin), 'cut before its end');
  const cut = logs.find((l) => l.msg.includes('cut short'));
  assert.equal(cut?.level, 30, 'a client too slow is logged at info');
});

test('an API that stops waits for a last message going in fragments, then its close; one that does not go in time is cut, 4503 alone', async () => {
  const stops: (() => Promise<void>)[] = [];
  const socket = new FakeSocket();
  const live = jobSocket(socket, { shutdown: (stop) => stops.push(stop) });
  void live.endStreamed(1000, 'done', jsonTextStream(bigDone()), ending, { stallMs: 60_000, minBytesPerSecond: 1, stopMs: 60_000 });
  await until(() => socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  let stopped = false;
  const stopping = stops[0]!().then(() => (stopped = true));
  await wait(50);
  assert.deepEqual([stopped, socket.closes], [false, []], 'the stop waits for the message');
  while (socket.closes.length === 0) {
    socket.readOne();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await stopping;
  assert.deepEqual(socket.closes, [1000]);
  assert.equal(socket.fragments.at(-1)?.fin, true, 'the message whole');
  assert.deepEqual(socket.sent, []);

  const stuckStops: (() => Promise<void>)[] = [];
  const stuck = new FakeSocket();
  void jobSocket(stuck, { shutdown: (stop) => stuckStops.push(stop) }).endStreamed(1000, 'done', jsonTextStream(bigDone()), ending, { stallMs: 60_000, minBytesPerSecond: 1, stopMs: 100 });
  await until(() => stuck.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  const stopAt = Date.now();
  await stuckStops[0]!();
  assert.ok(Date.now() - stopAt < 2000, `${Date.now() - stopAt} ms`);
  assert.deepEqual([stuck.closes, stuck.sent], [[4503], []], 'no message inside the cut one');
  // Dropped too: its client, which read none of the fragments, would not answer the close either,
  // and ws would hold the stop 30 s more for that answer.
  assert.equal(stuck.terminated, true);
});

test("an end that fails in its own turn (a `failed` that throws) is logged, and the socket dropped: no unhandled rejection", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const logs: { level: number; msg: string }[] = [];
    const socket = new FakeSocket();
    const text = new Readable({ read() { this.destroy(new RangeError('Invalid string length')); } });
    const failing = () => {
      throw new Error('failed() broke');
    };
    void jobSocket(socket, { logs }).endStreamed(1000, 'done', text, failing);
    await until(() => socket.terminated, 5000, 5, 'the socket dropped');
    await wait(20);
    assert.deepEqual(unhandled, []);
    assert.ok(logs.some((l) => l.level === 50 && l.msg.includes('could not be ended')));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
