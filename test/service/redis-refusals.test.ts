// CELLBLOCK_REDIS_URL's settings that Redis refuses, and a Redis that is away, as the processes meet
// them at start: a database it does not have (ioredis goes on in database 0 after a refused
// SELECT), a closed port. In this process (the API's and a worker's queue side, as the commands
// build them), then through the `cellblock` command itself.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Redis } from 'ioredis';
import { runApi } from '../../src/bin/api-command.js';
import { loadConfig } from '../../src/config.js';
import { onRedisRefusal, type RedisRefusal } from '../../src/queue/connection.js';
import { freeLoopbackPort, freeLoopbackPortExcept } from '../../src/queue/redis-server.js';
import { start as startRedis } from '../helpers/redis.js';
import { builtRuntimes, getJson, postJson, runCellblockToExit, scratchDir, startIdleWorker } from './fixtures.js';

const hello = { language: 'python', source: 'print(1)' };

/** The first refusal this process hears of (onRedisRefusal tells the first only). */
const refusals: RedisRefusal[] = [];
onRedisRefusal((refusal) => refusals.push(refusal));

function collectingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), lines };
}

/** `cellblock api`'s own start, in this process, against `redisUrl`. */
async function startApi(redisUrl: string, logger: pino.Logger, avoidPort?: number) {
  const port = avoidPort === undefined ? await freeLoopbackPort() : await freeLoopbackPortExcept([avoidPort]);
  const config = loadConfig({ CELLBLOCK_REDIS_URL: redisUrl, CELLBLOCK_PORT: String(port), CELLBLOCK_HOST: '127.0.0.1' });
  return runApi(config, redisUrl, logger);
}

/** The keys in every database of the Redis at `url` (INFO keyspace lists those that have any). */
async function keyspace(url: string): Promise<string> {
  const client = new Redis(url);
  try {
    return (await client.info('keyspace')).replace('# Keyspace', '').trim();
  } finally {
    client.disconnect();
  }
}

describe('in this process', () => {
  test('a database Redis does not have: no connection runs a command in another; the API answers 503, never 2xx; the worker is never ready', async () => {
    const redis = await startRedis();
    const { logger, lines } = collectingLogger();
    const url = `${redis.url}/99`;
    const api = await startApi(url, logger);
    const worker = startIdleWorker(url, 'refusals', logger);
    worker.catch(() => {});
    try {
      for (const path of ['/v1/jobs', '/submissions']) {
        const body = path === '/v1/jobs' ? hello : { source_code: 'print(1)', language_id: 71 };
        const answer = await postJson(`${api.url}${path}`, body);
        assert.equal(answer.status, 503, `${path}: ${JSON.stringify(answer.json)}`);
      }
      assert.equal((await postJson(`${api.url}/v1/jobs`, hello)).json.error.code, 'queue_unavailable');
      const outcome = await Promise.race([worker.then(() => 'ready', () => 'failed'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 2000))]);
      assert.notEqual(outcome, 'ready');
      assert.ok(!lines.some((line) => line.includes('"worker ready"')), lines.join(''));
      assert.deepEqual(refusals[0], { kind: 'database', answer: 'ERR DB index is out of range', database: '99' });
      assert.equal(await keyspace(redis.url), '', 'nothing written in any database');
    } finally {
      await api.close();
      await worker.then((running) => running.close()).catch(() => {});
      await redis.stop();
    }
  });

  test('Redis away at start: the API listens at once, answers 503 queue_unavailable, and warns once', async () => {
    const closedPort = await freeLoopbackPort();
    const { logger, lines } = collectingLogger();
    const startedAt = Date.now();
    const api = await startApi(`redis://127.0.0.1:${closedPort}`, logger, closedPort);
    try {
      const listeningAfterMs = Date.now() - startedAt;
      // It waited 5 s for Redis before it listened.
      assert.ok(listeningAfterMs < 1000, `listening after ${listeningAfterMs} ms`);
      assert.equal((await getJson(`${api.url}/healthz`)).status, 200);
      const refused = await postJson(`${api.url}/v1/jobs`, hello);
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.code, 'queue_unavailable');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(lines.filter((line) => line.includes('redis not reachable yet')).length, 1, lines.join(''));
    } finally {
      await api.close();
    }
  });
});

const workerSkip = !builtRuntimes().runtimes.length ? 'no image built (bin/cellblock images build python)' : process.getuid?.() !== 0 && 'a worker runs as root';
const REFUSED_DATABASE_LINE = 'cellblock: CELLBLOCK_REDIS_URL names database 99, which Redis refuses (ERR DB index is out of range)';

/** Its stderr's lines, each `line` (a string: equal; a RegExp: matching), at least one. */
function assertOnly(stderr: string, line: string | RegExp): void {
  const lines = stderr.trim().split('\n');
  for (const text of lines) {
    if (typeof line === 'string') assert.equal(text, line, stderr);
    else assert.match(text, line, stderr);
  }
}

describe('the cellblock command', () => {
  test('api: a database Redis does not have stops it in one line, status 78', async () => {
    const redis = await startRedis();
    try {
      const port = String(await freeLoopbackPortExcept([redis.port]));
      const database = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: `${redis.url}/99`, CELLBLOCK_PORT: port });
      assert.equal(database.code, 78, database.stderr);
      assertOnly(database.stderr, REFUSED_DATABASE_LINE);
      assert.equal(await keyspace(redis.url), '');
    } finally {
      await redis.stop();
    }
  });

  test('worker: the same, one process or several under their supervisor (none restarted)', { skip: workerSkip }, async () => {
    const redis = await startRedis();
    const scratch = await scratchDir();
    try {
      const env = { CELLBLOCK_POOL_STATE_DIR: scratch.dir, CELLBLOCK_WORKER_CONCURRENCY: '1' };
      for (const processes of ['1', '2']) {
        const database = await runCellblockToExit(['worker'], { ...env, CELLBLOCK_REDIS_URL: `${redis.url}/99`, CELLBLOCK_WORKER_PROCESSES: processes });
        assert.equal(database.code, 78, database.stderr);
        assertOnly(database.stderr, REFUSED_DATABASE_LINE);
      }
      assert.equal(await keyspace(redis.url), '');
    } finally {
      await scratch.remove();
      await redis.stop();
    }
  });

  test('start with CELLBLOCK_REDIS_URL naming a database Redis does not have: it and its worker process stop, status 78', { skip: workerSkip }, async () => {
    const redis = await startRedis();
    const scratch = await scratchDir();
    try {
      const started = await runCellblockToExit(['start'], {
        CELLBLOCK_REDIS_URL: `${redis.url}/99`,
        CELLBLOCK_PORT: String(await freeLoopbackPortExcept([redis.port])),
        CELLBLOCK_POOL_STATE_DIR: scratch.dir,
        CELLBLOCK_WORKER_PROCESSES: '1',
        CELLBLOCK_WORKER_CONCURRENCY: '1',
      });
      assert.equal(started.code, 78, started.stderr);
      assertOnly(started.stderr, REFUSED_DATABASE_LINE);
      assert.equal(await keyspace(redis.url), '');
    } finally {
      await scratch.remove();
      await redis.stop();
    }
  });
});
