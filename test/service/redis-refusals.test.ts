// CELLBLOCK_REDIS_URL's settings that Redis refuses, and a Redis that is away, as the processes meet
// them at start: a database it does not have (ioredis goes on in database 0 after a refused
// SELECT), a login it does not take, a closed port. In this process (the API's and a worker's queue side, as the commands
// build them), then through the `cellblock` command itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { runApi } from '../../src/bin/api-command.js';
import { loadConfig } from '../../src/config.js';
import { mountPointsUnder } from '../../src/pool/mountinfo.js';
import { createRedis, onRedisRefusal, type RedisRefusal } from '../../src/queue/connection.js';
import { RedisClock } from '../../src/queue/redis-clock.js';
import { freeLoopbackPort, freeLoopbackPortExcept } from '../../src/queue/redis-server.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { reclaimPoolState } from '../helpers/pool-state.js';
import { processExists } from '../helpers/processes.js';
import { otherClients, start as startRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { getJson, idleExecutor, postJson, runCellblockToExit, scratchDir, spawnCellblock, startIdleWorker, startStandInWorker, workerStartSkip } from './fixtures.js';
import { WorkerStartStopped, type JobExecutor } from '../../src/queue/worker.js';
import { CLOSE_REDIS_AWAY_MS } from '../../src/queue/unreachable.js';

const PASSWORD = 'pw-Never-In-A-Log-7f3';
const hello = { language: 'python', source: 'print(1)' };

/** The first refusal this process hears of (onRedisRefusal tells the first only). */
const refusals: RedisRefusal[] = [];
onRedisRefusal((refusal) => refusals.push(refusal));

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
    const { logger, lines } = collectingLogger('info');
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

  test('Redis away at start: the API listens at once, answers 503 queue_unavailable, and warns once, saying why', async () => {
    const closedPort = await freeLoopbackPort();
    const { logger, lines } = collectingLogger('info');
    const startedAt = Date.now();
    const api = await startApi(`redis://127.0.0.1:${closedPort}`, logger, closedPort);
    try {
      const listeningAfterMs = Date.now() - startedAt;
      // It used to wait 5 s for Redis before it listened; it now waits REDIS_FIRST_CONTACT_MS at most.
      assert.ok(listeningAfterMs < 1000, `listening after ${listeningAfterMs} ms`);
      assert.equal((await getJson(`${api.url}/healthz`)).status, 200);
      const refused = await postJson(`${api.url}/v1/jobs`, hello);
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.code, 'queue_unavailable');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const warnings = lines.filter((line) => line.includes('redis not reachable yet'));
      assert.equal(warnings.length, 1, lines.join(''));
      assert.match(JSON.parse(warnings[0]!).reason, new RegExp(`^connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}$`));
    } finally {
      await api.close();
    }
  });

  test("a login Redis does not take: the warnings name Redis's answer; the password is in no log line nor on any error", async () => {
    const redis = await startRedis();
    const url = `redis://someone:${PASSWORD}@127.0.0.1:${redis.port}`;
    const { logger, lines } = collectingLogger('info');
    const api = await startApi(url, logger);
    const worker = startIdleWorker(url, 'refusals', logger);
    worker.catch(() => {});
    // Every connection error as the other listeners (BullMQ's, which log them) get it: a duplicate's too.
    const connection = createRedis(url, 'blocking', 'cellblock-test-login');
    const duplicate = connection.duplicate();
    const errors: Error[] = [];
    connection.on('error', (error) => errors.push(error));
    duplicate.on('error', (error) => errors.push(error));
    try {
      const warnings = () => lines.filter((line) => line.includes('redis not reachable yet'));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(warnings().length, 2, lines.join(''));
      for (const warning of warnings()) assert.match(JSON.parse(warning).reason, /^WRONGPASS/);
      assert.ok(errors.length >= 2, `errors: ${errors.length}`);
      for (const error of errors) assert.match(error.message, /^WRONGPASS/);
      const seen = [...lines, ...errors.map((error) => JSON.stringify({ ...error, message: error.message }))];
      assert.ok(!seen.some((text) => text.includes(PASSWORD)), seen.filter((text) => text.includes(PASSWORD)).join('\n'));
    } finally {
      connection.disconnect();
      duplicate.disconnect();
      await api.close();
      await worker.then((running) => running.close()).catch(() => {});
      await redis.stop();
    }
  });

  test("a command Redis refuses at a later step of a worker's start (BullMQ's INFO, to an ACL user without it): the start fails, leaving no connection, no liveness key, no clock reading on, nothing that keeps a process alive", async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    // The clocks started (RedisClock.start) and not stopped since: unref'd, a clock's timer keeps
    // no process alive, so only this tells one left reading on a closed connection.
    const ticking = new Set<RedisClock>();
    let clocksStarted = 0;
    const { start, stop } = RedisClock.prototype;
    RedisClock.prototype.start = function (this: RedisClock, ...args: Parameters<typeof start>) {
      clocksStarted++;
      ticking.add(this);
      start.apply(this, args);
    };
    RedisClock.prototype.stop = function (this: RedisClock) {
      ticking.delete(this);
      stop.apply(this);
    };
    try {
      const url = await userWithoutInfo(admin, redis.port);
      // ioredis says so on the console for each connection.
      const warn = console.warn;
      console.warn = (...args: unknown[]) => void (String(args[0]).startsWith('Skipping the ready check') || warn(...args));
      try {
        await assert.rejects(startIdleWorker(url, 'later-step', pino({ level: 'silent' })), { message: /^NOPERM .*'info'/ });
      } finally {
        console.warn = warn;
      }
      assert.equal(clocksStarted, 1, 'its clock, an earlier step, was started');
      assert.equal(ticking.size, 0, "its clock's timer stopped");
      assert.match(await admin.info('commandstats'), /^cmdstat_subscribe:calls=1,/m, 'its cancel subscription, an earlier step, was made');
      await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'no connection of it left');
      assert.deepEqual(await admin.keys('*'), [], 'its liveness key removed');
      // The same in a process of its own, which then has nothing left to do: it ends by itself.
      const fixtures = new URL('./fixtures.ts', import.meta.url).pathname;
      const script = `import pino from 'pino'; import { startIdleWorker } from ${JSON.stringify(fixtures)};
        await startIdleWorker(${JSON.stringify(url)}, 'later-step', pino({ level: 'silent' })).then(() => process.exit(3), () => {});`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      clearTimeout(killer);
      assert.equal(code, 0, 'the process ended by itself');
    } finally {
      Object.assign(RedisClock.prototype, { start, stop });
      admin.disconnect();
      await redis.stop();
    }
  });
});

