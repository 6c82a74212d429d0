// A Redis that is reachable but unfit to hold the queue: one that evicts keys when full (an
// eviction policy other than noeviction, at start or set while the service runs), and one that
// refuses writes (full: used memory over maxmemory under noeviction, OOM; a failed write to disk,
// MISCONF). Each is refused at start, or said for what it is while it runs (/readyz, the
// submissions' 503, the logs), never as an unreachable Redis. Real redis-server, each test its own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import { freeLoopbackPortExcept } from '../../src/queue/redis-server.js';
import { readMaxmemoryPolicy } from '../../src/queue/redis-health.js';
import type { JobExecutor } from '../../src/queue/worker.js';
import { start as startRedis } from '../helpers/redis.js';
import { parsedLogger } from '../helpers/log-lines.js';
import { okResult } from '../helpers/stand-in-result.js';
import { until } from '../helpers/until.js';
import { cellblockSource, runCellblockToExit, scratchDir, startService, startStandInWorker, testRuntime, workerStartSkip, type ServiceHarness } from './fixtures.js';

const hello = { language: 'python', source: 'print("hi")' };

const okExecutor: JobExecutor = {
  execute: async (): Promise<ExecuteResult> => okResult(Buffer.alloc(0)),
  close: async () => {},
};

const post = (service: ServiceHarness, url: string, payload: object) => service.app.inject({ method: 'POST', url, payload });
const readyz = (service: ServiceHarness) => service.app.inject({ url: '/readyz' });

/** A 503 with Retry-After, in /v1's shape with `code`, or a compat front's (`error`, `message`) saying `words`. */
function assertRefused(response: LightMyRequestResponse, code: string, words: RegExp): void {
  assert.equal(response.statusCode, 503, response.body);
  assert.ok(Number(response.headers['retry-after']) > 0, `Retry-After: ${response.body}`);
  const body = response.json();
  if (body.error?.code !== undefined) assert.equal(body.error.code, code, response.body);
  assert.match(body.error?.message ?? body.error ?? body.message, words);
}

/** Every submission route, refused with `code` (/v1) and its words (all). */
async function assertSubmissionsRefused(service: ServiceHarness, code: string, words: RegExp): Promise<void> {
  assertRefused(await post(service, '/v1/jobs', hello), code, words);
  assertRefused(await post(service, '/v1/jobs/batch', { jobs: [hello, hello] }), code, words);
  assertRefused(await post(service, '/submissions', { source_code: 'print(1)', language_id: 71 }), code, words);
  assertRefused(await post(service, '/api/v2/execute', { language: 'python', version: testRuntime.version, files: [{ content: 'print(1)' }] }), code, words);
}

