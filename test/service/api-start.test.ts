// The API as `cellblock api` starts it (runApi), against a real Redis: the connections it keeps
// there, and a first `?wait=true` request sent as soon as it listens, answered by its job's end
// event rather than by the wait's poll. A worker's queue side runs jobs on a stand-in executor.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nanoid } from 'nanoid';
import pino from 'pino';
import { Redis } from 'ioredis';
import { runApi } from '../../src/bin/api-command.js';
import { loadConfig } from '../../src/config.js';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import { freeLoopbackPortExcept } from '../../src/queue/redis-server.js';
import type { JobExecutor } from '../../src/queue/worker.js';
import { startHoldingProxy } from '../helpers/holding-proxy.js';
import { okResult } from '../helpers/stand-in-result.js';
import { otherClients, start as startRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { postJson, startStandInWorker } from './fixtures.js';

const hello = { language: 'python', source: 'print(1)' };

/** `cellblock api`'s start, in this process, against `redisUrl`, its queue under `prefix`. */
async function startApi(redisUrl: string, prefix: string, avoidPort: number) {
  const port = await freeLoopbackPortExcept([avoidPort]);
  const config = loadConfig({ CELLBLOCK_REDIS_URL: redisUrl, CELLBLOCK_PORT: String(port), CELLBLOCK_HOST: '127.0.0.1', CELLBLOCK_QUEUE_PREFIX: prefix });
  return runApi(config, redisUrl, pino({ level: 'silent' }));
}

test("the API keeps two Redis connections: its producer's and the one its job events are read on (none idle beside them)", async () => {
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  try {
    assert.deepEqual(await otherClients(admin), []);
    const api = await startApi(redis.url, `t${nanoid(8)}`, redis.port);
    try {
      await until(async () => (await otherClients(admin)).some((client) => client.cmd === 'xread'), 5000, 20, 'the events read');
      const clients = await otherClients(admin);
      assert.equal(clients.length, 2, JSON.stringify(clients));
      assert.ok(clients.some((client) => client.name === 'cellblock-api'), JSON.stringify(clients));
      // BullMQ names the connection it reads events on `<prefix>:<queue name in base64>:qe`.
      assert.ok(clients.some((client) => client.name.endsWith(':qe') && client.cmd === 'xread'), JSON.stringify(clients));
    } finally {
      await api.close();
    }
    await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'every connection closed');
  } finally {
    admin.disconnect();
    await redis.stop();
  }
});

test("a ?wait=true request sent as soon as the API listens is answered by its job's end event, not by the wait's poll a second later, though its job ended before the events read reached Redis", async () => {
  const redis = await startRedis();
  const prefix = `t${nanoid(8)}`;
  // The API's events connection, from the name BullMQ gives it just before its first XREAD
  // (`<prefix>:<queue name in base64>:qe`), held until the job has ended: its read then comes
  // after the job's end event, as where Redis answers that connection more slowly than the
  // producer's (or its round trips come after the submission's).
  const eventsName = `${prefix}:${Buffer.from(QUEUE_NAME).toString('base64')}:qe`;
  const proxy = await startHoldingProxy({ host: '127.0.0.1', port: redis.port }, (bytes) => bytes.includes(eventsName));
  const admin = new Redis(redis.url);
  const ran = okResult(Buffer.from('1\n'));
  const executor: JobExecutor = { execute: async () => ran, close: async () => {} };
  // Ready before the API starts, and not through the proxy: it ends the job milliseconds after
  // it is queued.
  const worker = await startStandInWorker({ redis, prefix }, executor);
  try {
    const api = await startApi(`redis://127.0.0.1:${proxy.port}`, prefix, redis.port);
    try {
      const sentAt = Date.now();
      const answering = postJson(`${api.url}/v1/jobs?wait=true&timeoutMs=10000`, hello);
      const completed = async () => (await admin.xrange(`${prefix}:${QUEUE_NAME}:events`, '-', '+')).some(([, fields]) => fields.includes('completed'));
      await until(completed, 5000, 5, "the job's end event");
      proxy.release();
      const answer = await answering;
      const answeredInMs = Date.now() - sentAt;
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.equal(answer.json.status, 'done');
      assert.equal(answer.json.result.stdout, '1\n');
      // The wait's poll would answer it after 1 s (~1.2 s in all); room for a loaded machine below.
      assert.ok(answeredInMs < 900, `answered in ${answeredInMs} ms`);
    } finally {
      await api.close();
    }
  } finally {
    proxy.release();
    admin.disconnect();
    await worker.close();
    await proxy.close();
    await redis.stop();
  }
});