describe('a stop while the worker starts', () => {
  test('after its heartbeat began: the start ends (WorkerStartStopped), its connections closed and its liveness key removed, not left to the exit', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    const stop = new AbortController();
    let asked = 0;
    // The heartbeat's first beat reads the executor's figures: the stop comes then, with the
    // connections, the clock, the Workers and the liveness key made, before the worker is ready.
    const executor: JobExecutor = {
      ...idleExecutor(),
      judgeCompileStats: () => {
        asked++;
        stop.abort();
        return undefined;
      },
    };
    try {
      await assert.rejects(startStandInWorker({ redis, prefix: 'stopped-start' }, executor, { stop: stop.signal }), (error: unknown) => error instanceof WorkerStartStopped);
      assert.ok(asked > 0, 'stopped once its heartbeat began');
      // Closed by the start itself: this process goes on, and nothing of the worker is left.
      await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'no connection of it left');
      assert.deepEqual(await admin.keys('stopped-start:*worker*'), [], 'its liveness key removed');
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  });

  test("between two steps (its first reading of Redis's clock): what the next steps would open is closed at once, and none is opened after", async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    const stop = new AbortController();
    const { sync } = RedisClock.prototype;
    let syncs = 0;
    // The stop comes as the start awaits its clock's first reading; the steps after it (the
    // BullMQ Workers' connection, the heartbeat, the notifier) are not reached.
    RedisClock.prototype.sync = function (this: RedisClock) {
      if (syncs++ === 0) stop.abort();
      return sync.apply(this);
    };
    const executor = idleExecutor();
    try {
      await assert.rejects(
        startStandInWorker({ redis, prefix: 'stopped-step' }, executor, { stop: stop.signal, logger: pino({ level: 'silent' }) }),
        (error: unknown) => error instanceof WorkerStartStopped,
      );
      assert.equal(syncs, 1);
      // Long enough for a step after the stop to have made a connection (a Worker's) and written.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'no connection of it left');
      // The notification queue's, a step before the stop, alone: no liveness key, no Worker's.
      assert.deepEqual((await admin.keys('stopped-step:*')).filter((key) => !key.startsWith('stopped-step:notifications:')), [], 'no key written after the stop');
    } finally {
      RedisClock.prototype.sync = sync;
      admin.disconnect();
      await redis.stop();
    }
  });

  test('before it began (its caller took a while to make the executor): the start ends at once (WorkerStartStopped), no connection made', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    const connections = async () => Number(/^total_connections_received:(\d+)/m.exec(await admin.info('stats'))?.[1]);
    try {
      const before = await connections();
      await assert.rejects(startStandInWorker({ redis, prefix: 'stopped-before' }, idleExecutor(), { stop: AbortSignal.abort() }), (error: unknown) => error instanceof WorkerStartStopped);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await connections(), before, 'no connection made');
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  });

  test('as its parts get ready (the last step): the start ends (WorkerStartStopped), none of them run and it never says it is ready', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    const stop = new AbortController();
    const { waitUntilReady, run } = Worker.prototype;
    let runs = 0;
    // The stop comes once a BullMQ Worker is ready, before the start goes on from its wait.
    Worker.prototype.waitUntilReady = async function (this: Worker) {
      const client = await waitUntilReady.apply(this);
      stop.abort();
      return client;
    };
    Worker.prototype.run = function (this: Worker) {
      runs++;
      return run.apply(this);
    };
    const { logger, lines } = collectingLogger('info');
    try {
      await assert.rejects(startStandInWorker({ redis, prefix: 'stopped-ready' }, idleExecutor(), { stop: stop.signal, logger }), (error: unknown) => error instanceof WorkerStartStopped);
      assert.ok(stop.signal.aborted);
      await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'no connection of it left');
      assert.equal(runs, 0, 'no Worker run');
      assert.deepEqual(lines.filter((line) => /"msg":"worker ready"/.test(line)), [], 'never said ready');
    } finally {
      Object.assign(Worker.prototype, { waitUntilReady, run });
      admin.disconnect();
      await redis.stop();
    }
  });

  test('while Redis is away: the start ends at the stop (within the bound on its closes), not when Redis comes', async () => {
    const stop = new AbortController();
    const executor = idleExecutor();
    const port = await freeLoopbackPort();
    const starting = startStandInWorker({ redis: { url: `redis://127.0.0.1:${port}` }, prefix: 'away' }, executor, { stop: stop.signal, logger: pino({ level: 'silent' }) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stoppedAt = Date.now();
    stop.abort();
    await assert.rejects(starting, (error: unknown) => error instanceof WorkerStartStopped);
    // Its notification queue, still starting, is waited for up to CLOSE_REDIS_AWAY_MS before its
    // close (startsSettled: a failed start emitted after the close would be an unhandled rejection).
    assert.ok(Date.now() - stoppedAt < CLOSE_REDIS_AWAY_MS + 2000, `ended ${Date.now() - stoppedAt} ms after the stop`);
  });
});

