// A large result is kept once in Redis (result-store.ts): in a key of its own, with a stub in
// BullMQ's return value (the job's hash and the event stream), and reads back whole through every
// reader: /v1 (text and base64, answered as streamed JSON), a waiting request, a webhook, Judge0.
// A small one stays in the return value, and a waiting request is answered from its event alone.
// A live job's large `done` is sent as one message in fragments, its text made as it is sent.
// Real Redis and the real worker's queue side, on a stand-in executor whose outputs' sizes the
// job's stdin (or each test's) names: no sandbox.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { nanoid } from 'nanoid';
import { DEFAULT_WEBHOOK_MEMORY_BYTES } from '../../src/config.js';
import type { ExecuteRequest, ExecuteResult, StageResult } from '../../src/executor/types.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest } from '../../src/jobs/model.js';
import { jobOptions } from '../../src/queue/client.js';
import { QUEUE_NAME, redisKeys } from '../../src/queue/keys.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import { INLINE_RESULT_MAX_BYTES, READS_RESULTS_APART_OPTION, readResultKeptApart, RESULT_TTL_OPTION, storeJobResult } from '../../src/queue/result-store.js';
import type { JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { openLiveSocket } from '../helpers/live-socket.js';
import { until } from '../helpers/until.js';
import { startReceiverHeldUntilDone, startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { getJson, listen, postJson, startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const runtimes = loadRuntimes();
const RESULT_TTL_SECONDS = 600;
const LOCK_DURATION_MS = 2000;

/** `size` bytes running through every value (control bytes, bytes that are not UTF-8). */
const output = (size: number, seed = 0) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + seed) % 256));

const stage = (stdout: Buffer, stderr = Buffer.alloc(0)): StageResult => ({
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdout,
  stderr,
  stdoutTruncated: false,
  stderrTruncated: false,
  metrics: { cpuTimeMs: 1, wallTimeMs: 2, peakMemoryBytes: 3 },
});

/** Each test's (or the run's) stdout is as many bytes as its stdin says, its stderr a tenth. */
const executor: JobExecutor = {
  execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
    const outputs = (stdin: string | Uint8Array | undefined, seed: number) => {
      const size = Number(Buffer.from(stdin ?? '').toString() || 0);
      return stage(output(size, seed), output(Math.floor(size / 10), seed + 1));
    };
    const result: ExecuteResult = { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3.11.2' } };
    if (request.live) {
      // A live job's run says it ran as the engine's would: its stage, some output, its exit.
      request.live.stage('run');
      request.live.output('run', 'stdout', Buffer.from('ran\n'));
      request.live.exit('run', stage(Buffer.alloc(0)));
    }
    if (request.tests) result.tests = request.tests.map((test, i) => ({ ...outputs(test.stdin, i), passed: null }));
    else result.run = outputs(request.stdin, 0);
    return result;
  },
  close: async () => {},
};

function startWorker(service: ServiceHarness, webhookMemoryBytes = DEFAULT_WEBHOOK_MEMORY_BYTES): Promise<QueueWorker> {
  return startStandInWorker(service, executor, {
    concurrency: 2,
    lockDurationMs: LOCK_DURATION_MS,
    webhook: { attempts: 2, timeoutMs: 10_000, backoffMs: 100, destinations: new OutboundPolicy(), memoryBytes: webhookMemoryBytes },
  });
}

/** A python job of tests whose stdouts are these many bytes. */
const testsOf = (...sizes: number[]) => ({ language: 'python', source: 'print(1)', tests: sizes.map((size) => ({ stdin: String(size) })) });

