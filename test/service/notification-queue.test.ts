// The notification queue's entries on their own (a real redis-server): one per job and creation
// time, queued delayed, sent now at the job's end, and taken again when given up before it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { nanoid } from 'nanoid';
import { NOTIFICATION_QUEUE_NAME, NotificationQueue } from '../../src/queue/notification-queue.js';
import { start, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

let redis: TestRedis;
let connection: Redis;

before(async () => {
  redis = await start();
  connection = new Redis(redis.url, { maxRetriesPerRequest: null });
});
after(async () => {
  connection.disconnect();
  await redis.stop();
});

/** A notification queue under a prefix of its own (closed by the test). */
function freshQueue(): { prefix: string; queue: NotificationQueue } {
  const prefix = `t${nanoid(8)}`;
  return { prefix, queue: new NotificationQueue(connection, prefix) };
}

/** The entry's state and BullMQ's count of its attempts, read as BullMQ keeps them. */
async function entry(prefix: string, id: string): Promise<{ state: string; attemptsMade: number } | undefined> {
  const hash = await connection.hgetall(`${prefix}:${NOTIFICATION_QUEUE_NAME}:${id}`);
  if (Object.keys(hash).length === 0) return undefined;
  const [delayed, waiting, failed] = await Promise.all([
    connection.zscore(`${prefix}:${NOTIFICATION_QUEUE_NAME}:delayed`, id),
    connection.lpos(`${prefix}:${NOTIFICATION_QUEUE_NAME}:wait`, id),
    connection.zscore(`${prefix}:${NOTIFICATION_QUEUE_NAME}:failed`, id),
  ]);
  const state = delayed !== null ? 'delayed' : waiting !== null ? 'waiting' : failed !== null ? 'failed' : 'other';
  return { state, attemptsMade: Number(hash.atm ?? 0) };
}

test('one entry per job and creation time: queued delayed, sent now at its end; a reused id with a new creation time has its own', async () => {
  const { prefix, queue } = freshQueue();
  const job = { id: 'job-a', timestamp: 1_000 };
  await queue.queueDelayed(job);
  await queue.queueDelayed(job);
  assert.deepEqual(await entry(prefix, 'job-a.1000'), { state: 'delayed', attemptsMade: 0 });
  await queue.sendNow(job);
  assert.deepEqual(await entry(prefix, 'job-a.1000'), { state: 'waiting', attemptsMade: 0 });
  await queue.sendNow({ id: 'job-a', timestamp: 2_000 });
  assert.deepEqual(await entry(prefix, 'job-a.2000'), { state: 'waiting', attemptsMade: 0 });
  assert.equal(await connection.llen(`${prefix}:${NOTIFICATION_QUEUE_NAME}:wait`), 2);
  await queue.close();
});

test('an entry given up before its job ended is taken again at the end, its attempts afresh', async () => {
  const { prefix, queue } = freshQueue();
  const job = { id: 'job-b', timestamp: 3_000 };
  // A notifier that fails it for good (as five Redis errors would).
  const failingConnection = connection.duplicate();
  const failing = new Worker(
    NOTIFICATION_QUEUE_NAME,
    async () => {
      throw new UnrecoverableError('redis said no');
    },
    { connection: failingConnection, prefix },
  );
  failing.on('error', () => {});
  try {
    await queue.sendNow(job);
    await until(async () => (await entry(prefix, 'job-b.3000'))?.state === 'failed', 10_000, 20, 'the entry given up');
  } finally {
    await failing.close();
    failingConnection.disconnect();
  }
  assert.equal((await entry(prefix, 'job-b.3000'))?.attemptsMade, 1);
  await queue.sendNow(job);
  assert.deepEqual(await entry(prefix, 'job-b.3000'), { state: 'waiting', attemptsMade: 0 });
  await queue.close();
});