describe('Redis refusing writes while the service runs', () => {
  test('full (maxmemory under noeviction): /readyz says full with its reason, the workers still counted; submissions 503 redis_full; all as before once it has room', async () => {
    const service = await startService();
    const worker = await startStandInWorker(service, okExecutor, { heartbeatTtlMs: 1500 });
    const admin = new Redis(service.redis.url);
    try {
      await until(async () => (await readyz(service)).statusCode === 200, 5000, 50, 'ready');
      await admin.config('SET', 'maxmemory', '1');
      const full = await readyz(service);
      assert.equal(full.statusCode, 503, full.body);
      assert.ok(Number(full.headers['retry-after']) > 0);
      const { status, redis, reason, workers } = full.json();
      assert.deepEqual({ status, redis, workers }, { status: 'unavailable', redis: 'full', workers: 1 });
      assert.match(reason, /^OOM .*\(used \S+ of maxmemory \S+\)$/);
      // Past the liveness key's TTL: the worker, refused its heartbeat, keeps its key alive.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal((await readyz(service)).json().workers, 1);
      assert.match((await service.app.inject({ url: '/metrics' })).body, /^cellblock_workers_alive 1$/m);
      await assertSubmissionsRefused(service, 'redis_full', /full \(its used memory is over its maxmemory\)/);
      await admin.config('SET', 'maxmemory', '0');
      assert.equal((await readyz(service)).statusCode, 200);
      assert.equal((await post(service, '/v1/jobs', hello)).statusCode, 202);
    } finally {
      admin.disconnect();
      await worker.close();
      await service.close();
    }
  });

  test('a failed write to disk (MISCONF: an RDB save that fails, stop-writes-on-bgsave-error): /readyz says refusing_writes, not unreachable; submissions 503 redis_refusing_writes', async () => {
    const service = await startService();
    const admin = new Redis(service.redis.url);
    try {
      // The save's rename onto its file fails where a directory has the file's name.
      await mkdir(path.join(service.redis.dataDir, 'dump.rdb'));
      await admin.config('SET', 'save', '3600 1');
      await admin.bgsave();
      await until(async () => /rdb_last_bgsave_status:err/.test(await admin.info('persistence')), 10_000, 50, 'the save failed');
      const refusing = await readyz(service);
      assert.equal(refusing.statusCode, 503, refusing.body);
      const { reason, ...rest } = refusing.json() as { reason: string };
      assert.deepEqual(rest, { status: 'unavailable', redis: 'refusing_writes', workers: 0 });
      assert.match(reason, /^MISCONF /);
      await assertSubmissionsRefused(service, 'redis_refusing_writes', /refuses writes: its last write to disk failed/);
      await admin.config('SET', 'save', '');
      assert.equal((await post(service, '/v1/jobs', hello)).statusCode, 202);
    } finally {
      await admin.config('SET', 'save', '').catch(() => {});
      admin.disconnect();
      await service.close();
    }
  });
});

/** Runs each job until the test releases it (by its stdin), then ends it ok with `outputBytes`
 * of stdout: above 16 KiB, a result kept apart (result-store.ts), written by the worker itself. */
function gatedExecutor(outputBytes: number): { executor: JobExecutor; started: string[]; release(name: string): void } {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const executor: JobExecutor = {
    execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
      const name = Buffer.from(request.stdin ?? '').toString();
      // A run taken again (its lock lost) waits for the same release; one stopped ends (a close).
      await new Promise<void>((resolve) => {
        gates.set(name, resolve);
        request.signal?.addEventListener('abort', () => resolve(), { once: true });
        started.push(name);
      });
      return okResult(Buffer.alloc(outputBytes, 'x'));
    },
    close: async () => {},
  };
  return { executor, started, release: (name) => gates.get(name)?.() };
}

