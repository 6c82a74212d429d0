// A job's record (what GET /v1/jobs/:id and every front show) from BullMQ's fields: `attempts`
// counts the workers that started the job, `startedAt` is when the last of them took it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobRequest } from '../../src/jobs/model.js';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CANCELLED_REASON, LIVE_RETRY_REASON, readJobRecord, toRecord } from '../../src/queue/job-record.js';
import type { RedisKeys } from '../../src/queue/keys.js';
import type { Clock } from '../../src/queue/redis-clock.js';

const request = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: '' }], stdinBase64: '', args: [], limits: {} } as JobRequest;
const at = (seconds: number) => Date.UTC(2026, 11, 7, 10, 0, seconds);
const iso = (seconds: number) => new Date(at(seconds)).toISOString();

test('a job retried after its worker died: both workers counted, started when the second took it', () => {
  const record = toRecord(
    { id: 'a', timestamp: at(0), data: request, processedOn: at(40), finishedOn: at(41), attemptsStarted: 2, returnvalue: undefined as never, failedReason: '' },
    'active',
  );
  assert.deepEqual([record.status, record.attempts, record.startedAt, record.finishedAt], ['running', 2, iso(40), undefined]);
});

test('a job read as running whose hash says it finished (it finished between the two reads) is read again: failed, with its finish time', async () => {
  const job = { id: 'f', timestamp: at(0), data: request, processedOn: at(1), finishedOn: at(2), attemptsStarted: 1, returnvalue: undefined, failedReason: 'executor: closed', getState: async () => 'failed' };
  const queue = { getJobState: async () => 'active', getJob: async () => job } as unknown as Queue;
  const record = await readJobRecord(queue, {} as Redis, {} as RedisKeys, 'f');
  assert.deepEqual([record?.status, record?.failure?.code, record?.finishedAt], ['failed', 'internal_error', iso(2)]);
});

test('a job read as finished whose hash is unfinished (an expired job made anew under its id in between) is read again: queued', async () => {
  const job = { id: 'n', timestamp: at(0), data: request, processedOn: undefined, finishedOn: undefined, attemptsStarted: 0, returnvalue: null, failedReason: undefined, getState: async () => 'waiting' };
  const queue = { getJobState: async () => 'completed', getJob: async () => job } as unknown as Queue;
  const record = await readJobRecord(queue, {} as Redis, {} as RedisKeys, 'n');
  assert.deepEqual([record?.status, record?.result, record?.finishedAt], ['queued', undefined, undefined]);
});

test("a job failed worker_lost: the take that failed it ran nothing, and is neither an attempt nor the job's start", () => {
  // BullMQ: two runs died (their takes at 1 s and 40 s); the third take, at 95 s, failed it at once.
  const record = toRecord(
    { id: 'b', timestamp: at(0), data: request, processedOn: at(95), finishedOn: at(95), attemptsStarted: 3, returnvalue: undefined as never, failedReason: 'job stalled more than allowable limit' },
    'failed',
  );
  assert.equal(record.status, 'failed');
  assert.equal(record.failure?.code, 'worker_lost');
  assert.equal(record.attempts, 2, 'the two workers that died running it');
  assert.equal(record.startedAt, undefined, "its last run's start is not in Redis: the failing take overwrote it");
  assert.equal(record.finishedAt, iso(95));
});

test("a job failed worker_lost says how many times it was retried: none with a stall count of 0, else one fewer than its worker's deaths", () => {
  const failedAfter = (stalledCounter: number | undefined, attemptsStarted: number) =>
    toRecord(
      { id: 'g', timestamp: at(0), data: request, processedOn: at(9), finishedOn: at(9), attemptsStarted, stalledCounter, returnvalue: undefined as never, failedReason: 'job stalled more than allowable limit' },
      'failed',
    ).failure?.message;
  assert.equal(failedAfter(1, 2), "the job's worker died while it ran, and the job was not retried (no retry after a worker's death is allowed here)");
  assert.equal(failedAfter(2, 3), "the job's worker died while it ran; it was retried once, and its worker died again");
  assert.equal(failedAfter(3, 4), "the job's worker died while it ran; it was retried 2 times, and each time its worker died again");
  // A take handed back unrun counts a take but no death: the stall count decides.
  assert.equal(failedAfter(1, 3), failedAfter(1, 2));
  // No stall count in the snapshot: the takes before the failing one.
  assert.equal(failedAfter(undefined, 2), failedAfter(1, 2));
});

test('a job cancelled at its take ran nothing: no attempt, no start', () => {
  const record = toRecord(
    { id: 'd', timestamp: at(0), data: request, processedOn: at(3), finishedOn: at(3), attemptsStarted: 1, returnvalue: undefined as never, failedReason: CANCELLED_REASON },
    'failed',
  );
  assert.deepEqual([record.status, record.attempts, record.startedAt, record.finishedAt], ['cancelled', undefined, undefined, iso(3)]);
});

test('a live job failed at its second take (not run again): the one worker that ran it, and no start', () => {
  const record = toRecord(
    { id: 'e', timestamp: at(0), data: { ...request, live: true }, processedOn: at(50), finishedOn: at(50), attemptsStarted: 2, returnvalue: undefined as never, failedReason: LIVE_RETRY_REASON },
    'failed',
  );
  assert.deepEqual([record.status, record.attempts, record.startedAt], ['failed', 1, undefined]);
  // Its reason does not blame a stop: the worker may have lost its lock, cut off from Redis.
  assert.match(record.failure?.message ?? '', /^a live job is not run again: the worker running it stopped or lost the job \(died, shut down, or was cut off from Redis past CELLBLOCK_LOCK_DURATION_MS\)/);
});

