// What queueing one job costs through BullMQ, the way the API submits it: `Queue.add` against a
// one-job `Queue.addBulk` (a MULTI/EXEC around the same script), alternating job by job, each
// after an idle gap (a sporadic submission: every process asleep). Per way, p50 ms from the call
// to: the add resolved (the API may answer / start waiting), a Worker's processor called (the
// worker has the job), the completion event heard (a `?wait=true` answer could be made). Same
// private redis-server as `cellblock start` (AOF, appendfsync everysec); as many blocking Workers
// as the service's default slots on this machine (`--workers`), each with concurrency 1.
//
//   node --import tsx loadtest/redis-add.ts [--jobs N] [--idle-ms MS] [--workers N]
import { rmSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { nanoid } from 'nanoid';
import { jobOptions } from '../src/queue/client.js';
import { startRedisServer } from '../src/queue/redis-server.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';
import { distribution } from './service/stats.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100' },
    'idle-ms': { type: 'string', default: '250' },
    workers: { type: 'string', default: String(2 * os.availableParallelism()) },
  },
});
const JOBS = Number(values.jobs);
const IDLE_MS = Number(values['idle-ms']);
const WORKERS = Number(values.workers);
const QUEUE = 'redis-add';
const PREFIX = `cellblock-loadtest-${nanoid(6)}`;

type Way = 'add' | 'addBulk of one';
const WAYS: Way[] = ['add', 'addBulk of one'];

const dataDir = await makeScratchDir('redis-add');
const server = await startRedisServer({ dataDir });
const connections: Redis[] = [];
const connect = () => {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  connections.push(connection);
  return connection;
};
const queue = new Queue(QUEUE, { connection: connect(), prefix: PREFIX });
const events = new QueueEvents(QUEUE, { connection: connect(), prefix: PREFIX });
let takenAt = 0;
const workers = Array.from(
  { length: WORKERS },
  () =>
    new Worker(
      QUEUE,
      async () => {
        takenAt = performance.now();
        return { verdict: 'ok' };
      },
      { connection: connect(), prefix: PREFIX, concurrency: 1 },
    ),
);
let onCompleted: (() => void) | undefined;
events.on('completed', () => onCompleted?.());
// A python hello world as the API queues it.
const data = { runtimeId: 'python', files: [{ name: 'main.py', content: 'print("Hello, World!")' }], stdin: '', args: [] };

await runInterruptible('redis-add', async () => {
  await Promise.all([events.waitUntilReady(), ...workers.map((worker) => worker.waitUntilReady())]);
  const figures = new Map(WAYS.map((way) => [way, { queued: [] as number[], taken: [] as number[], completed: [] as number[] }]));
  for (let sent = 0; sent < 2 * JOBS; sent++) {
    const way = WAYS[sent % WAYS.length]!;
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const completed = new Promise<number>((resolve) => (onCompleted = () => resolve(performance.now())));
    const opts = jobOptions(nanoid(), Date.now(), 3600);
    const started = performance.now();
    if (way === 'add') await queue.add('python', data, opts);
    else await queue.addBulk([{ name: 'python', data, opts }]);
    const queuedAt = performance.now();
    const completedAt = await completed;
    if (sent < WAYS.length) continue; // the first of each way warms up
    const samples = figures.get(way)!;
    samples.queued.push(queuedAt - started);
    samples.taken.push(takenAt - started);
    samples.completed.push(completedAt - started);
  }
  console.log(`one job queued after ${IDLE_MS} ms idle, ${JOBS} per way (alternating), ${WORKERS} Workers; p50 ms from the call`);
  for (const [way, { queued, taken, completed }] of figures) {
    const p50 = (samples: number[]) => distribution(samples).p50.toFixed(3);
    console.log(`  ${way.padEnd(15)} queued ${p50(queued)}  taken by a worker ${p50(taken)}  completion heard ${p50(completed)}`);
  }
}, async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  await events.close();
  await queue.close();
  for (const connection of connections) connection.disconnect();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