describe("a finished job's result while Redis is full", () => {
  const LOCK_DURATION_MS = 2000;
  const RETRY_MS = 6000;

  test('kept by the worker, its lock kept, and stored once Redis has room; refused past the bound: the job fails result_not_stored, logged under its id, nothing of its result left in Redis', async () => {
    const service = await startService();
    const { executor, started, release } = gatedExecutor(100_000);
    const workerLog = parsedLogger();
    const worker = await startStandInWorker(service, executor, { logger: workerLog.logger, lockDurationMs: LOCK_DURATION_MS, resultStoreFullRetryMs: RETRY_MS });
    const admin = new Redis(service.redis.url);
    const view = async (id: string) => (await service.app.inject({ url: `/v1/jobs/${id}` })).json();
    const submitRunning = async (name: string): Promise<string> => {
      const { id } = (await post(service, '/v1/jobs', { ...hello, stdin: name })).json();
      await until(() => started.includes(name), 5000, 10, `${name} running`);
      return id;
    };
    try {
      // Full for longer than the job's lock lasts, less than the bound: stored once Redis has room.
      const stored = await submitRunning('stored');
      await admin.config('SET', 'maxmemory', '1');
      release('stored');
      await new Promise((resolve) => setTimeout(resolve, LOCK_DURATION_MS + 1500));
      assert.equal((await view(stored)).status, 'running');
      await admin.config('SET', 'maxmemory', '0');
      await until(async () => (await view(stored)).status === 'done', 10_000, 50, 'stored');
      const done = await view(stored);
      assert.equal(done.attempts, 1);
      assert.equal(done.result.stdout.length, 100_000);

      // Full past the bound: failed, saying why.
      const refused = await submitRunning('refused');
      await admin.config('SET', 'maxmemory', '1');
      release('refused');
      await until(async () => (await view(refused)).status !== 'running', RETRY_MS + 5000, 100, 'refused ended');
      const failed = await view(refused);
      assert.equal(failed.status, 'failed', JSON.stringify(failed));
      assert.equal(failed.failure.code, 'result_not_stored');
      assert.match(failed.failure.message, /^result not stored: the job ran \(verdict ok\), but Redis is full \(its used memory is over its maxmemory\) and refused its result for [56] s; submit it again once Redis has room$/);
      assert.deepEqual(await admin.keys(`${service.prefix}:cb:result:${refused}:*`), []);
      const logged = workerLog.lines().filter((line) => line.jobId === refused && line.level === 50);
      assert.equal(logged.length, 1, JSON.stringify(workerLog.lines()));
      assert.match(logged[0]!.msg, /result is not stored: Redis is full/);
      await admin.config('SET', 'maxmemory', '0');

      // Room for the result's first write, not for its output's: each try's part is deleted.
      const partial = await submitRunning('partial');
      const usedBytes = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1]);
      await admin.config('SET', 'maxmemory', String(usedBytes + 40_000));
      release('partial');
      await until(async () => (await view(partial)).status !== 'running', RETRY_MS + 5000, 100, 'partial ended');
      assert.equal((await view(partial)).failure?.code, 'result_not_stored');
      assert.deepEqual(await admin.keys(`${service.prefix}:cb:result:${partial}:*`), []);
    } finally {
      await admin.config('SET', 'maxmemory', '0').catch(() => {});
      admin.disconnect();
      await worker.close();
      await service.close();
    }
  });
});

