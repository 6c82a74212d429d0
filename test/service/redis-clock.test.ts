// A process's estimate of Redis's clock (redis-clock.ts): read with TIME, whatever the process's
// own clock says; the reading with the shortest round trip of the last few kept; and BullMQ's
// stamps replaced by it where BullMQ put a time, and nowhere else.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { CLOCKS_AGREE_MS, RedisClock, stampByClock, type Clock } from '../../src/queue/redis-clock.js';
import { start, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
let connection: Redis;

before(async () => {
  redis = await start();
  connection = new Redis(redis.url);
});
after(async () => {
  connection.disconnect();
  await redis.stop();
});

const redisNowMs = async () => {
  const [seconds, microseconds] = await connection.time();
  return Number(seconds) * 1000 + Number(microseconds) / 1000;
};

test("a process whose clock is an hour ahead, or behind, tells Redis's time once it has read it", async () => {
  for (const shiftMs of [3_700_000, -3_700_000]) {
    const clock = new RedisClock(connection, () => Date.now() + shiftMs);
    assert.ok(Math.abs(clock.now() - Date.now() - shiftMs) <= 1, 'its own clock until it has read Redis');
    await clock.sync();
    assert.ok(Math.abs(clock.offsetMs + shiftMs) < 50, `offset ${clock.offsetMs} for a clock ${shiftMs} ms off`);
    const [before, told, after] = [await redisNowMs(), clock.now(), await redisNowMs()];
    assert.ok(told >= before - 50 && told <= after + 50, `told ${told}, Redis said ${before} then ${after}`);
    assert.ok(Number.isInteger(told), 'whole milliseconds, as BullMQ stamps');
  }
});

test('the reading with the shortest round trip is kept: a slow one is outweighed, before and after it', async () => {
  // Redis 5 s ahead of this process; each reply comes `delayMs` after the question, Redis having read
  // its clock as the question arrived (so that a slow reading's error is half its round trip).
  const aheadMs = 5000;
  let delayMs = 0;
  const stand = {
    time: async (): Promise<[string, string]> => {
      const atMs = Date.now() + aheadMs;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return [String(Math.floor(atMs / 1000)), String((atMs % 1000) * 1000)];
    },
  };
  const clock = new RedisClock(stand as unknown as Redis);
  delayMs = 400;
  await clock.sync();
  const slowError = Math.abs(clock.offsetMs - aheadMs);
  assert.ok(slowError > 100, `a slow reading alone is off by about half its round trip (${slowError} ms)`);
  delayMs = 0;
  await clock.sync();
  assert.ok(Math.abs(clock.offsetMs - aheadMs) <= 50, `a quick reading wins (offset ${clock.offsetMs})`);
  delayMs = 400;
  await clock.sync();
  assert.ok(Math.abs(clock.offsetMs - aheadMs) <= 50, `a later slow reading does not displace it (offset ${clock.offsetMs})`);
});

test("BullMQ's finish, on a process whose clock is off Redis's, is stamped by the clock where BullMQ put its time, taking no next job; its take, other calls, and a layout of another BullMQ are left as they are", () => {
  const clock: Clock = { now: () => 42, offsetMs: CLOCKS_AGREE_MS + 1 };
  const sent: { command: string; args: unknown[] }[] = [];
  const scripts = { execCommand: (_client: never, command: string, args: unknown[]) => void sent.push({ command, args }) };
  const unknown: string[] = [];
  stampByClock(scripts, clock, (command) => unknown.push(command));
  const keys = (count: number) => Array.from({ length: count }, (_, i) => `key${i}`);
  // As BullMQ 5 lays them out: moveToActive-11 (prefix, timestamp, opts), the take, which BullMQ's
  // lock renewals count from by the process's clock: not stamped; moveToFinished-14 (id, timestamp,
  // propVal, value, target, fetchNext, ...); moveToDelayed-12 (prefix, timestamp, ...), not stamped.
  const takenAt = Date.now();
  scripts.execCommand(undefined as never, 'moveToActive', [...keys(11), 'prefix', takenAt, 'opts']);
  scripts.execCommand(undefined as never, 'moveToFinished', [...keys(14), 'job-1', Date.now(), 'returnvalue', 'null', 'completed', 1, 'prefix']);
  const delayedAt = Date.now();
  scripts.execCommand(undefined as never, 'moveToDelayed', [...keys(12), 'prefix', delayedAt, 'job-1']);
  // A layout of another BullMQ: no time where this one had it.
  const otherAt = Date.now();
  scripts.execCommand(undefined as never, 'moveToFinished', [...keys(15), 'job-2', otherAt]);
  assert.deepEqual(
    sent.map(({ command, args }) => [command, args.find((arg) => typeof arg === 'number')]),
    [
      ['moveToActive', takenAt],
      ['moveToFinished', 42],
      ['moveToDelayed', delayedAt],
      ['moveToFinished', otherAt],
    ],
  );
  // The finish takes no next job: that take, and the promotions before it, would be by Redis's time.
  assert.equal(sent[1]!.args[14 + 5], 0, 'fetchNext 0');
  assert.deepEqual(unknown, ['moveToFinished']);
});

test("BullMQ's finish, on a process whose clock agrees with Redis's, is left as BullMQ made it: its own time, and its fetch of the next job", () => {
  for (const offsetMs of [0, CLOCKS_AGREE_MS, -CLOCKS_AGREE_MS]) {
    const sent: unknown[][] = [];
    const scripts = { execCommand: (_client: never, _command: string, args: unknown[]) => void sent.push(args) };
    stampByClock(scripts, { now: () => 42, offsetMs }, (command) => assert.fail(`${command}: no time of BullMQ's`));
    const finishedAt = Date.now();
    const args = [...Array.from({ length: 14 }, (_, i) => `key${i}`), 'job-1', finishedAt, 'returnvalue', 'null', 'completed', 1, 'prefix'];
    scripts.execCommand(undefined as never, 'moveToFinished', [...args]);
    assert.deepEqual(sent, [args], `offset ${offsetMs}`);
  }
});