const workerSkip = workerStartSkip();
const REFUSED_DATABASE_LINE = 'cellblock: CELLBLOCK_REDIS_URL names database 99, which Redis refuses (ERR DB index is out of range)';
const REFUSED_LOGIN_LINE = /^cellblock: Redis refuses the login of CELLBLOCK_REDIS_URL \(WRONGPASS [^)]*\): check the URL's user and password$/;

/** Its stderr's lines, each `line` (a string: equal; a RegExp: matching), at least one. */
function assertOnly(stderr: string, line: string | RegExp): void {
  const lines = stderr.trim().split('\n');
  for (const text of lines) {
    if (typeof line === 'string') assert.equal(text, line, stderr);
    else assert.match(text, line, stderr);
  }
}

describe('the cellblock command', () => {
  test('api: a database Redis does not have, or a login it does not take, stops it in one line, status 78', async () => {
    const redis = await startRedis();
    try {
      const port = String(await freeLoopbackPortExcept([redis.port]));
      const database = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: `${redis.url}/99`, CELLBLOCK_PORT: port });
      assert.equal(database.code, 78, database.stderr);
      assertOnly(database.stderr, REFUSED_DATABASE_LINE);
      const login = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: `redis://someone:${PASSWORD}@127.0.0.1:${redis.port}`, CELLBLOCK_PORT: port });
      assert.equal(login.code, 78, login.stderr);
      assertOnly(login.stderr, REFUSED_LOGIN_LINE);
      assert.equal(await keyspace(redis.url), '');
    } finally {
      await redis.stop();
    }
  });

  test('api: a login refused once it has run (Redis restarted with a password) is an outage: 503 until Redis takes it again, no stop; also where the URL names a database (the NOAUTH then answers its SELECT)', async () => {
    for (const database of ['', '/1']) await loginRefusedOnceRun(database);
  });

  async function loginRefusedOnceRun(database: string): Promise<void> {
    const redis = await startRedis();
    const port = await freeLoopbackPortExcept([redis.port]);
    const api = await spawnCellblock(['api'], '"api listening"', { CELLBLOCK_REDIS_URL: `${redis.url}${database}`, CELLBLOCK_PORT: String(port) });
    const admin = new Redis(redis.url);
    try {
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await postJson(`${base}/v1/jobs`, hello)).status, 202);
      // A password set, the API's connections cut: each reconnects to a NOAUTH.
      await admin.config('SET', 'requirepass', PASSWORD);
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(api.child.exitCode, null, api.output());
      const refused = await postJson(`${base}/v1/jobs`, hello);
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.code, 'queue_unavailable');
      await admin.config('SET', 'requirepass', '');
      await until(async () => (await postJson(`${base}/v1/jobs`, hello)).status === 202, 10_000, 200, 'accepted again');
    } finally {
      admin.disconnect();
      if (api.child.exitCode === null && api.child.signalCode === null) {
        const exited = new Promise((resolve) => api.child.once('exit', resolve));
        api.child.kill('SIGTERM');
        await exited;
      }
      await redis.stop();
    }
  }

  test('worker: the same, one process or several under their supervisor (none restarted)', { skip: workerSkip }, async () => {
    await withRedisAndPoolDir(async (redis, poolDir) => {
      const env = { CELLBLOCK_POOL_STATE_DIR: poolDir, CELLBLOCK_WORKER_CONCURRENCY: '1' };
      for (const processes of ['1', '2']) {
        const database = await runCellblockToExit(['worker'], { ...env, CELLBLOCK_REDIS_URL: `${redis.url}/99`, CELLBLOCK_WORKER_PROCESSES: processes });
        assert.equal(database.code, 78, database.stderr);
        assertOnly(database.stderr, REFUSED_DATABASE_LINE);
      }
      const login = await runCellblockToExit(['worker'], { ...env, CELLBLOCK_REDIS_URL: `redis://someone:${PASSWORD}@127.0.0.1:${redis.port}`, CELLBLOCK_WORKER_PROCESSES: '1' });
      assert.equal(login.code, 78, login.stderr);
      assertOnly(login.stderr, REFUSED_LOGIN_LINE);
      assert.equal(await keyspace(redis.url), '');
    });
  });

  test("worker: a worker process its supervisor starts again once the service has run takes a login Redis refuses (the password changed meanwhile) as an outage: it waits, as its siblings would, and starts once Redis takes the login; nothing stops", { skip: workerSkip }, async () => {
    const env = { CELLBLOCK_WORKER_PROCESSES: '2' };
    await withServiceWhosePasswordChanges(['worker'], '"worker ready"', env, async ({ said, admin }) => {
      await until(() => said('worker ready').length === 2, 60_000, 100, 'both worker processes ready');
      const [killed, sibling] = said('worker process started').map((line) => Number(line.childPid));
      await admin.config('SET', 'requirepass', PASSWORD);
      process.kill(killed!, 'SIGKILL');
      await until(() => said('worker process started').length === 3, 10_000, 50, 'the dead worker process started again');
      const restarted = said('worker process started')[2]!;
      assert.equal(restarted.serviceRan, true);
      return { workerPid: Number(restarted.childPid), siblingPid: sibling! };
    });
  });

  test('start: its worker process, still starting when the API has been ready, takes a login Redis then refuses as an outage too: it waits, and starts once Redis takes the login; nothing stops', { skip: workerSkip }, async () => {
    const env = { CELLBLOCK_WORKER_PROCESSES: '1' };
    await withServiceWhosePasswordChanges(['start'], '"api listening"', env, async ({ said, admin }) => {
      // The worker process connects once its pool is made, seconds after the API listens.
      await admin.config('SET', 'requirepass', PASSWORD);
      const worker = said('worker process started')[0]!;
      assert.equal(worker.serviceRan, false);
      return { workerPid: Number(worker.childPid) };
    });
  });

  test("worker: a command Redis refuses at a later step of the start (BullMQ's INFO, to an ACL user without it) ends it with status 1, its pool released (nothing left mounted) and no connection left", { skip: workerSkip }, async () => {
    await withRedisAndPoolDir(async (redis, poolDir) => {
      const admin = new Redis(redis.url);
      try {
        const url = await userWithoutInfo(admin, redis.port);
        const env = { CELLBLOCK_REDIS_URL: url, CELLBLOCK_POOL_STATE_DIR: poolDir, CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_WORKER_CONCURRENCY: '1' };
        const worker = await runCellblockToExit(['worker'], env);
        assert.equal(worker.code, 1, worker.stderr);
        assert.match(worker.stderr, /NOPERM .*'info'/);
        assert.deepEqual(mountPointsUnder(poolDir), [], 'its pool released');
        await until(async () => (await otherClients(admin)).length === 0, 5000, 20, 'no connection of it left');
      } finally {
        admin.disconnect();
        await reclaimPoolState(poolDir);
      }
    });
  });

  test('start with CELLBLOCK_REDIS_URL naming a database Redis does not have: it and its worker process stop, status 78', { skip: workerSkip }, async () => {
    await withRedisAndPoolDir(async (redis, poolDir) => {
      const started = await runCellblockToExit(['start'], {
        CELLBLOCK_REDIS_URL: `${redis.url}/99`,
        CELLBLOCK_PORT: String(await freeLoopbackPortExcept([redis.port])),
        CELLBLOCK_POOL_STATE_DIR: poolDir,
        CELLBLOCK_WORKER_PROCESSES: '1',
        CELLBLOCK_WORKER_CONCURRENCY: '1',
      });
      assert.equal(started.code, 78, started.stderr);
      assertOnly(started.stderr, REFUSED_DATABASE_LINE);
      assert.equal(await keyspace(redis.url), '');
    });
  });
});