describe('large results, kept apart', () => {
  let service: ServiceHarness;
  let worker: QueueWorker;
  let redis: Redis;
  let base: string;
  const jobKey = (id: string) => `${service.prefix}:${QUEUE_NAME}:${id}`;
  /** The job's return value as BullMQ's hash holds it, as text. */
  const returnValue = async (id: string) => (await redis.hget(jobKey(id), 'returnvalue')) ?? '';
  const resultKeys = () => redis.keys(`${service.prefix}:cb:result:*`);

  before(async () => {
    service = await startService({ runtimes, resultTtlSeconds: RESULT_TTL_SECONDS });
    base = await listen(service);
    worker = await startWorker(service);
    redis = new Redis(service.redis.url);
  });
  after(async () => {
    redis?.disconnect();
    await worker?.close();
    await service?.close();
  });

  test('a large result is stored once, in its own key, and reads back whole: /v1 as text and as base64, a waiting request, a webhook', async () => {
    const receiver = await startWebhookReceiver();
    try {
      // 2 tests of 600 KiB: more than INLINE_RESULT_MAX_BYTES, and views of more than 1 Mi characters (streamed).
      const sizes = [600 * 1024, 600 * 1024];
      const waited = await postJson(`${base}/v1/jobs?wait=true&outputEncoding=base64`, { ...testsOf(...sizes), webhookUrl: receiver.url });
      assert.equal(waited.status, 200, JSON.stringify(waited.json).slice(0, 300));
      const id = waited.json.id as string;

      const stored = JSON.parse(await returnValue(id));
      assert.ok(stored.storedIn, `the job's hash holds a stub: ${JSON.stringify(stored).slice(0, 200)}`);
      assert.ok(JSON.stringify(stored).length < 1024);
      assert.equal(stored.tests, undefined);
      const [key] = await resultKeys();
      assert.equal(stored.storedIn.key, key);
      const ttlMs = await redis.pttl(key!);
      assert.ok(ttlMs > RESULT_TTL_SECONDS * 1000 && ttlMs <= RESULT_TTL_SECONDS * 1000 + LOCK_DURATION_MS, `the key expires after the result's TTL: ${ttlMs} ms`);
      // BullMQ's event stream (kept by count, not age) holds the stub only.
      const events = (await redis.xrevrange(`${service.prefix}:${QUEUE_NAME}:events`, '+', '-', 'COUNT', 100)) as [string, string[]][];
      const completed = events.map(([, fields]) => fields).find((fields) => fields.includes('completed') && fields.includes(id));
      assert.ok(completed, 'a completed event for the job');
      assert.ok(completed.join('').length < 1024, `the completed event is small: ${completed.join(' ').length} characters`);

      const expected = sizes.map((size, i) => ({ stdout: output(size, i), stderr: output(Math.floor(size / 10), i + 1) }));
      const asBase64 = (view: any) => view.result.tests.map((t: any) => ({ stdout: Buffer.from(t.stdout, 'base64'), stderr: Buffer.from(t.stderr, 'base64') }));
      const asText = (view: any) => view.result.tests.map((t: any) => [t.stdout, t.stderr]);
      const text = expected.map(({ stdout, stderr }) => [stdout.toString('utf8'), stderr.toString('utf8')]);
      assert.deepEqual(asBase64(waited.json), expected, 'the waiting request');
      const read = await getJson(`${base}/v1/jobs/${id}?outputEncoding=base64`);
      assert.equal(read.status, 200);
      assert.deepEqual(asBase64(read.json), expected, 'GET as base64');
      assert.deepEqual(read.json.result.tests[1].stdout, waited.json.result.tests[1].stdout);
      // Answered as JSON text made as it is sent: no length known ahead.
      const streamed = await fetch(`${base}/v1/jobs/${id}`);
      assert.equal(streamed.headers.get('content-length'), null);
      assert.equal(streamed.headers.get('content-type'), 'application/json; charset=utf-8');
      await streamed.arrayBuffer();
      const readText = await getJson(`${base}/v1/jobs/${id}`);
      assert.deepEqual(asText(readText.json), text, 'GET as text');
      assert.equal(readText.json.status, 'done');
      assert.equal(readText.json.result.metrics.wallTimeMs, 4);

      await until(() => receiver.received.length > 0, 10_000, 20, 'the webhook');
      assert.deepEqual(asText(receiver.received[0]!.body), text, "the webhook's body");
    } finally {
      receiver.close();
    }
  });

  test('a Judge0 submission whose output is large reads back whole', async () => {
    const stdoutBytes = 300 * 1024;
    const created = await postJson(`${base}/submissions?base64_encoded=true&wait=true`, {
      language_id: 71,
      source_code: Buffer.from('print(1)').toString('base64'),
      stdin: Buffer.from(String(stdoutBytes)).toString('base64'),
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.ok(JSON.parse(await returnValue(created.json.token)).storedIn, 'kept apart');
    const read = await getJson(`${base}/submissions/${created.json.token}?base64_encoded=true&fields=stdout,status_id`);
    assert.equal(read.json.status_id, 3);
    assert.deepEqual(Buffer.from(read.json.stdout, 'base64'), output(stdoutBytes));
    assert.deepEqual(Buffer.from(created.json.stdout, 'base64'), output(stdoutBytes), 'the waiting request');
  });

  /** Every WebSocket send in this process while `run` runs (the API's and the test client's): its
   * bytes, whether it ends its message (fin), and how many times a 1 ms timer had fired by then. */
  async function recordSends<T>(run: () => Promise<T>): Promise<{ result: T; sends: { bytes: number; fin: boolean; ticks: number }[] }> {
    const sends: { bytes: number; fin: boolean; ticks: number }[] = [];
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 1);
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, data: any, options?: any, cb?: any) {
      sends.push({ bytes: Buffer.byteLength(data), fin: typeof options === 'object' ? options.fin !== false : true, ticks });
      return send.call(this, data, options, cb);
    } as typeof send;
    try {
      return { result: await run(), sends };
    } finally {
      WebSocket.prototype.send = send;
      clearInterval(ticking);
    }
  }

  /** A live python job whose run's stdout is `stdoutBytes` of every byte value: its messages. */
  const liveJob = (stdoutBytes: number, encoding = 'utf8') =>
    recordSends(async () => {
      const socket = await openLiveSocket(`${base.replace(/^http/, 'ws')}/v1/live?outputEncoding=${encoding}`);
      socket.send({ type: 'submit', job: { language: 'python', source: 'print(1)', stdin: String(stdoutBytes) } });
      const done = await socket.next((m) => m.type === 'done');
      assert.deepEqual(await socket.closed, { code: 1000, reason: 'done' });
      return { done, messages: socket.messages };
    });

  test("a live job's done over 1 Mi characters is one message, sent in fragments as the client reads it, the event loop turning between them; it reads as GET does", async () => {
    for (const encoding of ['utf8', 'base64']) {
      const stdoutBytes = 1536 * 1024;
      const { result: { done, messages }, sends } = await liveJob(stdoutBytes, encoding);
      assert.deepEqual(messages.map((m) => m.type), ['accepted', 'started', 'stage', 'output', 'exit', 'done'], 'output and exit before the done, nothing after it');
      const read = await getJson(`${base}/v1/jobs/${done.job.id}?outputEncoding=${encoding}`);
      assert.deepEqual(done.job, read.json);
      const stdout = done.job.result.stdout as string;
      assert.deepEqual(encoding === 'base64' ? Buffer.from(stdout, 'base64') : stdout, encoding === 'base64' ? output(stdoutBytes) : output(stdoutBytes).toString('utf8'));
      // The done's fragments: all but the last say more follows; together they are its text.
      const last = sends.findIndex((send, i) => send.fin && i > 0 && !sends[i - 1]!.fin);
      const first = sends.findIndex((send) => !send.fin);
      assert.ok(first >= 0 && last > first + 1, `the done is sent in fragments: ${JSON.stringify(sends.map((s) => [s.bytes, s.fin]))}`);
      const fragments = sends.slice(first, last + 1);
      assert.equal(fragments.reduce((sum, f) => sum + f.bytes, 0), Buffer.byteLength(JSON.stringify(done)));
      assert.ok(Math.max(...fragments.map((f) => f.bytes)) <= 64 * 1024, 'none holds the message');
      assert.ok(fragments.at(-1)!.ticks > fragments[0]!.ticks, 'timers ran while the done went');
    }
  });

  test("a live job's small done is one send, as every other message", async () => {
    const { result: { done }, sends } = await liveJob(1000);
    assert.ok(sends.every((send) => send.fin), 'no fragments');
    assert.equal(done.job.result.stdout, output(1000).toString('utf8'));
    assert.deepEqual(done.job, (await getJson(`${base}/v1/jobs/${done.job.id}`)).json);
  });

  test("an API that stops while a live job's large done is going waits for it: its client gets it whole, then 1000 (it got part of it and a bare 1001)", async () => {
    const stopping = await startService({ runtimes, resultTtlSeconds: RESULT_TTL_SECONDS });
    const stoppingWorker = await startWorker(stopping).catch(async (error) => {
      await stopping.close();
      throw error;
    });
    let appClosed = false;
    try {
      const url = `${(await listen(stopping)).replace(/^http/, 'ws')}/v1/live?outputEncoding=base64`;
      const client = new WebSocket(url);
      const messages: Record<string, any>[] = [];
      client.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
      const closed = new Promise<{ code: number; reason: string }>((resolve) => client.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
      // 16 MiB as base64: more than the loopback's buffers take while the client reads nothing.
      client.send(JSON.stringify({ type: 'submit', job: { language: 'python', source: 'print(1)', stdin: String(12 * 1024 * 1024) } }));
      await until(() => messages.some((m) => m.type === 'accepted'), 30_000, 10, 'accepted');
      client.pause();
      const id = messages.find((m) => m.type === 'accepted')!.id as string;
      const [server] = stopping.app.websocketServer.clients;
      await until(() => server!.bufferedAmount >= 1024 * 1024, 60_000, 10, 'the done going, held at its bound');
      const closing = stopping.app.close().then(() => (appClosed = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(appClosed, false, 'the stop waits for the done');
      client.resume();
      assert.deepEqual(await closed, { code: 1000, reason: 'done' });
      await closing;
      const done = messages.at(-1)!;
      assert.equal(done.type, 'done');
      assert.equal(done.job.id, id);
      assert.equal(Buffer.from(done.job.result.stdout, 'base64').length, 12 * 1024 * 1024);
    } finally {
      await stoppingWorker.close();
      if (appClosed) {
        await stopping.jobs.close();
        await stopping.redis.stop();
      } else await stopping.close();
    }
  });

  test("a result whose key has expired reads as a job whose result has expired: 404, not a 500", async () => {
    const { json } = await postJson(`${base}/v1/jobs?wait=true`, testsOf(100 * 1024));
    const { storedIn } = JSON.parse(await returnValue(json.id));
    assert.ok(storedIn);
    await redis.del(storedIn.key);
    const read = await getJson(`${base}/v1/jobs/${json.id}`);
    assert.equal(read.status, 404);
    assert.equal(read.json.error.code, 'job_not_found');
  });

  test('a small result stays in the return value, and a waiting request is answered from its completion event alone', async () => {
    const keysBefore = await resultKeys();
    // The record is read only where the event could not tell it: count the reads.
    const jobs = service.jobs;
    const get = jobs.get.bind(jobs);
    let reads = 0;
    jobs.get = (id) => (reads++, get(id));
    try {
      const { status, json } = await postJson(`${base}/v1/jobs?wait=true`, testsOf(1000, 10));
      assert.equal(status, 200);
      assert.equal(reads, 0, 'answered from the completion event');
      assert.equal(json.result.tests[0].stdout, output(1000).toString('utf8'));
      const small = await fetch(`${base}/v1/jobs/${json.id}`);
      assert.ok(Number(small.headers.get('content-length')) > 1000, 'a small view is answered whole');
      await small.arrayBuffer();
      const stored = JSON.parse(await returnValue(json.id));
      assert.equal(stored.storedIn, undefined);
      assert.equal(Buffer.from(stored.tests[0].stdoutBase64, 'base64').length, 1000);
      assert.deepEqual(await resultKeys(), keysBefore, 'no key of its own');
    } finally {
      jobs.get = get;
    }
  });

  test('a job queued by an API that does not read results kept apart (an earlier version) keeps a large result in its return value', async () => {
    const queue = new Queue(QUEUE_NAME, { connection: { url: service.redis.url }, prefix: service.prefix });
    try {
      const id = nanoid();
      const { [READS_RESULTS_APART_OPTION]: readsApart, ...earlierOptions } = jobOptions(id, Date.now(), RESULT_TTL_SECONDS);
      assert.equal(readsApart, true);
      const request: JobRequest = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: '' }], stdinBase64: Buffer.from('40000').toString('base64'), args: [], limits: {} };
      await queue.add('python', request, earlierOptions);
      await until(async () => (await queue.getJobState(id)) === 'completed', 10_000, 20, 'the job done');
      const stored = JSON.parse(await returnValue(id));
      assert.ok(JSON.stringify(stored).length > INLINE_RESULT_MAX_BYTES);
      assert.equal(stored.storedIn, undefined);
      assert.deepEqual(Buffer.from(stored.run.stdoutBase64, 'base64'), output(40_000));
      assert.equal((await redis.keys(`${service.prefix}:cb:result:${id}:*`)).length, 0);
    } finally {
      await queue.close();
    }
  });

  test("a result stored again (the job run again after its first worker lost it) is the second attempt's own: the first attempt's stays whole beside it", async () => {
    const keys = redisKeys(service.prefix);
    const id = nanoid();
    const job = { id, timestamp: Date.now(), opts: jobOptions(id, Date.now(), RESULT_TTL_SECONDS) };
    const attempt = { number: 1, startedAtMs: 1, finishedAtMs: 2 };
    const runtime = { id: 'python', language: 'python', version: '3.11.2' };
    const tests = (...sizes: number[]) => sizes.map((size, i) => ({ ...stage(output(size, i)), passed: null }));
    const first = await storeJobResult(redis, keys, job, { verdict: 'ok', runtime, tests: tests(30_000, 30_000, 30_000) }, 0, attempt, LOCK_DURATION_MS);
    const second = await storeJobResult(redis, keys, job, { verdict: 'ok', runtime, tests: tests(20_000) }, 0, { ...attempt, number: 2 }, LOCK_DURATION_MS);
    assert.notEqual(second.storedIn?.key, first.storedIn?.key);
    assert.deepEqual((await redis.hkeys(second.storedIn!.key)).sort(), ['0', 'bytes', 'result']);
    const read = await readResultKeptApart(redis, second.storedIn!);
    assert.equal(read?.attempt?.number, 2);
    assert.deepEqual(
      read?.tests?.map((t) => Buffer.from(t.stdoutBase64, 'base64')),
      [output(20_000)],
    );
    // The first attempt's (a worker that finished its run after losing the job) is untouched.
    const firstRead = await readResultKeptApart(redis, first.storedIn!);
    assert.deepEqual([firstRead?.attempt?.number, firstRead?.tests?.length], [1, 3]);
    assert.ok((await redis.pttl(second.storedIn!.key)) > 0);
  });

  test('a job queued by an API of before the TTL option (its TTL as BullMQ\'s removeOnComplete age) has its large result kept apart for that TTL', async () => {
    const keys = redisKeys(service.prefix);
    const id = nanoid();
    const { [RESULT_TTL_OPTION]: ttlSeconds, ...options } = jobOptions(id, Date.now(), RESULT_TTL_SECONDS);
    assert.equal(ttlSeconds, RESULT_TTL_SECONDS);
    const earlierOptions = { ...options, removeOnComplete: { age: 30 }, removeOnFail: { age: 30 } };
    const job = { id, timestamp: Date.now(), opts: earlierOptions };
    const runtime = { id: 'python', language: 'python', version: '3.11.2' };
    const stored = await storeJobResult(redis, keys, job, { verdict: 'ok', runtime, run: stage(output(40_000)) }, 0, { number: 1, startedAtMs: 1, finishedAtMs: 2 }, LOCK_DURATION_MS);
    assert.ok(stored.storedIn, 'kept apart');
    const ttlMs = await redis.pttl(stored.storedIn.key);
    assert.ok(ttlMs > 30_000 && ttlMs <= 30_000 + LOCK_DURATION_MS, `expires with the age given: ${ttlMs} ms`);
  });
});

