// The result cleaner's schedule, on stand-ins for Redis and the queue: its interval, its guard, its
// batches, its errors (logged, never fatal) and its stop (no clean after it, none left running);
// and its cutoff, by Redis's clock whatever this process's says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from '../../src/queue/redis-clock.js';
import { MAX_RESULT_CLEAN_INTERVAL_MS, RESULT_CLEAN_BATCH, resultCleanIntervalMs, startResultCleaner } from '../../src/queue/result-cleaner.js';
import { until } from '../helpers/until.js';

/** A TTL whose interval is 10 ms. */
const TTL_MS = 40;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Stand {
  calls: string[];
  errors: unknown[];
  /** What each clean call removes, in turn (then nothing). */
  batches: number[];
  guardFree: boolean;
  /** Times the guard was asked for. */
  guardAsks?: number;
  due: number;
  failNext?: Error;
  /** The greatest finish each count took as due. */
  dueBy?: number[];
}

function standIns(stand: Stand): { queue: Queue; redis: Redis } {
  const redis = {
    set: async () => {
      stand.guardAsks = (stand.guardAsks ?? 0) + 1;
      return stand.guardFree ? 'OK' : null;
    },
    zcount: async (key: string, _min: number, max: number) => {
      (stand.dueBy ??= []).push(max);
      if (stand.failNext) {
        const error = stand.failNext;
        stand.failNext = undefined;
        throw error;
      }
      stand.calls.push(`zcount ${key}`);
      return stand.due;
    },
  } as unknown as Redis;
  const queue = {
    keys: { completed: 'completed', failed: 'failed' },
    clean: async (graceMs: number, limit: number, type: string) => {
      stand.calls.push(`clean ${type} ${graceMs} ${limit}`);
      return Array.from({ length: stand.batches.shift() ?? 0 }, (_, i) => String(i));
    },
  } as unknown as Queue;
  return { queue, redis };
}

/** This process's own clock, as Redis's (no offset measured). */
const localClock: Clock = { now: () => Date.now(), offsetMs: 0 };

const start = (stand: Stand, clock = localClock) =>
  startResultCleaner({ ...standIns(stand), guardKey: 'guard', ttlMs: TTL_MS, clock, ready: () => true, onError: (error) => stand.errors.push(error) });

test('the interval: a quarter of the TTL, at most a minute', () => {
  assert.equal(resultCleanIntervalMs(2000), 500);
  assert.equal(resultCleanIntervalMs(3600 * 1000), MAX_RESULT_CLEAN_INTERVAL_MS);
  assert.equal(MAX_RESULT_CLEAN_INTERVAL_MS, 60_000);
});

test('a clean repeats while it removes full batches, in both finished sets, and skips a set with nothing due', async () => {
  const stand: Stand = { calls: [], errors: [], batches: [RESULT_CLEAN_BATCH, RESULT_CLEAN_BATCH, 3], guardFree: true, due: 1 };
  const cleaner = start(stand);
  await until(() => stand.calls.includes(`clean failed ${TTL_MS} ${RESULT_CLEAN_BATCH}`), 2000, 5, 'a clean of the failed set');
  await cleaner.stop();
  const firstRun = stand.calls.slice(0, stand.calls.indexOf(`clean failed ${TTL_MS} ${RESULT_CLEAN_BATCH}`) + 1);
  assert.deepEqual(firstRun, [
    'zcount completed',
    ...Array(3).fill(`clean completed ${TTL_MS} ${RESULT_CLEAN_BATCH}`),
    'zcount failed',
    `clean failed ${TTL_MS} ${RESULT_CLEAN_BATCH}`,
  ]);
  const quiet: Stand = { calls: [], errors: [], batches: [], guardFree: true, due: 0 };
  const quietCleaner = start(quiet);
  await until(() => quiet.calls.length >= 4, 2000, 5, 'two runs');
  await quietCleaner.stop();
  assert.ok(!quiet.calls.some((call) => call.startsWith('clean')), 'a quiet queue is only counted');
});

test('no clean while another process holds the guard, nor once stopped', async () => {
  const stand: Stand = { calls: [], errors: [], batches: [], guardFree: false, due: 1 };
  const cleaner = start(stand);
  await sleep(60);
  await cleaner.stop();
  assert.deepEqual(stand.calls, []);
  assert.ok(stand.guardAsks! > 1, 'asked each interval');
  const asked = stand.guardAsks;
  stand.guardFree = true;
  await sleep(60);
  assert.deepEqual([stand.calls, stand.guardAsks], [[], asked], 'its timer went with the stop');
});

test('a failed clean is reported and the next one comes all the same', async () => {
  const stand: Stand = { calls: [], errors: [], batches: [], guardFree: true, due: 0, failNext: new Error('Connection is closed.') };
  const cleaner = start(stand);
  await until(() => stand.calls.length > 0, 2000, 5, 'a clean after the failed one');
  await cleaner.stop();
  assert.deepEqual(
    stand.errors.map((error) => (error as Error).message),
    ['Connection is closed.'],
  );
});

test('stopped, it cleans no more and waits for the clean under way', async () => {
  const stand: Stand = { calls: [], errors: [], batches: [], guardFree: true, due: 1 };
  const { queue, redis } = standIns(stand);
  let finishClean: () => void = () => {};
  let cleanEnded = false;
  queue.clean = (async () => {
    stand.calls.push('clean');
    await new Promise<void>((resolve) => (finishClean = resolve));
    cleanEnded = true;
    return [];
  }) as unknown as Queue['clean'];
  const cleaner = startResultCleaner({ queue, redis, guardKey: 'guard', ttlMs: TTL_MS, clock: localClock, ready: () => true, onError: (error) => stand.errors.push(error) });
  await until(() => stand.calls.includes('clean'), 2000, 5, 'a clean under way');
  const stopped = cleaner.stop();
  setTimeout(() => finishClean(), 30);
  await stopped;
  assert.ok(cleanEnded, 'stop waited for the clean under way');
  const calls = stand.calls.length;
  await sleep(60);
  assert.equal(stand.calls.length, calls, 'no clean after the stop');
  assert.deepEqual(stand.errors, []);
});

test("the cutoff is Redis's now less the TTL, whatever this process's clock says: an API an hour ahead of Redis removes nothing an hour early", async () => {
  const offsetMs = -3_600_000;
  const redisClock: Clock = { now: () => Date.now() + offsetMs, offsetMs };
  const stand: Stand = { calls: [], errors: [], batches: [], guardFree: true, due: 1 };
  const cleaner = start(stand, redisClock);
  await until(() => stand.calls.some((call) => call.startsWith('clean failed')), 2000, 5, 'a clean of both sets');
  const askedAt = Date.now();
  await cleaner.stop();
  // Queue.clean's cutoff is its own Date.now() less the grace: Redis's now less the TTL.
  assert.ok(stand.calls.includes(`clean completed ${TTL_MS - offsetMs} ${RESULT_CLEAN_BATCH}`), stand.calls.join(', '));
  const dueBy = stand.dueBy![0]!;
  assert.ok(dueBy <= askedAt + offsetMs - TTL_MS && dueBy > askedAt + offsetMs - TTL_MS - 2000, `counted up to ${dueBy}, Redis's now less the TTL`);
});