interface PasswordChangeScene {
  /** The command's log lines with message `msg`, parsed. */
  said(msg: string): Record<string, unknown>[];
  /** A connection to its Redis, logged in before the password is set. */
  admin: Redis;
}

/**
 * Runs `cellblock <args>` (its Redis private, a worker process, concurrency 1) until it prints
 * `readyText`; `change` then sets a password on its Redis and names the worker process that meets
 * it as it starts (and a sibling to leave running). That worker process must wait it out, as an
 * outage (its warning says NOAUTH; nothing exits), and be ready once the password is gone; the
 * command then stops with status 0 at SIGTERM.
 */
async function withServiceWhosePasswordChanges(
  args: string[],
  readyText: string,
  env: Record<string, string>,
  change: (scene: PasswordChangeScene) => Promise<{ workerPid: number; siblingPid?: number }>,
): Promise<void> {
  await withRedisAndPoolDir(async (redis, poolDir) => {
    const port = String(await freeLoopbackPortExcept([redis.port]));
    const service = await spawnCellblock(args, readyText, {
      CELLBLOCK_REDIS_URL: redis.url,
      CELLBLOCK_PORT: port,
      CELLBLOCK_POOL_STATE_DIR: poolDir,
      CELLBLOCK_WORKER_CONCURRENCY: '1',
      ...env,
    });
    const exited = new Promise<number | null>((resolve) => service.child.once('exit', resolve));
    const admin = new Redis(redis.url);
    const said = (msg: string) => logLines(service.output()).filter((line) => line.msg === msg);
    const tail = () => service.output().slice(-3000);
    try {
      const { workerPid, siblingPid } = await change({ said, admin });
      const waiting = () => said('redis not reachable yet; the worker starts once it is').filter((line) => line.pid === workerPid);
      await until(() => waiting().length > 0 || service.child.exitCode !== null, 60_000, 100, 'the worker process met the refused login');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(service.child.exitCode, null, tail());
      assert.match(String(waiting()[0]?.reason), /^NOAUTH/);
      for (const pid of [workerPid, siblingPid ?? workerPid]) assert.ok(processExists(pid), `worker process ${pid} runs`);
      assert.ok(!said('worker ready').some((line) => line.pid === workerPid), tail());
      await admin.config('SET', 'requirepass', '');
      await until(() => said('worker ready').some((line) => line.pid === workerPid), 30_000, 100, 'the worker process ready');
      service.child.kill('SIGTERM');
      assert.equal(await exited, 0, tail());
    } finally {
      await admin.config('SET', 'requirepass', '').catch(() => {});
      admin.disconnect();
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill('SIGTERM');
        await exited;
      }
      // A killed worker process's pool (its mounts), where no worker started after it reclaimed it.
      await reclaimPoolState(poolDir);
    }
  });
}

/** A URL whose user may run any command but INFO: its logins and a worker's SUBSCRIBE pass
 * (ioredis skips its ready check on NOPERM), and BullMQ's version check, once its connections are
 * ready, is refused. */
async function userWithoutInfo(admin: Redis, port: number): Promise<string> {
  await admin.acl('SETUSER', 'noinfo', 'on', `>${PASSWORD}`, '~*', '&*', '+@all', '-info');
  return `redis://noinfo:${PASSWORD}@127.0.0.1:${port}`;
}

/** A command's pino lines, parsed (those it has finished writing). */
function logLines(output: string): Record<string, unknown>[] {
  return output
    .slice(0, output.lastIndexOf('\n'))
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A private Redis and a scratch pool state dir for a worker's command, both removed after `body`. */
async function withRedisAndPoolDir(body: (redis: Awaited<ReturnType<typeof startRedis>>, poolDir: string) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  const scratch = await scratchDir();
  try {
    await body(redis, scratch.dir);
  } finally {
    await scratch.remove();
    await redis.stop();
  }
}
