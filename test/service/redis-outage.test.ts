// The API while Redis is away: stopped, frozen, or restarting under a waiting request. Every
// route must answer (a 503 with Retry-After where it needs Redis, its normal answer where it
// does not), none with a 500, none hanging. The app is built as `cellblock api` builds it, with
// the rate limit's counters in Redis too. Real Redis, no workers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import type { JobRequest } from '../../src/jobs/model.js';
import { createRedis, PRODUCER_COMMAND_TIMEOUT_MS, warnUntilReady } from '../../src/queue/connection.js';
import { QueueUnavailableError } from '../../src/queue/errors.js';
import { freeLoopbackPort } from '../../src/queue/redis-server.js';
import type { JobExecutor } from '../../src/queue/worker.js';
import { startCuttableLink } from '../helpers/cuttable-link.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { start } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { startIdleWorker, startService, startStandInWorker, testRuntime, type ServiceHarness } from './fixtures.js';

const hello = { language: 'python', source: 'print("hi")' };

/** A valid body for each POST route, so that the request gets as far as Redis. */
const BODIES: Record<string, unknown> = {
  '/v1/jobs': hello,
  '/v1/jobs/batch': { jobs: [hello, hello] },
  '/api/v2/execute': { language: 'python', version: testRuntime.version, files: [{ content: 'print(1)' }] },
  '/api/v2/piston/execute': { language: 'python', version: testRuntime.version, files: [{ content: 'print(1)' }] },
  '/submissions': { source_code: 'print(1)', language_id: 71 },
  '/submissions/batch': { submissions: [{ source_code: 'print(1)', language_id: 71 }] },
};

/** Values for path parameters: well-formed ids of jobs that do not exist. */
const PARAMS: Record<string, string> = { id: 'AbCdEfGhIjKlMnOpQrStU', token: 'AbCdEfGhIjKlMnOpQrStU' };
const LANGUAGE_ID_PARAM = '71';

interface RouteCall {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  body?: unknown;
}

/** Every route of the OpenAPI document (ours and the compat fronts'), ready to call. */
function everyRoute(service: ServiceHarness): RouteCall[] {
  const spec = service.app.swagger() as { paths: Record<string, Record<string, unknown>> };
  const calls: RouteCall[] = [];
  for (const [template, operations] of Object.entries(spec.paths)) {
    const url = template.replace(/\{(\w+)\}/g, (_, name: string) => (template.startsWith('/languages') ? LANGUAGE_ID_PARAM : PARAMS[name] ?? 'x'));
    for (const method of Object.keys(operations)) {
      const upper = method.toUpperCase() as RouteCall['method'];
      calls.push(upper === 'POST' ? { method: upper, url, body: BODIES[template] ?? {} } : { method: upper, url });
    }
  }
  return calls;
}

function call(service: ServiceHarness, route: RouteCall, query = ''): Promise<LightMyRequestResponse> {
  return service.app.inject({
    method: route.method,
    url: `${route.url}${query}`,
    ...(route.body === undefined ? {} : { payload: route.body as object }),
  });
}

function assertNo500(route: RouteCall, response: LightMyRequestResponse): void {
  const what = `${route.method} ${route.url} answered ${response.statusCode}: ${response.body.slice(0, 300)}`;
  assert.ok(response.statusCode !== 500 && response.statusCode < 502 || response.statusCode === 503, what);
  if (response.statusCode === 503) assert.ok(Number(response.headers['retry-after']) > 0, `${what} (no Retry-After)`);
}

/** What our own routes must answer while Redis is away, by "METHOD path". */
const OWN_ROUTES_DOWN: Record<string, number> = {
  'GET /healthz': 200,
  'GET /readyz': 503,
  'GET /metrics': 200,
  'GET /v1/runtimes': 200,
  'POST /v1/jobs': 503,
  'POST /v1/jobs/batch': 503,
  [`GET /v1/jobs/${PARAMS.id}`]: 503,
  [`DELETE /v1/jobs/${PARAMS.id}`]: 503,
  'POST /v1/live/tickets': 503,
};