test("a live job failed at its second take by a worker of before 2026-12-07 (the reason's old words): read alike", () => {
  const oldReason = "a live job is not run again: the worker running it stopped, and its client's input went with it";
  const record = toRecord(
    { id: 'h', timestamp: at(0), data: { ...request, live: true }, processedOn: at(50), finishedOn: at(50), attemptsStarted: 2, returnvalue: undefined as never, failedReason: oldReason },
    'failed',
  );
  assert.deepEqual([record.status, record.attempts, record.startedAt], ['failed', 1, undefined]);
});

test('a job failed otherwise keeps its attempts and start', () => {
  const record = toRecord(
    { id: 'c', timestamp: at(0), data: request, processedOn: at(1), finishedOn: at(2), attemptsStarted: 1, returnvalue: undefined as never, failedReason: 'executor: closed' },
    'failed',
  );
  assert.deepEqual([record.failure?.code, record.attempts, record.startedAt], ['internal_error', 1, iso(1)]);
});

test("a completed job's start and finish are its worker's, by Redis's clock (its result's attempt), not BullMQ's stamps by the worker's own", () => {
  // The worker's clock 3700 s ahead: BullMQ's processedOn and finishedOn are, its attempt is not.
  const skewMs = 3_700_000;
  const returnvalue = { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3' }, queueWaitMs: 1000, attempt: { number: 1, startedAtMs: at(1), finishedAtMs: at(2) } };
  const record = toRecord(
    { id: 'k', timestamp: at(0), data: request, processedOn: at(1) + skewMs, finishedOn: at(2) + skewMs, attemptsStarted: 1, returnvalue: returnvalue as never, failedReason: '' },
    'completed',
  );
  assert.deepEqual([record.createdAt, record.startedAt, record.finishedAt], [iso(0), iso(1), iso(2)]);
});

/** A clock that says `nowMs`: Redis's, as a reader estimates it. */
const clockAt = (nowMs: number): Clock => ({ now: () => nowMs, offsetMs: nowMs - Date.now() });

test("a finished job reads as unknown from its result's TTL on; an unfinished one never does", async () => {
  const ttlMs = 2000;
  const now = Date.now();
  const read = (state: string, finishedOn: number | undefined, resultTtlMs: number | undefined, nowMs = now) => {
    const job = { id: 'g', timestamp: 0, data: request, processedOn: 1, finishedOn, attemptsStarted: 1, returnvalue: undefined, failedReason: 'executor: closed' };
    const queue = { getJobState: async () => state, getJob: async () => job } as unknown as Queue;
    return readJobRecord(queue, {} as Redis, {} as RedisKeys, 'g', resultTtlMs === undefined ? undefined : { ttlMs: resultTtlMs, clock: clockAt(nowMs) });
  };
  assert.equal(await read('failed', now - ttlMs, ttlMs), undefined, 'at its TTL');
  assert.equal((await read('failed', now - ttlMs + 1000, ttlMs))?.status, 'failed', 'within it');
  assert.equal((await read('failed', now - ttlMs, undefined))?.status, 'failed', 'read without a TTL (the notifier)');
  assert.equal((await read('active', undefined, ttlMs))?.status, 'running', 'running since long before the TTL');
  assert.equal((await read('waiting', undefined, ttlMs))?.status, 'queued');
  // A result kept apart is not read for a job whose result has expired.
  const stub = { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3' }, queueWaitMs: 0, storedIn: { key: 'k', bytes: 100_000_000 } };
  const kept = { id: 'h', timestamp: 0, data: request, processedOn: 1, finishedOn: now - ttlMs, attemptsStarted: 1, returnvalue: stub, failedReason: '' };
  const keptQueue = { getJobState: async () => 'completed', getJob: async () => kept } as unknown as Queue;
  const unread = { hgetallBuffer: async () => assert.fail('an expired result was read') } as unknown as Redis;
  assert.equal(await readJobRecord(keptQueue, unread, {} as RedisKeys, 'h', { ttlMs, clock: clockAt(now) }), undefined);
});

test("the TTL is counted by the reader's estimate of Redis's clock, not its own: a reader ahead by an hour still reads a job finished a second ago", async () => {
  const ttlMs = 2000;
  const redisNow = Date.now() - 3_600_000;
  const job = { id: 'j', timestamp: 0, data: request, processedOn: 1, finishedOn: redisNow - 1000, attemptsStarted: 1, returnvalue: undefined, failedReason: 'executor: closed' };
  const queue = { getJobState: async () => 'failed', getJob: async () => job } as unknown as Queue;
  assert.equal((await readJobRecord(queue, {} as Redis, {} as RedisKeys, 'j', { ttlMs, clock: clockAt(redisNow) }))?.status, 'failed');
  assert.equal(await readJobRecord(queue, {} as Redis, {} as RedisKeys, 'j', { ttlMs, clock: clockAt(redisNow + 1000) }), undefined, 'and not once Redis says it is past');
});
