// A last message sent in fragments, on its own (StreamedMessage): what send() answers for a
// client that stalls, one that reads below the least rate, one that goes while the message waits
// for room, and a cut while fragments go freely. Through a JobSocket (live-socket.test.ts), these
// show only as close codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { ApiError } from '../../src/api/errors.js';
import { jsonTextStream } from '../../src/api/json-stream.js';
import { LIVE_FRAGMENTS_BUFFER_BYTES, StreamedMessage, type FragmentPace } from '../../src/api/streamed-message.js';
import { FakeSocket } from '../helpers/fake-web-socket.js';
import { until } from '../helpers/until.js';

const bigDone = () => ({ type: 'done', job: { stdout: 'x'.repeat(3 * 1024 * 1024) } });
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A 3 MiB message on a fake socket, sending. */
function sending(pace: FragmentPace) {
  const socket = new FakeSocket();
  const text = jsonTextStream(bigDone());
  const message = new StreamedMessage(socket as unknown as WebSocket, text, pace);
  let outcome: { sent: boolean } | { error: unknown } | undefined;
  void message.send().then(
    (sent) => (outcome = { sent }),
    (error: unknown) => (outcome = { error }),
  );
  return { socket, text, message, outcome: () => outcome };
}

/** What send() ended with; fails where it has not ended within `timeoutMs`. */
async function ended(outcome: () => { sent: boolean } | { error: unknown } | undefined, timeoutMs: number) {
  await until(() => outcome() !== undefined, timeoutMs, 5, "send()'s end");
  return outcome()!;
}

test('a client that reads nothing for stallMs is too slow, said as a stall; one that reads below the least rate, said as its rate', async () => {
  const stalled = sending({ stallMs: 100, minBytesPerSecond: 1, stopMs: 60_000 });
  const stalledEnd = await ended(stalled.outcome, 3000);
  assert.ok('error' in stalledEnd && stalledEnd.error instanceof ApiError, `rejected: ${JSON.stringify(stalledEnd)}`);
  assert.equal(stalledEnd.error.code, 'client_too_slow');
  assert.match(stalledEnd.error.message, /nothing more of the last message went to the client for 100 ms/);
  assert.equal(stalled.message.started, true);
  assert.equal(stalled.text.destroyed, true, 'the text is let go');
  assert.ok(stalled.socket.fragments.every((f) => !f.fin));

  // 64 KiB every 50 ms (1.25 MiB/s), 2 MiB/s asked for: no wait reaches stallMs, the average ends it.
  const slow = sending({ stallMs: 100, minBytesPerSecond: 2 * 1024 * 1024, stopMs: 60_000 });
  const slowStart = Date.now();
  while (slow.outcome() === undefined && Date.now() - slowStart < 3000) {
    slow.socket.readOne();
    await wait(50);
  }
  const slowEnd = await ended(slow.outcome, 0);
  assert.ok('error' in slowEnd && slowEnd.error instanceof ApiError, `rejected: ${JSON.stringify(slowEnd)}`);
  assert.equal(slowEnd.error.code, 'client_too_slow');
  assert.match(slowEnd.error.message, /the client took the last message at less than 2097152 bytes\/s \(\d+ bytes sent in \d+ ms\)/);
});

test('a client that goes while the message waits for room: send() says it did not go, at once, not after stallMs', async () => {
  const { socket, outcome } = sending({ stallMs: 60_000, minBytesPerSecond: 1, stopMs: 60_000 });
  await until(() => socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES, 5000, 1, 'the bound reached');
  await wait(20);
  const fragments = socket.fragments.length;
  socket.gone();
  assert.deepEqual(await ended(outcome, 1000), { sent: false });
  assert.equal(socket.fragments.length, fragments, 'nothing more sent');
});

test('a cut while fragments go freely (no wait for room) stops the message before its next fragment', async () => {
  const { socket, text, message, outcome } = sending({ stallMs: 60_000, minBytesPerSecond: 1, stopMs: 60_000 });
  await until(() => socket.fragments.length > 0, 5000, 1, 'a first fragment');
  assert.ok(socket.bufferedAmount < LIVE_FRAGMENTS_BUFFER_BYTES, 'not waiting for room');
  const fragments = socket.fragments.length;
  const reason = new ApiError(503, 'shutting_down', 'cut');
  message.cut(reason);
  const end = await ended(outcome, 1000);
  assert.ok('error' in end && end.error === reason, 'rejected with the cut reason');
  assert.equal(socket.fragments.length, fragments, 'no fragment after the cut');
  assert.equal(text.destroyed, true);
});