function assertOwnRoute(route: RouteCall, response: LightMyRequestResponse): void {
  const expected = OWN_ROUTES_DOWN[`${route.method} ${route.url}`];
  if (expected === undefined) return;
  assert.equal(response.statusCode, expected, `${route.method} ${route.url}: ${response.body.slice(0, 300)}`);
  if (route.url.startsWith('/v1/') && expected === 503) assert.equal(response.json().error.code, 'queue_unavailable');
}

/** Longest any request may take with Redis frozen: our 1 s guard, or the connection's command timeout. */
const FROZEN_DEADLINE_MS = PRODUCER_COMMAND_TIMEOUT_MS + 5000;

describe('Redis away', () => {
  test('stopped: every route answers at once, 503 + Retry-After where it needs Redis, never 500', async () => {
    const service = await startService({ rateLimitInRedis: true });
    try {
      const routes = everyRoute(service);
      assert.ok(routes.length >= 8, `the OpenAPI document lists the routes (${routes.length})`);
      await service.redis.pause();
      for (const route of routes) {
        const started = Date.now();
        const response = await call(service, route);
        assertNo500(route, response);
        assertOwnRoute(route, response);
        assert.ok(Date.now() - started < 3000, `${route.method} ${route.url} must not wait for Redis`);
      }
      const waited = await call(service, { method: 'POST', url: '/v1/jobs', body: hello }, '?wait=true');
      assert.equal(waited.statusCode, 503, 'not accepted: nothing to wait for');
      assert.match((await call(service, { method: 'GET', url: '/metrics' })).body, /^cellblock_redis_up 0$/m);
    } finally {
      await service.redis.resume();
      await service.close();
    }
  });

  test('refusing writes (out of memory under maxmemory, a replica after a failover): 503 + Retry-After, never 500', async () => {
    const service = await startService({ rateLimitInRedis: true });
    const admin = createRedis(service.redis.url, 'blocking', 'cellblock-test-admin');
    try {
      // Out of memory is said as such (test/service/redis-full.test.ts); a replica is an outage
      // that the reconnect to the new primary ends.
      const refusals: [string, string[], string[], string][] = [
        ['out of memory', ['CONFIG', 'SET', 'maxmemory', '1'], ['CONFIG', 'SET', 'maxmemory', '0'], 'redis_full'],
        ['a replica', ['REPLICAOF', '127.0.0.1', '1'], ['REPLICAOF', 'NO', 'ONE'], 'queue_unavailable'],
      ];
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      for (const [what, refuse, restore, code] of refusals) {
        await admin.call(refuse[0]!, ...refuse.slice(1));
        try {
          const submitted = await call(service, { method: 'POST', url: '/v1/jobs', body: hello });
          assert.equal(submitted.statusCode, 503, `${what}: ${submitted.body.slice(0, 300)}`);
          assert.equal(submitted.json().error.code, code);
          // (/readyz is 503 here for want of a worker.)
          for (const route of everyRoute(service).filter((route) => route.url !== '/readyz')) assertNo500(route, await call(service, route));
        } finally {
          await admin.call(restore[0]!, ...restore.slice(1));
        }
      }
      // Writes taken again: a job is accepted (once the connection READONLY sent away is back).
      let accepted: LightMyRequestResponse | undefined;
      await until(async () => (accepted = await call(service, { method: 'POST', url: '/v1/jobs', body: hello })).statusCode === 202, 10_000, 50, 'a job accepted again');
    } finally {
      admin.disconnect();
      await service.close();
    }
  });

  test('stopped, with API keys: a live ticket is neither issued nor taken (503), on each front as it says errors', async () => {
    const key = 'page-server-key-0';
    const service = await startService({ config: { apiKeys: [{ key, requestsPerWindow: 100 }] } });
    try {
      await service.redis.pause();
      const issued = await service.app.inject({ method: 'POST', url: '/v1/live/tickets', headers: { 'x-api-key': key } });
      assert.equal(issued.statusCode, 503, issued.body);
      assert.equal(issued.json().error.code, 'queue_unavailable');
      const ticket = 'A'.repeat(43);
      const live = await service.app.inject({ url: `/v1/live?ticket=${ticket}` });
      assert.equal(live.statusCode, 503, live.body);
      assert.equal(live.json().error.code, 'queue_unavailable');
      assert.ok(Number(live.headers['retry-after']) > 0);
      const piston = await service.app.inject({ url: `/api/v2/connect?ticket=${ticket}` });
      assert.equal(piston.statusCode, 503, piston.body);
      assert.equal(typeof piston.json().message, 'string');
    } finally {
      await service.redis.resume();
      await service.close();
    }
  });

  test('frozen (connections open, no answers): requests that need Redis end in 503 after the timeout, the others answer', async () => {
    const service = await startService({ rateLimitInRedis: true, redisTimeoutMs: 1000 });
    const admin = createRedis(service.redis.url, 'blocking', 'cellblock-test-admin');
    try {
      const routes = everyRoute(service);
      // CLIENT PAUSE ... ALL: Redis keeps every connection but answers nothing until the pause
      // ends by itself (so that even a killed test leaves no frozen server behind).
      await admin.call('CLIENT', 'PAUSE', String(FROZEN_DEADLINE_MS + 2000), 'ALL');
      const started = Date.now();
      // All at once: each may wait out a timeout (ours, or the connection's command timeout).
      const pending = new Set(routes.map((route) => `${route.method} ${route.url}`));
      const answers = Promise.all(
        routes.map(async (route) => {
          const response = await call(service, route);
          pending.delete(`${route.method} ${route.url}`);
          return { route, response };
        }),
      );
      // A hang fails here (and Redis is thawed below) rather than holding the test forever.
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${FROZEN_DEADLINE_MS} ms: ${[...pending].join(', ')}`)), FROZEN_DEADLINE_MS);
      });
      try {
        for (const { route, response } of await Promise.race([answers, hang])) {
          assertNo500(route, response);
          assertOwnRoute(route, response);
        }
      } finally {
        clearTimeout(timer);
      }
      assert.ok(Date.now() - started < FROZEN_DEADLINE_MS);
    } finally {
      admin.disconnect();
      await service.close();
    }
  });

  test("frozen beyond the connection's command timeout: its timeout is a 503 too", async () => {
    // Our guard longer than ioredis's command timeout: the command's own "Command timed out"
    // ends the first request, and a later one that shares its queue-depth read gets the same.
    const service = await startService({ redisTimeoutMs: PRODUCER_COMMAND_TIMEOUT_MS + 3000 });
    const admin = createRedis(service.redis.url, 'blocking', 'cellblock-test-admin');
    try {
      await admin.call('CLIENT', 'PAUSE', String(PRODUCER_COMMAND_TIMEOUT_MS + 4000), 'ALL');
      const first = call(service, { method: 'POST', url: '/v1/jobs', body: hello });
      await new Promise((resolve) => setTimeout(resolve, PRODUCER_COMMAND_TIMEOUT_MS / 2));
      const second = call(service, { method: 'POST', url: '/v1/jobs', body: hello });
      for (const response of await Promise.all([first, second])) {
        assert.equal(response.statusCode, 503, response.body);
        assert.equal(JSON.parse(response.body).error.code, 'queue_unavailable');
      }
    } finally {
      admin.disconnect();
      await service.close();
    }
  });

  test('the compat fronts waiting through an outage: Judge0 answers the token, Piston names the job, neither a bare 503', async () => {
    const service = await startService({ config: { maxWaitMs: 1500 } });
    try {
      const judge0 = call(service, { method: 'POST', url: '/submissions', body: BODIES['/submissions'] }, '?wait=true');
      const piston = call(service, { method: 'POST', url: '/api/v2/execute', body: BODIES['/api/v2/execute'] });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await service.redis.pause();
      const [judge0Answer, pistonAnswer] = await Promise.all([judge0, piston]);
      assert.equal(judge0Answer.statusCode, 201, judge0Answer.body);
      assert.match(judge0Answer.json().token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(pistonAnswer.statusCode, 503, pistonAnswer.body);
      assert.match(pistonAnswer.json().message, /^job [\w-]{21} was accepted, but its result cannot be read now .*GET \/v1\/jobs\/[\w-]{21} reads it later$/);
    } finally {
      await service.redis.resume();
      await service.close();
    }
  });

  test('?wait=true across a Redis restart: the waiting request keeps the job id, the job survives', async () => {
    const service = await startService();
    try {
      // Redis back within the wait: the wait goes on and ends at its timeout with the job's view.
      const restarted = call(service, { method: 'POST', url: '/v1/jobs', body: hello }, '?wait=true&timeoutMs=3000');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await service.redis.pause();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await service.redis.resume();
      const first = await restarted;
      assert.equal(first.statusCode, 202, first.body);
      assert.equal(first.json().status, 'queued');

      // Redis away until the wait ends: 202 with the id (the job was accepted), not a 503.
      const stranded = call(service, { method: 'POST', url: '/v1/jobs', body: hello }, '?wait=true&timeoutMs=1500');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await service.redis.pause();
      const second = await stranded;
      assert.equal(second.statusCode, 202, second.body);
      assert.equal(second.json().status, 'queued');
      assert.match(second.json().id, /^[\w-]{21}$/);
      await service.redis.resume();

      for (const id of [first.json().id, second.json().id]) {
        let view: LightMyRequestResponse | undefined;
        for (let i = 0; i < 50 && view?.statusCode !== 200; i++) {
          if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
          view = await call(service, { method: 'GET', url: `/v1/jobs/${id}` });
        }
        assert.equal(view?.statusCode, 200, view?.body);
        assert.equal(view!.json().status, 'queued', 'accepted before the outage, still there after it');
      }
    } finally {
      await service.close();
    }
  });
});

test('a worker started while Redis is down says so once, and starts once it is back', async () => {
  const redis = await start();
  await redis.pause();
  const { logger, lines } = collectingLogger('warn');
  const starting = startIdleWorker(redis.url, 'outage', logger);
  try {
    const warnings = () => lines.filter((line) => line.includes('redis not reachable yet'));
    await until(() => warnings().length > 0, 5000, 10, 'the warning');
    // ioredis tries again every 0.1-2 s: several failures meanwhile, each silent.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(warnings().length, 1, lines.join(''));
    assert.equal(JSON.parse(warnings()[0]!).level, 40);
    await redis.resume();
    const worker = await starting;
    await worker.close();
    assert.equal(warnings().length, 1, 'said once');
  } finally {
    await redis.resume().catch(() => {});
    await starting.then((worker) => worker.close()).catch(() => {});
    await redis.stop();
  }
});

// The API's and a worker's start say it so (warnUntilReady), after UNREACHABLE_REASON_WAIT_MS.
test('a Redis that takes the connection and never answers is said not reachable once the wait passes, with no answer as the reason; not after the connection ended', async () => {
  // A link cut before any connection (to a port nothing listens on, never reached): each is
  // taken and never answered, as by a frozen Redis; no attempt fails.
  const server = await startCuttableLink(await freeLoopbackPort());
  server.cut();
  const { logger, lines } = collectingLogger('warn');
  const waiting = createRedis(server.url, 'blocking', 'cellblock-test-silent');
  const ended = createRedis(server.url, 'blocking', 'cellblock-test-silent-ended');
  try {
    warnUntilReady(waiting, logger.child({ connection: 'waiting' }), 'redis not reachable yet', 300);
    warnUntilReady(ended, logger.child({ connection: 'ended' }), 'redis not reachable yet', 300);
    ended.disconnect();
    await until(() => lines.length > 0, 5000, 10, 'the warning');
    await nap(600);
    assert.equal(lines.length, 1, lines.join(''));
    assert.deepEqual(
      (({ level, connection, reason, msg }) => ({ level, connection, reason, msg }))(JSON.parse(lines[0]!)),
      { level: 40, connection: 'waiting', reason: 'no answer in 300 ms', msg: 'redis not reachable yet' },
    );
  } finally {
    waiting.disconnect();
    ended.disconnect();
    await server.close();
  }
});

/** A stand-in executor that keeps the stdin of every job it is asked to run (each names its job
 * here) and ends each at once, ok. */
function countingExecutor(): { executor: JobExecutor; ran: string[] } {
  const ran: string[] = [];
  const executor: JobExecutor = {
    execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
      ran.push(Buffer.from(request.stdin ?? '').toString());
      return { verdict: 'ok', runtime: { id: 'python', language: 'python', version: testRuntime.version } };
    },
    close: async () => {},
  };
  return { executor, ran };
}

const named = (stdin: string) => ({ ...hello, stdin });
const nap = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ids a /v1 503 names as withdrawn (details.id, or a batch's details.ids). */
function withdrawnIds(response: LightMyRequestResponse): string[] {
  assert.equal(response.statusCode, 503, response.body);
  assert.ok(Number(response.headers['retry-after']) > 0, 'Retry-After');
  const { code, details } = response.json().error;
  assert.equal(code, 'queue_unavailable');
  assert.equal(details?.withdrawn, true, response.body);
  return details.ids ?? [details.id];
}

/** Job ids (ours: 21 characters; Judge0's tokens: UUIDs) a compat front's 503 message names. */
const idsIn = (text: string) => text.match(/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|(?<![\w-])[\w-]{21}(?![\w-])/g) ?? [];

describe('a submission Redis does not answer in time (the add may yet reach it)', () => {
  /** Each id reads as a job that will never run: cancelled (its withdrawal's marker), or unknown. */
  async function assertWithdrawn(service: ServiceHarness, ids: string[]): Promise<void> {
    for (const id of ids) {
      const view = await call(service, { method: 'GET', url: `/v1/jobs/${id}` });
      if (view.statusCode === 404) continue;
      assert.equal(view.statusCode, 200, view.body);
      assert.equal(view.json().status, 'cancelled', `${id}: ${view.body}`);
    }
  }

  test('frozen for writes (CLIENT PAUSE WRITE) across the timeout: /v1 (plain, waited, a batch), Judge0 and Piston answer 503 naming the jobs, withdrawn: none ever runs', async () => {
    const service = await startService({ config: { maxWaitMs: 20_000 } });
    const { executor, ran } = countingExecutor();
    const worker = await startStandInWorker(service, executor);
    const admin = new Redis(service.redis.url);
    try {
      // A job first: it runs (the worker works), and the queue's depth is known, so that the adds
      // below go out at once rather than wait for a read of it.
      const first = await call(service, { method: 'POST', url: '/v1/jobs', body: named('first') }, '?wait=true');
      assert.equal(first.statusCode, 200, first.body);
      await admin.call('CLIENT', 'PAUSE', String(PRODUCER_COMMAND_TIMEOUT_MS + 2000), 'WRITE');
      const [plain, waited, batch, judge0, piston] = await Promise.all([
        call(service, { method: 'POST', url: '/v1/jobs', body: named('plain') }),
        call(service, { method: 'POST', url: '/v1/jobs', body: named('waited') }, '?wait=true'),
        call(service, { method: 'POST', url: '/v1/jobs/batch', body: { jobs: [named('batch-0'), named('batch-1')] } }),
        call(service, { method: 'POST', url: '/submissions', body: { source_code: 'print(1)', language_id: 71, stdin: 'judge0' } }),
        call(service, { method: 'POST', url: '/api/v2/execute', body: { language: 'python', version: testRuntime.version, files: [{ content: 'print(1)' }], stdin: 'piston' } }),
      ]);
      const ids = [...withdrawnIds(plain!), ...withdrawnIds(waited!), ...withdrawnIds(batch!)];
      assert.equal(ids.length, 4);
      for (const compat of [judge0!, piston!]) {
        assert.equal(compat.statusCode, 503, compat.body);
        assert.ok(Number(compat.headers['retry-after']) > 0);
        const [id] = idsIn(compat.body);
        assert.ok(id, `the 503 names its job: ${compat.body}`);
        assert.match(compat.body, /withdrawn/);
        ids.push(id);
      }
      // Redis takes the writes again (the adds, then their withdrawals): a worker free all along.
      await until(async () => (await call(service, { method: 'POST', url: '/v1/jobs', body: named('after') })).statusCode === 202, 10_000, 100, 'writes taken again');
      await until(() => ran.includes('after'), 10_000, 20, 'the job after the pause run');
      await nap(500);
      assert.deepEqual(ran.filter((stdin) => stdin !== 'after'), ['first'], 'no withdrawn job ran');
      await assertWithdrawn(service, ids);
    } finally {
      admin.disconnect();
      await worker.close();
      await service.close();
    }
  });

  test('stopped by SIGSTOP across the timeout: the 503s name their jobs, withdrawn; none runs once Redis goes on', async () => {
    const service = await startService();
    const { executor, ran } = countingExecutor();
    const worker = await startStandInWorker(service, executor);
    const pid = service.redis.pid!;
    let stopped = false;
    try {
      assert.equal((await call(service, { method: 'POST', url: '/v1/jobs', body: named('first') }, '?wait=true')).statusCode, 200);
      process.kill(pid, 'SIGSTOP');
      stopped = true;
      const answers = await Promise.all([
        call(service, { method: 'POST', url: '/v1/jobs', body: named('plain') }),
        call(service, { method: 'POST', url: '/v1/jobs', body: named('waited') }, '?wait=true'),
      ]);
      const ids = answers.flatMap(withdrawnIds);
      process.kill(pid, 'SIGCONT');
      stopped = false;
      await until(async () => (await call(service, { method: 'POST', url: '/v1/jobs', body: named('after') })).statusCode === 202, 15_000, 100, 'accepted again');
      await until(() => ran.includes('after'), 15_000, 20, 'the job after the stop run');
      await nap(500);
      assert.deepEqual(ran.filter((stdin) => stdin !== 'after'), ['first'], 'no withdrawn job ran');
      await assertWithdrawn(service, ids);
    } finally {
      if (stopped) process.kill(pid, 'SIGCONT');
      await worker.close();
      await service.close();
    }
  });

  test("frozen past the withdrawal's own timeout: the withdrawal is sent once, not again while the connection stands", async () => {
    const service = await startService();
    const admin = new Redis(service.redis.url);
    const monitored = new Redis(service.redis.url);
    const monitor = await monitored.monitor();
    /** The job ids of the withdrawals Redis ran (WITHDRAW_JOB: the one script that publishes a
     * cancel), in the order it ran them. */
    const withdrawals: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'eval' && args[1]?.includes("'PUBLISH'")) withdrawals.push(args[3 + Number(args[2])]!);
    });
    try {
      // Accepted first: the queue's depth is known, so that the add below goes out at once.
      assert.equal((await call(service, { method: 'POST', url: '/v1/jobs', body: named('first') })).statusCode, 202);
      // The add times out (503), then its withdrawal, sent behind it, times out too; a retry would
      // go 0.25 s later. Paused past all that (ended by Redis itself, should the test die).
      const pauseMs = 2 * PRODUCER_COMMAND_TIMEOUT_MS + 2500;
      await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE');
      const paused = Date.now();
      const [id] = withdrawnIds(await call(service, { method: 'POST', url: '/v1/jobs', body: named('unanswered') }));
      // Nothing else written meanwhile (a submission would be withdrawn too).
      await nap(pauseMs - (Date.now() - paused) + 500);
      await until(() => withdrawals.length > 0, 5000, 20, 'the withdrawal run');
      await nap(500);
      assert.deepEqual(withdrawals, [id], 'one withdrawal, sent once');
      await assertWithdrawn(service, [id!]);
    } finally {
      monitor.disconnect();
      monitored.disconnect();
      admin.disconnect();
      await service.close();
    }
  });

  test('a live job, and a submission under an Idempotency-Key (not withdrawn: its retry under the key finds or queues it, once)', async () => {
    const service = await startService();
    const { executor, ran } = countingExecutor();
    const worker = await startStandInWorker(service, executor);
    const admin = new Redis(service.redis.url);
    const key = { 'idempotency-key': 'a3c1f7e2-unanswered' };
    try {
      const liveJob = (stdin: string): JobRequest => ({ runtimeId: 'python', files: [{ name: 'main.py', contentBase64: Buffer.from('print(1)').toString('base64') }], stdinBase64: Buffer.from(stdin).toString('base64'), args: [], limits: {} });
      // Under another key first: the deployment's idempotency secret is made (a write) by then.
      const warm = await service.app.inject({ method: 'POST', url: '/v1/jobs?wait=true', headers: { 'idempotency-key': 'warm-up' }, payload: named('warm') });
      assert.equal(warm.statusCode, 200, warm.body);
      // A live job first, run to its end: the live sessions' connection is made by then.
      await new Promise<void>((resolve, reject) => {
        service.jobs.submitLive(liveJob('first-live'), (event) => event.type === 'end' && resolve()).catch(reject);
      });
      // Each under a pause of its own: one's reads would wait behind the other's add on the connection.
      const writesTaken = () => until(async () => (await call(service, { method: 'POST', url: '/v1/jobs', body: named('after') })).statusCode === 202, 10_000, 100, 'writes taken again');
      await admin.call('CLIENT', 'PAUSE', String(PRODUCER_COMMAND_TIMEOUT_MS + 2000), 'WRITE');
      const live = await service.jobs.submitLive(liveJob('live'), () => {}).then(
        () => assert.fail('a live job Redis did not answer is not accepted'),
        (error: unknown) => error,
      );
      assert.ok(live instanceof QueueUnavailableError, String(live));
      assert.equal(live.unanswered?.withdrawn, true);
      await writesTaken();
      await admin.call('CLIENT', 'PAUSE', String(PRODUCER_COMMAND_TIMEOUT_MS + 2000), 'WRITE');
      const keyed = await service.app.inject({ method: 'POST', url: '/v1/jobs', headers: key, payload: named('keyed') });
      assert.equal(keyed.statusCode, 503, keyed.body);
      const { details, message } = keyed.json().error;
      assert.equal(details.withdrawn, false);
      assert.match(message, /Idempotency-Key/);
      await writesTaken();
      const retried = await service.app.inject({ method: 'POST', url: '/v1/jobs?wait=true', headers: key, payload: named('keyed') });
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json().id, details.id);
      await until(() => ran.includes('after'), 10_000, 20, 'the job after the pause run');
      await nap(500);
      assert.deepEqual(ran.filter((stdin) => stdin !== 'after').sort(), ['first-live', 'keyed', 'warm'], 'the keyed job once, the live job never');
      await assertWithdrawn(service, live.unanswered!.jobIds);
    } finally {
      admin.disconnect();
      await worker.close();
      await service.close();
    }
  });
});
