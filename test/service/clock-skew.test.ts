// Hosts whose clocks differ. A worker runs in a process of its own with its wall clock shifted
// (test/helpers/shift-clock.mjs: Date.now and `new Date()`, as libfaketime's FAKETIME=+3700s shifts
// CLOCK_REALTIME; timers keep the monotonic clock), BullMQ's calls included, beside the API and
// Redis on this machine's clock. One worker's clock must not shorten other jobs' lives (BullMQ's
// age removal, run as a job finishes by the finishing worker's clock, once removed every other
// worker's results and the sent notifications' records), nor delay a job it hands back (BullMQ's
// moveToDelayed scored it by its clock), nor show in a job's durations (queueWaitMs, the latency
// metric, its createdAt against its startedAt). Nor may an API's clock (its jobs' createdAt, the
// expiry its reads and its result cleaner compute). Real Redis, the real worker's queue side and
// the real API (`cellblock api`, for the API whose clock is shifted); the executor a stand-in
// (stand-in-worker-process.ts).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'bullmq';
import { createRedis } from '../../src/queue/connection.js';
import type { StoredJobResult } from '../../src/queue/codec.js';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import { NOTIFICATION_QUEUE_NAME } from '../../src/queue/notification-queue.js';
import { stampByClock } from '../../src/queue/redis-clock.js';
import { freeLoopbackPort } from '../../src/queue/redis-server.js';
import type { JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { okResult } from '../helpers/stand-in-result.js';
import { until } from '../helpers/until.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { getJson, postJson, spawnCellblock, startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const shiftClock = pathToFileURL(path.join(here, '../helpers/shift-clock.mjs')).href;
const workerScript = path.join(here, 'stand-in-worker-process.ts');

/** As the exploratory test skewed a worker: past the result TTL below and past the sent
 * notifications' hour. */
const AHEAD_MS = 3_700_000;
const RESULT_TTL_SECONDS = 600;
/** Room for this machine's scheduling in a duration that should be a few ms. */
const SLACK_MS = 10_000;

/** A finished job's return value, as a worker stores it. */
const storedResult: StoredJobResult = { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3.11.2' }, queueWaitMs: 1 };
/** An executor on this machine's clock: every job ok at once. */
const okExecutor: JobExecutor = { execute: async () => okResult(Buffer.alloc(0)), close: async () => {} };

interface SkewedWorker {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
  /** SIGTERM, then its exit. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("hosts' clocks apart", () => {
  let service: ServiceHarness;
  let redis: ReturnType<typeof createRedis>;
  let receiver: WebhookReceiver;
  const children = new Set<ChildProcess>();

  before(async () => {
    service = await startService({ resultTtlSeconds: RESULT_TTL_SECONDS });
    redis = createRedis(service.redis.url, 'blocking', 'cellblock-test-clock-skew');
    receiver = await startWebhookReceiver();
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    receiver?.close();
    redis?.disconnect();
    await service?.close();
  });

  /** A stand-in worker process whose clock is `shiftMs` off this machine's. */
  async function skewedWorker(shiftMs: number, executor: 'ok' | 'unavailable' | 'slow' | 'short-once' = 'ok', shutdownGraceMs?: number, more: Record<string, string> = {}): Promise<SkewedWorker> {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', shiftClock, workerScript], {
      env: {
        ...process.env,
        CELLBLOCK_TEST_REDIS_URL: service.redis.url,
        CELLBLOCK_TEST_PREFIX: service.prefix,
        CELLBLOCK_TEST_EXECUTOR: executor,
        CELLBLOCK_TEST_CLOCK_SHIFT_MS: String(shiftMs),
        ...(shutdownGraceMs !== undefined ? { CELLBLOCK_TEST_SHUTDOWN_GRACE_MS: String(shutdownGraceMs) } : {}),
        ...more,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await until(() => /ready \d+\n/.test(output) || child.exitCode !== null, 60_000, 50, 'the skewed worker ready');
    const itsNow = Number(/ready (\d+)\n/.exec(output)?.[1]);
    assert.ok(Math.abs(itsNow - Date.now() - shiftMs) < SLACK_MS, `the worker's clock is ${shiftMs} ms off this one's (it said ${itsNow}):\n${output}`);
    return {
      child,
      exited,
      output: () => output,
      stop: async () => {
        child.kill('SIGTERM');
        await exited;
      },
    };
  }

  const submit = async (body: object, wait: boolean) => {
    const response = await service.app.inject({ method: 'POST', url: `/v1/jobs${wait ? '?wait=true&timeoutMs=30000' : ''}`, payload: body });
    assert.ok([200, 202].includes(response.statusCode), response.body);
    return response.json();
  };
  const read = async (id: string) => {
    const response = await service.app.inject({ url: `/v1/jobs/${id}` });
    return { status: response.statusCode, json: response.json() };
  };
  const jobKey = (id: string) => `${service.prefix}:${QUEUE_NAME}:${id}`;
  /** The job's notification entry has been sent (is in the notification queue's completed set). */
  const notificationSent = async (view: { id: string; createdAt: string }) =>
    (await redis.zscore(`${service.prefix}:${NOTIFICATION_QUEUE_NAME}:completed`, `${view.id}.${Date.parse(view.createdAt)}`)) !== null;
  const ms = (iso: string) => Date.parse(iso);

  test("a worker whose clock is ahead past the TTL finishes a job: every other job's result, and every sent notification's record, stay", { timeout: 120_000 }, async () => {
    // A job finished, and its webhook sent, on this machine's clock.
    const local: QueueWorker = await startStandInWorker(service, okExecutor);
    let earlier: { id: string; createdAt: string; status: string };
    try {
      earlier = await submit({ language: 'python', source: 'print("earlier")', webhookUrl: receiver.url }, true);
      assert.equal(earlier.status, 'done');
      await until(() => notificationSent(earlier), 10_000, 20, "the earlier job's notification sent");
    } finally {
      await local.close();
    }
    const ahead = await skewedWorker(AHEAD_MS);
    try {
      // Another finishes on the worker an hour ahead (past the TTL, and past the sent records' hour):
      // the job, then its notification's entry, each end there.
      const later = await submit({ language: 'python', source: 'print("later")', webhookUrl: receiver.url }, true);
      assert.equal(later.status, 'done', JSON.stringify(later));
      await until(() => notificationSent(later), 10_000, 20, "the later job's notification sent by the worker ahead");
      // Its finish stamped by Redis's clock, not its own.
      const finishedOn = Number(await redis.hget(jobKey(later.id), 'finishedOn'));
      assert.ok(Math.abs(finishedOn - Date.now()) < SLACK_MS, `finishedOn ${finishedOn}, now ${Date.now()}`);
      const shown = await read(earlier.id);
      assert.deepEqual([shown.status, shown.json.status], [200, 'done'], `the earlier job: ${JSON.stringify(shown.json)}`);
      assert.equal(await redis.exists(jobKey(earlier.id)), 1, "the earlier job's hash is in Redis");
      assert.ok(await notificationSent(earlier), "the earlier job's sent notification is still recorded");
      assert.equal(receiver.received.length, 2, 'each webhook sent once');
    } finally {
      await ahead.stop();
    }
  });

  test("a worker whose clock agrees with Redis's takes its next job in its finish, as BullMQ does (no round trip of its own)", { timeout: 60_000 }, async () => {
    // BullMQ's finish with fetchNext stamps the job it takes by the finish's own time: each job's
    // processedOn is the finishedOn of the one before it. Taken by a moveToActive of its own, it
    // is later by that round trip (the same ms now and then: six in a row, never).
    const queued: { id: string }[] = [];
    for (let i = 0; i < 7; i++) queued.push(await submit({ language: 'python', source: `print(${i})` }, false));
    const local = await startStandInWorker(service, okExecutor);
    try {
      await until(async () => (await Promise.all(queued.map(async ({ id }) => (await read(id)).json.status))).every((status) => status === 'done'), 30_000, 50, 'the jobs done');
    } finally {
      await local.close();
    }
    const stamps = await Promise.all(queued.map(async ({ id }) => (await redis.hmget(jobKey(id), 'processedOn', 'finishedOn')).map(Number)));
    stamps.sort(([a], [b]) => a! - b!);
    for (let i = 1; i < stamps.length; i++) {
      assert.equal(stamps[i]![0], stamps[i - 1]![1], `job ${i}'s take is the finish before it: ${JSON.stringify(stamps)}`);
    }
  });

  test('a finish stamped an hour ahead (a worker of before this, or one whose stamps fell back to its own clock) removes no other job', { timeout: 60_000 }, async () => {
    // BullMQ's own worker, its finishes stamped by a clock `shiftMs` ahead of Redis's (its offset
    // read at each finish).
    let shiftMs = 0;
    const connection = createRedis(service.redis.url, 'blocking', 'cellblock-test-clock-skew-finisher');
    const finisher = new Worker(QUEUE_NAME, null, { connection, prefix: service.prefix, autorun: false });
    stampByClock(
      finisher.scripts,
      {
        now: () => Date.now() + shiftMs,
        get offsetMs() {
          return shiftMs;
        },
      },
      (command) => assert.fail(`${command}: no time of BullMQ's`),
    );
    const finish = async (id: string) => {
      const job = await finisher.getNextJob(`token-${id}`);
      assert.equal(job?.id, id);
      await job!.moveToCompleted(storedResult, `token-${id}`, false);
    };
    try {
      const earlier = await submit({ language: 'python', source: 'print("earlier")' }, false);
      const later = await submit({ language: 'python', source: 'print("later")' }, false);
      await finish(earlier.id);
      shiftMs = AHEAD_MS;
      await finish(later.id);
      assert.ok(Number(await redis.hget(jobKey(later.id), 'finishedOn')) - Date.now() > AHEAD_MS - SLACK_MS, 'the later finish stamped an hour ahead');
      assert.equal(await redis.exists(jobKey(earlier.id)), 1, "the earlier job's hash is in Redis");
      assert.equal((await read(earlier.id)).json.status, 'done');
    } finally {
      await finisher.close();
      connection.disconnect();
    }
  });

  test("a job's queue wait, its times and the latency metric are one clock's, whichever the worker's", { timeout: 120_000 }, async () => {
    // Ahead: taken at once, so its queue wait and its latency are a few ms.
    const latencyBefore = (await service.jobs.stats()).latency;
    const ahead = await skewedWorker(AHEAD_MS);
    let quick: any;
    try {
      quick = await submit({ language: 'python', source: 'print("quick")' }, true);
      assert.equal(quick.status, 'done', JSON.stringify(quick));
    } finally {
      await ahead.stop();
    }
    const { queueWaitMs } = quick.result.metrics;
    assert.ok(queueWaitMs >= 0 && queueWaitMs < SLACK_MS, `queueWaitMs ${queueWaitMs}`);
    for (const [from, to] of [
      ['createdAt', 'startedAt'],
      ['startedAt', 'finishedAt'],
    ] as const) {
      const betweenMs = ms(quick[to]) - ms(quick[from]);
      assert.ok(betweenMs >= 0 && betweenMs < SLACK_MS, `${from} ${quick[from]} → ${to} ${quick[to]}`);
    }
    // The stopped worker wrote its counts before it closed.
    const latency = (await service.jobs.stats()).latency;
    assert.equal(latency.count, latencyBefore.count + 1);
    const addedMs = latency.sumMs - latencyBefore.sumMs;
    assert.ok(addedMs >= 0 && addedMs < SLACK_MS, `the latency sum grew by ${addedMs} ms`);

    // Behind: a job queued a second before the worker started waited that second, and started after
    // it was created.
    const waited = await submit({ language: 'python', source: 'print("waited")' }, false);
    await sleep(1000);
    const behind = await skewedWorker(-AHEAD_MS);
    try {
      const view = await (async () => {
        await until(async () => (await read(waited.id)).json.status === 'done', 30_000, 50, 'the waiting job done');
        return (await read(waited.id)).json;
      })();
      // Its finish stamped by Redis's clock: by the worker's own it was past its TTL at once.
      assert.ok(Math.abs(Number(await redis.hget(jobKey(waited.id), 'finishedOn')) - Date.now()) < SLACK_MS, 'finishedOn by Redis');
      const waitMs = view.result.metrics.queueWaitMs;
      assert.ok(waitMs >= 900 && waitMs < 60_000, `queueWaitMs ${waitMs}`);
      const startedAfterMs = ms(view.startedAt) - ms(view.createdAt);
      assert.ok(startedAfterMs >= 900 && startedAfterMs < 60_000, `createdAt ${view.createdAt} → startedAt ${view.startedAt}`);
    } finally {
      await behind.stop();
    }
  });

  test("a job that runs past its lock's duration on a worker whose clock is ahead, or behind, is renewed: done once, neither fenced nor run twice", { timeout: 120_000 }, async () => {
    // BullMQ's lock manager renews a job's lock counting from its processedOn by the worker's
    // Date.now(), and the lock fence counts from it too. Stamped by Redis's clock, a worker ahead
    // fenced its run at once, and one behind renewed its lock an hour late (it expired; the stall
    // check handed the job on, and it ran again).
    const lockDurationMs = 2000;
    for (const shiftMs of [AHEAD_MS, -AHEAD_MS]) {
      const worker = await skewedWorker(shiftMs, 'slow', undefined, { CELLBLOCK_TEST_LOCK_DURATION_MS: String(lockDurationMs), CELLBLOCK_TEST_RUN_MS: '3000' });
      try {
        const stdin = `long-${shiftMs}`;
        const job = await submit({ language: 'python', source: 'print("long")', stdin }, true);
        assert.deepEqual([job.status, job.attempts, job.result?.verdict], ['done', 1, 'ok'], `shifted ${shiftMs} ms: ${JSON.stringify(job)}\n${worker.output()}`);
        assert.equal(worker.output().split('\n').filter((line) => line === `run ${stdin}`).length, 1, `run once:\n${worker.output()}`);
      } finally {
        await worker.stop();
      }
    }
  });

  test('a job handed back by a worker whose clock is ahead is taken at once by another', { timeout: 120_000 }, async () => {
    // Its executor becomes unusable as the job reaches it: the worker hands the job back and stops.
    const ahead = await skewedWorker(AHEAD_MS, 'unavailable');
    const job = await submit({ language: 'python', source: 'print("handed back")' }, false);
    const code = await Promise.race([ahead.exited, sleep(30_000).then(() => 'still running')]);
    assert.equal(code, 3, `the worker stopped itself:\n${ahead.output()}`);
    assert.equal((await read(job.id)).json.status, 'queued');
    const counts = await service.jobs.counts();
    assert.deepEqual([counts.waiting, counts.delayed], [1, 0], 'waiting, not delayed by the clock ahead');
    const local = await startStandInWorker(service, okExecutor);
    try {
      await until(async () => (await read(job.id)).json.status === 'done', 5000, 20, 'the handed-back job done by a worker on time');
      assert.equal((await read(job.id)).json.attempts, 2, 'taken twice');
    } finally {
      await local.close();
    }
  });

  test('a job handed back at a host shortage by a worker whose clock is ahead waits its delay, by that clock, before its retake there', { timeout: 120_000 }, async () => {
    // BullMQ's moveToDelayed adds the delay to the worker's Date.now() (its score), and the
    // worker's takes promote it, and its waits end, by that clock too. Given a time by Redis's
    // clock, the delay came out negative (none) for a worker ahead by more than it.
    const ahead = await skewedWorker(AHEAD_MS, 'short-once');
    try {
      const startedAt = Date.now();
      const job = await submit({ language: 'python', source: 'print("short")' }, true);
      const tookMs = Date.now() - startedAt;
      assert.deepEqual([job.status, job.attempts], ['done', 2], JSON.stringify(job));
      // HOST_SHORTAGE_RETRY's first delay: 1 s.
      assert.ok(tookMs >= 950 && tookMs < SLACK_MS, `done ${tookMs} ms after its submission`);
    } finally {
      await ahead.stop();
    }
  });

  test('a notification handed back by a stopping notifier whose clock is ahead is sent at once by another', { timeout: 120_000 }, async () => {
    // The first delivery hangs until its notifier stops (its grace 100 ms): the entry goes back.
    const hanging = await startWebhookReceiver((requestNumber) => (requestNumber === 1 ? 'hang' : 204));
    const ahead = await skewedWorker(AHEAD_MS, 'ok', 100);
    try {
      const job = await submit({ language: 'python', source: 'print("hooked")', webhookUrl: hanging.url }, true);
      assert.equal(job.status, 'done');
      await until(() => hanging.received.length === 1, 10_000, 20, 'the first delivery under way');
      await ahead.stop();
      const entry = `${job.id}.${ms(job.createdAt)}`;
      const notifications = `${service.prefix}:${NOTIFICATION_QUEUE_NAME}`;
      assert.equal(await redis.zscore(`${notifications}:delayed`, entry), null, 'not delayed by the clock ahead');
      assert.notEqual(await redis.lpos(`${notifications}:wait`, entry), null, 'waiting');
      const local = await startStandInWorker(service, okExecutor);
      try {
        await until(() => hanging.received.length === 2, 5000, 20, 'the notification sent by a worker on time');
      } finally {
        await local.close();
      }
    } finally {
      hanging.close();
    }
  });

  test("an API whose clock is ahead past the TTL stamps its jobs, reads them and cleans them by Redis's clock", { timeout: 120_000 }, async () => {
    // `cellblock api` on the same Redis and prefix, an hour ahead, with a TTL of 2 s (its cleaner
    // looks every 500 ms).
    const ttlMs = 2000;
    const port = await freeLoopbackPort();
    const nodeOptions = [process.env.NODE_OPTIONS, `--import=${shiftClock}`].filter(Boolean).join(' ');
    const api = await spawnCellblock(['api'], '"api listening"', {
      CELLBLOCK_REDIS_URL: service.redis.url,
      CELLBLOCK_QUEUE_PREFIX: service.prefix,
      CELLBLOCK_PORT: String(port),
      CELLBLOCK_RESULT_TTL_SECONDS: String(ttlMs / 1000),
      CELLBLOCK_TEST_CLOCK_SHIFT_MS: String(AHEAD_MS),
      NODE_OPTIONS: nodeOptions,
    });
    children.add(api.child);
    const base = `http://127.0.0.1:${port}`;
    let local: QueueWorker | undefined;
    try {
      const accepted = await postJson(`${base}/v1/jobs`, { language: 'python', source: 'print("through the API ahead")' });
      assert.equal(accepted.status, 202, JSON.stringify(accepted.json));
      const { id } = accepted.json;
      const queued = (await getJson(`${base}/v1/jobs/${id}`)).json;
      assert.ok(Math.abs(ms(queued.createdAt) - Date.now()) < SLACK_MS, `createdAt ${queued.createdAt} by Redis's clock`);
      await sleep(1000);
      local = await startStandInWorker(service, okExecutor);
      await until(async () => (await read(id)).json.status === 'done', 10_000, 20, 'the job done');
      const finishedAtMs = Date.now();
      const done = await getJson(`${base}/v1/jobs/${id}`);
      assert.deepEqual([done.status, done.json.status], [200, 'done'], `read through the API ahead: ${JSON.stringify(done.json)}`);
      const waitMs = done.json.result.metrics.queueWaitMs;
      assert.ok(waitMs >= 900 && waitMs < SLACK_MS, `queueWaitMs ${waitMs}`);
      // Two of its cleaner's intervals within the TTL: the job is still there.
      await sleep(finishedAtMs + ttlMs - 500 - Date.now());
      assert.equal(await redis.exists(jobKey(id)), 1, 'not removed before its TTL');
      assert.equal((await getJson(`${base}/v1/jobs/${id}`)).status, 200);
      // And removed once past it.
      await until(async () => (await redis.exists(jobKey(id))) === 0, ttlMs + SLACK_MS, 50, 'the expired job removed by the API ahead');
    } finally {
      await local?.close();
      api.child.kill('SIGTERM');
      await new Promise((resolve) => (api.child.exitCode !== null ? resolve(undefined) : api.child.once('exit', resolve)));
    }
  });
});
