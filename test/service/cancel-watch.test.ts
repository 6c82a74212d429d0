// The worker's ear for cancel messages (src/queue/cancel-watch.ts) against a real redis-server:
// a message for a job not (yet) running here is remembered for it, one for a running job is not,
// and a break in the subscription is known, so that the worker then asks Redis for the marker.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startCancelWatch } from '../../src/queue/cancel-watch.js';
import { createRedis } from '../../src/queue/connection.js';
import { start, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

let redis: TestRedis;
before(async () => {
  redis = await start();
});
after(async () => {
  await redis.stop();
});

const CHANNEL = 'test:cb:cancel';

test('a cancel heard before its job runs here is remembered once; a running job takes its own', async () => {
  const subscriber = createRedis(redis.url, 'blocking', 'test-cancel-watch');
  const publisher = new Redis(redis.url);
  try {
    const aborted: string[] = [];
    const running = new Set(['running-job']);
    const subscribedBefore = Date.now();
    let resubscribed = 0;
    const watch = await startCancelWatch(
      subscriber,
      CHANNEL,
      (jobId) => {
        if (!running.has(jobId)) return false;
        aborted.push(jobId);
        return true;
      },
      () => resubscribed++,
    );
    assert.equal(watch.listeningSince(subscribedBefore - 1000), false, 'not listening before it subscribed');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const takenAt = Date.now();
    assert.equal(watch.listeningSince(takenAt), true);

    await publisher.publish(CHANNEL, 'taken-not-registered');
    await publisher.publish(CHANNEL, 'running-job');
    await until(() => aborted.length === 1);
    assert.deepEqual(aborted, ['running-job']);
    assert.equal(watch.heard('running-job'), false, 'a cancel a running job took is not remembered');
    assert.equal(watch.heard('taken-not-registered'), true);
    assert.equal(watch.heard('taken-not-registered'), false, 'claimed once');
    assert.equal(watch.heard('never-cancelled'), false);

    // A break: messages published meanwhile are lost, so nothing taken before it may skip the marker.
    await publisher.client('KILL', 'TYPE', 'pubsub');
    await until(() => !watch.listeningSince(takenAt));
    await until(() => watch.listeningSince(Date.now()), 10_000);
    assert.equal(watch.listeningSince(takenAt), false, 'the break is remembered for jobs taken before it');
    // The worker is told, so that it looks up the markers of the jobs it runs.
    await until(() => resubscribed === 1, 5000);
    await publisher.publish(CHANNEL, 'after-reconnect');
    await until(() => watch.heard('after-reconnect'));
    assert.equal(resubscribed, 1, 'once per break, not at the first subscription');
  } finally {
    subscriber.disconnect();
    publisher.disconnect();
  }
});