describe('an evicting Redis', () => {
  test('its policy is read with CONFIG GET, or, where CONFIG is refused (managed Redis), from INFO memory', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await admin.call('ACL', 'SETUSER', 'noconfig', 'on', '>pw', '~*', '&*', '+@all', '-config');
      const limited = new Redis(`redis://noconfig:pw@127.0.0.1:${redis.port}`);
      try {
        await assert.rejects(limited.config('GET', 'maxmemory-policy'), /NOPERM/);
        assert.equal(await readMaxmemoryPolicy(limited), 'allkeys-lru');
        assert.equal(await readMaxmemoryPolicy(admin), 'allkeys-lru');
      } finally {
        limited.disconnect();
      }
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  });

  test('set while the service runs: /readyz 503 evicting with its reason, and the API and the workers each log it once, as an error', async () => {
    const { logger, lines } = parsedLogger();
    const service = await startService({ logger });
    const workerLog = parsedLogger();
    const worker = await startStandInWorker(service, okExecutor, { logger: workerLog.logger, heartbeatTtlMs: 1500 });
    const admin = new Redis(service.redis.url);
    const evictionErrors = (log: typeof lines) => log().filter((line) => line.level === 50 && /maxmemory-policy is allkeys-lru/.test(line.msg));
    try {
      await until(async () => (await readyz(service)).statusCode === 200, 5000, 50, 'ready');
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      for (let i = 0; i < 2; i++) {
        const evicting = await readyz(service);
        assert.equal(evicting.statusCode, 503, evicting.body);
        assert.equal(evicting.json().redis, 'evicting');
        assert.match(evicting.json().reason, /^Redis's maxmemory-policy is allkeys-lru, under which a full Redis evicts keys, the queue's jobs among them: set it to noeviction/);
      }
      assert.equal(evictionErrors(lines).length, 1, JSON.stringify(lines()));
      await until(() => evictionErrors(workerLog.lines).length === 1, 5000, 50, "the worker's error");
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      assert.equal((await readyz(service)).statusCode, 200);
    } finally {
      admin.disconnect();
      await worker.close();
      await service.close();
    }
  });

  const EVICTING_LINE = "cellblock: Redis's maxmemory-policy is allkeys-lru, under which a full Redis evicts keys, the queue's jobs among them: set it to noeviction (CONFIG SET maxmemory-policy noeviction, and in its configuration), as BullMQ requires";

  test("api: refused at start in one line, status 78, nothing listening; BullMQ's own warning once at most, in the JSON log", async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const port = await freeLoopbackPortExcept([redis.port]);
      // Killed if it runs on (it would listen, as if Redis were fit): code null.
      const { code, stdout, stderr } = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: redis.url, CELLBLOCK_PORT: String(port), CELLBLOCK_LOG_LEVEL: 'info' });
      assert.equal(code, 78, stderr);
      assert.equal(stderr, `${EVICTING_LINE}\n`);
      const logged = stdout.trim().split('\n').map((line) => JSON.parse(line));
      assert.ok(!logged.some((line) => line.msg === 'api listening'), stdout);
      // BullMQ warns as each of its connections is ready, and the process may stop on the refusal
      // before any has: once at most, as JSON (the routing itself: the test below).
      const warnings = logged.filter((line) => line.bullmq !== undefined);
      assert.ok(warnings.length <= 1, stdout);
      for (const warning of warnings) assert.equal(warning.bullmq, 'IMPORTANT! Eviction policy is allkeys-lru. It should be "noeviction"');
      // Where CONFIG is refused, INFO says it.
      await admin.call('ACL', 'SETUSER', 'noconfig', 'on', '>pw', '~*', '&*', '+@all', '-config');
      const limited = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: `redis://noconfig:pw@127.0.0.1:${redis.port}`, CELLBLOCK_PORT: String(port) });
      assert.equal(limited.code, 78, limited.stderr);
      assert.equal(limited.stderr, `${EVICTING_LINE}\n`);
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  });

  test("BullMQ's console warnings are one JSON log line each, once per process; any other console.warn is left as it is", async () => {
    const processControl = path.join(path.dirname(cellblockSource), 'process-control.ts');
    const warning = 'IMPORTANT! Eviction policy is allkeys-lru. It should be "noeviction"';
    const script = `const { createLogger } = await import(${JSON.stringify(processControl)});
createLogger('info', 'api');
for (const text of [${JSON.stringify(warning)}, ${JSON.stringify(warning)}, 'another warning']) console.warn(text);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    assert.equal(await new Promise((resolve) => child.once('exit', resolve)), 0, stderr);
    const logged = stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(
      logged.map(({ level, bullmq, msg }) => ({ level, bullmq, msg })),
      [{ level: 40, bullmq: warning, msg: 'BullMQ warns of the Redis it uses' }],
    );
    assert.equal(stderr, 'another warning\n');
  });

  const workerSkip = workerStartSkip();

  test('worker: refused at start in one line, status 78, one process or several under their supervisor (none restarted)', { skip: workerSkip }, async () => {
    const redis = await startRedis();
    const scratch = await scratchDir();
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
      for (const processes of ['1', '2']) {
        const worker = await runCellblockToExit(['worker'], {
          CELLBLOCK_REDIS_URL: redis.url,
          CELLBLOCK_POOL_STATE_DIR: scratch.dir,
          CELLBLOCK_WORKER_CONCURRENCY: '1',
          CELLBLOCK_WORKER_PROCESSES: processes,
        });
        assert.equal(worker.code, 78, worker.stderr);
        for (const line of worker.stderr.trim().split('\n')) assert.equal(line, EVICTING_LINE.replaceAll('allkeys-lru', 'volatile-lru'));
      }
    } finally {
      admin.disconnect();
      await scratch.remove();
      await redis.stop();
    }
  });
});
