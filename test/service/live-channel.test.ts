// The worker's side of a live job, without Redis: input held until the program runs, then
// written as it comes; `started` with the executor's first word, not before; events in order,
// output written during a publish merged into the next, and `end` last, once every earlier event
// is on its way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StageResult } from '../../src/executor/types.js';
import { redisKeys } from '../../src/queue/keys.js';
import { openLiveChannel } from '../../src/queue/live-channel.js';
import { decodeEvent, encodeInput } from '../../src/queue/live-wire.js';

function fakes() {
  const published: string[] = [];
  let hear: (message: string) => void = () => {};
  let unlistened = false;
  /** Publishes resolve one turn of the event loop later, as a round trip would. */
  const publisher = {
    publish: (_channel: string, message: string) =>
      new Promise<number>((resolve) =>
        setImmediate(() => {
          published.push(message);
          resolve(1);
        }),
      ),
  };
  const inputs = {
    listen: async (_channel: string, onMessage: (message: string) => void) => void (hear = onMessage),
    unlisten: async () => void (unlistened = true),
  };
  return { published, publisher, inputs, hear: (message: string) => hear(message), unlistened: () => unlistened };
}

const result: StageResult = {
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdout: Buffer.alloc(0),
  stderr: Buffer.alloc(0),
  stdoutTruncated: false,
  stderrTruncated: false,
  metrics: { cpuTimeMs: 1, wallTimeMs: 2, peakMemoryBytes: 3 },
};

test('events in order, output written during a publish merged, end last once all are sent', async () => {
  const { published, publisher, inputs, unlistened } = fakes();
  const channel = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'job');
  channel.stage('run');
  for (const byte of 'abc') channel.output('run', 'stdout', Buffer.from(byte));
  channel.output('run', 'stderr', Buffer.from('!'));
  channel.exit('run', result);
  await channel.close();
  const events = published.map((message) => decodeEvent(message));
  assert.deepEqual(events, [
    { type: 'started' },
    { type: 'stage', stage: 'run' },
    { type: 'output', stage: 'run', stream: 'stdout', data: Buffer.from('abc') },
    { type: 'output', stage: 'run', stream: 'stderr', data: Buffer.from('!') },
    { type: 'exit', stage: 'run', exit: { verdict: 'ok', exitCode: 0, signal: null, signalName: null, cpuTimeMs: 1, wallTimeMs: 2, peakMemoryBytes: 3 } },
    { type: 'end' },
  ]);
  assert.equal(unlistened(), true);
});

test("nothing goes to the session before the executor's first word: a channel closed before it sends neither `started` nor `end`", async () => {
  const { published, publisher, inputs, unlistened } = fakes();
  const channel = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'job', { noSessionLooksMs: [10] });
  const listens = channel.sessionListens();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(channel.started, false);
  await channel.close();
  assert.deepEqual(published, [], 'nothing published');
  assert.equal(unlistened(), true, 'its input channel given up');
  assert.equal(await listens, true, 'no session judged gone: nothing was told to it');
});

test('`started` goes with the first word the executor says, whichever it is', async () => {
  for (const first of ['stage', 'connectStdin'] as const) {
    const { published, publisher, inputs } = fakes();
    const channel = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'job');
    assert.equal(channel.started, false, first);
    if (first === 'stage') channel.stage('compile');
    else channel.connectStdin({ write: () => {}, end: () => {}, resize: () => {} });
    assert.equal(channel.started, true, first);
    await channel.close();
    assert.deepEqual(published.map((message) => decodeEvent(message)?.type), first === 'stage' ? ['started', 'stage', 'end'] : ['started', 'end'], first);
  }
});

test('stdin heard before the program runs is held, merged, and written when it connects; then as it comes', async () => {
  const { publisher, inputs, hear } = fakes();
  const channel = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'job');
  hear(encodeInput({ type: 'stdin', data: Buffer.from('a') }));
  hear(encodeInput({ type: 'stdin', data: Buffer.from('b') }));
  hear('not a message');
  const written: string[] = [];
  channel.connectStdin({ write: (data) => void written.push(Buffer.from(data).toString()), end: () => void written.push('<end>'), resize: () => assert.fail('no resize was sent') });
  assert.deepEqual(written, ['ab']);
  hear(encodeInput({ type: 'stdin', data: Buffer.from('c') }));
  hear(encodeInput({ type: 'stdinEnd' }));
  assert.deepEqual(written, ['ab', 'c', '<end>']);
  await channel.close();
});