describe("the notifier's memory budget counts a result kept apart", () => {
  // Two jobs of 200 KiB of output each, their webhooks to a receiver that answers the first only
  // once both jobs have ended: at a budget below the two results, the second attempt waits.
  for (const [budgetBytes, mostOpen] of [[300 * 1024, 1], [4 * 1024 * 1024, 2]] as const) {
    test(`a budget of ${budgetBytes} bytes: at most ${mostOpen} deliveries at once`, async () => {
      const service = await startService({ runtimes, resultTtlSeconds: RESULT_TTL_SECONDS });
      const ids: string[] = [];
      let base = '';
      const receiver = await startReceiverHeldUntilDone(() => ids.map((id) => `${base}/v1/jobs/${id}`));
      let worker: QueueWorker | undefined;
      try {
        base = await listen(service);
        const job = { ...testsOf(200 * 1024), webhookUrl: receiver.url };
        for (const response of await Promise.all([postJson(`${base}/v1/jobs`, job), postJson(`${base}/v1/jobs`, job)])) ids.push(response.json.id);
        worker = await startWorker(service, budgetBytes);
        await until(() => receiver.received.length === 2, 30_000, 20, 'both deliveries');
        assert.equal(receiver.mostOpen, mostOpen);
        assert.equal(receiver.received[0]!.body.result.tests[0].stdout.length, output(200 * 1024).toString('utf8').length);
      } finally {
        receiver.close();
        await worker?.close();
        await service.close();
      }
    });
  }
});