test("a terminal's sizes heard before the program runs are held in order with its stdin, the last of a run of them only; then passed on as they come", async () => {
  const { publisher, inputs, hear } = fakes();
  const channel = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'job', { terminal: { rows: 24, cols: 80 } });
  assert.deepEqual(channel.terminal, { rows: 24, cols: 80 });
  hear(encodeInput({ type: 'resize', rows: 30, cols: 90 }));
  hear(encodeInput({ type: 'resize', rows: 31, cols: 91 }));
  hear(encodeInput({ type: 'stdin', data: Buffer.from('a') }));
  hear(encodeInput({ type: 'resize', rows: 32, cols: 92 }));
  // Not a size a terminal can have: dropped where it is decoded, never reaching the engine.
  hear(JSON.stringify({ type: 'resize', rows: 0, cols: 80 }));
  hear(JSON.stringify({ type: 'resize', rows: 24.5, cols: 80 }));
  const told: string[] = [];
  channel.connectStdin({
    write: (data) => void told.push(Buffer.from(data).toString()),
    end: () => void told.push('<end>'),
    resize: (size) => void told.push(`${size.rows}x${size.cols}`),
  });
  assert.deepEqual(told, ['31x91', 'a', '32x92']);
  hear(encodeInput({ type: 'resize', rows: 40, cols: 100 }));
  assert.deepEqual(told.at(-1), '40x100');
  await channel.close();
  const plain = await openLiveChannel(inputs, publisher as never, redisKeys('p'), 'other');
  assert.equal(plain.terminal, undefined);
  await plain.close();
});

/** A publisher whose `started` reaches `receivers` subscribers and whose NUMSUB answers, look by
 * look, `later` (the last answer repeated). */
function sessionProbe(receivers: number | Error, later: number[]) {
  let numsubAsked = 0;
  const publisher = {
    publish: async (_channel: string, message: string) => {
      if (decodeEvent(message)?.type === 'started' && receivers instanceof Error) throw receivers;
      return decodeEvent(message)?.type === 'started' ? (receivers as number) : 1;
    },
    pubsub: async (subcommand: string, channel: string) => {
      const count = later[Math.min(numsubAsked++, later.length - 1)];
      return subcommand === 'NUMSUB' ? [channel, count] : [];
    },
  };
  const { inputs } = fakes();
  return { publisher, inputs, numsubAsked: () => numsubAsked };
}

/** The looks, shortened for tests. */
const LOOKS_MS = [20, 60, 120];

test('a session that heard `started` listens: no second look', async () => {
  const probe = sessionProbe(1, [0]);
  const channel = await openLiveChannel(probe.inputs, probe.publisher as never, redisKeys('p'), 'job', { noSessionLooksMs: LOOKS_MS });
  channel.stage('run');
  assert.equal(await channel.sessionListens(), true);
  assert.equal(probe.numsubAsked(), 0);
  await channel.close();
});

test('no subscriber for `started`: gone only if none is subscribed at any look (a subscriber may be reconnecting)', async () => {
  for (const [later, listens, looks] of [[[0], false, 3], [[0, 1], true, 2], [[0, 0, 1], true, 3]] as const) {
    const probe = sessionProbe(0, [...later]);
    const channel = await openLiveChannel(probe.inputs, probe.publisher as never, redisKeys('p'), 'job', { noSessionLooksMs: LOOKS_MS });
    channel.stage('run');
    const started = Date.now();
    assert.equal(await channel.sessionListens(), listens, JSON.stringify(later));
    assert.equal(probe.numsubAsked(), looks, JSON.stringify(later));
    if (!listens) assert.ok(Date.now() - started >= LOOKS_MS.at(-1)! - 5, 'after the last look');
    await channel.close();
  }
});

test('Redis cannot tell (the publish failed): the session is taken to listen', async () => {
  const probe = sessionProbe(new Error('Connection is closed.'), [0]);
  const channel = await openLiveChannel(probe.inputs, probe.publisher as never, redisKeys('p'), 'job', { noSessionLooksMs: LOOKS_MS });
  channel.stage('run');
  assert.equal(await channel.sessionListens(), true);
  await channel.close();
});

test("close() calls off the looks still due (the job has ended): no timer keeps the worker's process", async () => {
  const probe = sessionProbe(0, [0]);
  const channel = await openLiveChannel(probe.inputs, probe.publisher as never, redisKeys('p'), 'job', { noSessionLooksMs: [60_000] });
  channel.stage('run');
  const listens = channel.sessionListens();
  await new Promise((resolve) => setImmediate(resolve));
  await channel.close();
  assert.equal(await listens, true);
  assert.equal(probe.numsubAsked(), 0);
});

test('a run stopped before the first word tells its session nothing (its stage, stdin, exit, end); one stopped after it goes on telling', async () => {
  const stoppedEarly = fakes();
  const early = new AbortController();
  const channel = await openLiveChannel(stoppedEarly.inputs, stoppedEarly.publisher as never, redisKeys('p'), 'job', { stopped: early.signal });
  early.abort('shutdown');
  channel.stage('run');
  channel.connectStdin({ write: () => {}, end: () => {}, resize: () => {} });
  channel.exit('run', { ...result, verdict: 'cancelled' });
  await channel.close();
  assert.equal(channel.started, false);
  assert.deepEqual(stoppedEarly.published, []);

  const stoppedLater = fakes();
  const later = new AbortController();
  const begun = await openLiveChannel(stoppedLater.inputs, stoppedLater.publisher as never, redisKeys('p'), 'other', { stopped: later.signal });
  begun.stage('run');
  later.abort('shutdown');
  begun.exit('run', { ...result, verdict: 'cancelled' });
  await begun.close();
  assert.equal(begun.started, true);
  assert.deepEqual(stoppedLater.published.map((message) => decodeEvent(message)?.type), ['started', 'stage', 'exit', 'end']);
});
