// The service cut off from Redis by the network, not by Redis stopping: the link between them
// passes nothing and closes nothing (test/helpers/cuttable-link.ts), so every connection stays
// open and "ready" while nothing answers. A stopping worker gives up on Redis and exits within
// its bounds; a run whose lock can no longer be renewed stops once the lock may have expired,
// before another worker runs the job again; the API's waits keep their deadline; its probes are
// answered within a second or two. Real Redis, stand-in executors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { METRICS_REDIS_MS } from '../../src/api/routes/metrics.js';
import { READINESS_REDIS_MS } from '../../src/api/routes/system.js';
import type { ExecuteRequest, ExecuteResult, StageResult } from '../../src/executor/types.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest } from '../../src/jobs/model.js';
import { createRedis, KEEPALIVE_IDLE_MS } from '../../src/queue/connection.js';
import { CLOSE_REDIS_AWAY_MS } from '../../src/queue/unreachable.js';
import type { JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { startCuttableLink, type CuttableLink } from '../helpers/cuttable-link.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { okStage } from '../helpers/stand-in-result.js';
import { until } from '../helpers/until.js';
import { startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const runtimes = loadRuntimes();
const python = runtimes.find((runtime) => runtime.id.startsWith('python'))!;
const request = (source: string): JobRequest => ({ runtimeId: python.id, files: [{ name: 'main.py', contentBase64: Buffer.from(source).toString('base64') }], stdinBase64: '', args: [], limits: {} });
const hello = { language: 'python', source: 'print("hi")' };

function stageOf(verdict: StageResult['verdict']): StageResult {
  return { ...okStage(Buffer.from(verdict)), verdict, exitCode: verdict === 'ok' ? 0 : null };
}

/** When each run of a stand-in executor started and was stopped (epoch ms). */
interface RunLog {
  started: number[];
  stopped: number[];
}

/** A stand-in executor whose runs last until stopped (their signal aborted: `cancelled`, as the
 * engine's are), or `runMs` when given (`ok`). */
function holdingExecutor(log: RunLog, runMs?: number): JobExecutor {
  return {
    execute: (job: ExecuteRequest) =>
      new Promise<ExecuteResult>((resolve) => {
        log.started.push(Date.now());
        const end = (verdict: 'ok' | 'cancelled') => {
          clearTimeout(timer);
          if (verdict === 'cancelled') log.stopped.push(Date.now());
          resolve({ verdict, runtime: { id: python.id, language: 'python', version: '3' }, run: stageOf(verdict) });
        };
        const timer = runMs === undefined ? undefined : setTimeout(() => end('ok'), runMs);
        if (job.signal?.aborted) return end('cancelled');
        job.signal?.addEventListener('abort', () => end('cancelled'), { once: true });
      }),
    close: async () => {},
  };
}

/** A worker (stand-in executor) that reaches the service's Redis through a link of its own. */
async function workerBehindLink(service: ServiceHarness, executor: JobExecutor, lines: string[], options: Parameters<typeof startStandInWorker>[2] = {}) {
  const link = await startCuttableLink(service.redis.port);
  const worker = await startStandInWorker({ redis: { url: link.url }, prefix: service.prefix }, executor, { logger: collectingLogger('warn', lines).logger, ...options });
  return { link, worker };
}

/** Settles with `work`'s outcome, or 'pending' once `ms` have passed. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a worker cut off from Redis', () => {
  test('stopped while cut off (SIGTERM: its close): gives up on Redis and ends within the grace and 5 s, the link still cut, its run stopped', async () => {
    const service = await startService({ runtimes });
    const runs: RunLog = { started: [], stopped: [] };
    const lines: string[] = [];
    const shutdownGraceMs = 2000;
    let link: CuttableLink | undefined;
    let worker: QueueWorker | undefined;
    try {
      // A lock far longer than the test: the run is stopped by the close, not by its fence.
      ({ link, worker } = await workerBehindLink(service, holdingExecutor(runs), lines, { lockDurationMs: 60_000, stalledIntervalMs: 5000, shutdownGraceMs }));
      await service.jobs.submit(request('held'));
      await until(() => runs.started.length === 1, 10_000, 10, 'the run started');
      link.cut();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const closeStarted = Date.now();
      const closing = worker.close();
      // Before, its watch saw the connection "ready" all along: the close waited for the link's
      // return (in the field, 108 s after it, once TCP gave up).
      const boundMs = Math.max(shutdownGraceMs, CLOSE_REDIS_AWAY_MS) + 1500;
      const outcome = await within(closing.then(() => 'closed' as const), boundMs + 5000);
      const tookMs = Date.now() - closeStarted;
      assert.equal(outcome, 'closed', `the close still waited ${tookMs} ms into the cut:\n${lines.join('')}`);
      assert.ok(tookMs <= boundMs, `closed ${tookMs} ms after it began, past ${boundMs} ms`);
      assert.ok(link.isCut, 'closed while the link was still cut');
      assert.equal(runs.stopped.length, 1, 'its run was stopped');
      assert.ok(lines.some((line) => line.includes('redis unreachable while closing')), lines.join(''));
    } finally {
      link?.restore();
      await worker?.close();
      await link?.close();
      await service.close();
    }
  });

  test("its run stops once the job's lock may have expired: before the link returns, and before another worker runs the job again", async () => {
    const service = await startService({ runtimes });
    const cutOff: RunLog = { started: [], stopped: [] };
    const other: RunLog = { started: [], stopped: [] };
    const lines: string[] = [];
    const lockDurationMs = 2000;
    const stall = { lockDurationMs, stalledIntervalMs: 500, maxStalledCount: 1 };
    let link: CuttableLink | undefined;
    let worker: QueueWorker | undefined;
    let survivor: QueueWorker | undefined;
    try {
      ({ link, worker } = await workerBehindLink(service, holdingExecutor(cutOff), lines, stall));
      const id = await service.jobs.submit(request('held'));
      await until(() => cutOff.started.length === 1, 10_000, 10, 'the first run started');
      // Past a few renewals: the fence goes by them, not by the take alone.
      await new Promise((resolve) => setTimeout(resolve, 2 * lockDurationMs));
      assert.equal(cutOff.stopped.length, 0, 'renewed, the run went on past its lock duration');
      // The other worker (on Redis directly) runs the stall check that hands the job on.
      survivor = await startStandInWorker(service, holdingExecutor(other, 200), stall);
      const cutAt = Date.now();
      link.cut();
      await until(() => other.started.length === 1, 20_000, 10, 'the job run again by the other worker');
      assert.ok(link.isCut, 'run again while the first worker is still cut off');
      // Without the fence the first run went on beside the second until the link returned (in
      // the field, 23 s of a 25 s job), when its renewal was refused.
      assert.equal(cutOff.stopped.length, 1, `the cut-off run was still going when the job ran again:\n${lines.join('')}`);
      assert.ok(cutOff.stopped[0]! <= other.started[0]!, `stopped ${cutOff.stopped[0]! - other.started[0]!} ms after the job's next run began`);
      // Stopped once the last renewal's lock may have gone: within a lock duration of the cut (and
      // room for a loaded machine's timers; without the fence it ran until the link returned).
      assert.ok(cutOff.stopped[0]! - cutAt <= lockDurationMs + 1500, `stopped ${cutOff.stopped[0]! - cutAt} ms into the cut`);
      assert.ok(lines.some((line) => line.includes("job's lock not renewed for its duration")), lines.join(''));
      link.restore();
      const record = await service.jobs.wait(id, 10_000);
      assert.deepEqual([record?.status, record?.attempts, record?.result?.verdict], ['done', 2, 'ok'], JSON.stringify(record));
      assert.equal(cutOff.started.length, 1, 'the cut-off worker did not run it again');
    } finally {
      link?.restore();
      await survivor?.close();
      await worker?.close();
      await link?.close();
      await service.close();
    }
  });
});

describe('the API cut off from Redis', () => {
  const post = (service: ServiceHarness, query: string): Promise<LightMyRequestResponse> =>
    service.app.inject({ method: 'POST', url: `/v1/jobs${query}`, payload: hello });

  test('?wait=true answers at its timeoutMs with the job as last read: queued when never read, running when read running', async () => {
    const service = await startService({ runtimes, cuttableLink: true });
    const runs: RunLog = { started: [], stopped: [] };
    // The worker reaches Redis directly: only the API is cut off.
    const worker = await startStandInWorker(service, holdingExecutor(runs), { concurrency: 3, shutdownGraceMs: 500 });
    const link = service.link!;
    try {
      // The route's first request compiles its schemas (~0.3 s here): not the wait's time.
      assert.equal((await post(service, '')).statusCode, 202);
      await until(() => runs.started.length === 1, 10_000, 5, 'the warm-up job running');
      /** A job submitted with ?wait=true&timeoutMs, the link cut once it runs and `cutAfterMs`
       * have passed: its answer, and how long after the request it came. */
      const waitAcrossCut = async (timeoutMs: number, cutAfterMs: number) => {
        const startedAt = Date.now();
        const running = runs.started.length;
        const answer = post(service, `?wait=true&timeoutMs=${timeoutMs}`);
        await until(() => runs.started.length === running + 1, 10_000, 5, 'the job running');
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + cutAfterMs - Date.now())));
        link.cut();
        const response = await answer;
        const tookMs = Date.now() - startedAt;
        link.restore();
        // Before, the read under way at the deadline held the answer its 5 s timeout (room here
        // for a loaded machine, well short of that).
        assert.ok(tookMs <= timeoutMs + 2000, `answered ${tookMs} ms after a ${timeoutMs} ms wait began`);
        assert.equal(response.statusCode, 202, response.body);
        return response.json();
      };
      // Cut before the wait's first read (a second after the submission): never read.
      const neverRead = await waitAcrossCut(2500, 0);
      assert.deepEqual(neverRead, { id: neverRead.id, status: 'queued' });
      // Cut after the first read, which saw it running.
      assert.equal((await waitAcrossCut(3500, 1500)).status, 'running');
    } finally {
      link.restore();
      await worker.close();
      await service.close();
    }
  });

  test('/readyz and /metrics answer within their bounds (503, cellblock_redis_up 0), then recover once the link is back', async () => {
    const service = await startService({ runtimes, cuttableLink: true });
    const worker = await startStandInWorker(service, holdingExecutor({ started: [], stopped: [] }), { shutdownGraceMs: 500 });
    const link = service.link!;
    try {
      await until(async () => (await service.app.inject({ url: '/readyz' })).statusCode === 200, 10_000, 50, 'ready before the cut');
      link.cut();
      for (let i = 0; i < 2; i++) {
        let started = Date.now();
        const readiness = await service.app.inject({ url: '/readyz' });
        const readinessMs = Date.now() - started;
        assert.equal(readiness.statusCode, 503, readiness.body);
        assert.deepEqual(readiness.json(), { status: 'unavailable', redis: 'unreachable', workers: 0 });
        // Before: 5 s, the Redis timeout, past Kubernetes' default probe timeout (1 s). The bound
        // is under it; the answer may take a loaded machine's scheduling more.
        assert.ok(READINESS_REDIS_MS < 1000 && readinessMs < READINESS_REDIS_MS + 1000, `/readyz answered in ${readinessMs} ms`);
        started = Date.now();
        const metrics = await service.app.inject({ url: '/metrics' });
        const metricsMs = Date.now() - started;
        assert.equal(metrics.statusCode, 200);
        assert.match(metrics.body, /^cellblock_redis_up 0$/m);
        assert.ok(metricsMs <= METRICS_REDIS_MS + 1000, `/metrics answered in ${metricsMs} ms`);
      }
      link.restore();
      await until(async () => (await service.app.inject({ url: '/readyz' })).statusCode === 200, 10_000, 50, 'ready again once the link is back');
      assert.match((await service.app.inject({ url: '/metrics' })).body, /^cellblock_redis_up 1$/m);
    } finally {
      link.restore();
      await worker.close();
      await service.close();
    }
  });
});

/** The kernel's keepalive timer of the TCP connection from local port `port` (/proc/net/tcp:
 * `tr` 2 is the keepalive timer, `tm->when` its time left in hundredths of a second). */
function keepaliveTimer(port: number): { armed: boolean; leftMs: number } | undefined {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (!fields[1]?.endsWith(local)) continue;
      const [timer, left] = fields[5]!.split(':');
      return { armed: timer === '02', leftMs: parseInt(left!, 16) * 10 };
    }
  }
  return undefined;
}

test(`every connection keeps TCP keepalive (idle ${KEEPALIVE_IDLE_MS} ms, then 10 probes): one waiting on a Redis cut off finds out`, async () => {
  const service = await startService({ runtimes });
  const connections = [createRedis(service.redis.url, 'producer', 'cellblock-test-keepalive'), createRedis(service.redis.url, 'blocking', 'cellblock-test-keepalive')];
  try {
    for (const connection of connections) {
      await until(() => connection.status === 'ready', 5000, 10, 'the connection ready');
      const duplicate = connection.duplicate();
      await until(() => duplicate.status === 'ready', 5000, 10, 'the duplicate ready');
      for (const made of [connection, duplicate]) {
        const timer = keepaliveTimer(made.stream.localPort!);
        assert.ok(timer?.armed, `no keepalive timer on the connection from port ${made.stream.localPort}: ${JSON.stringify(timer)}`);
        assert.ok(timer.leftMs <= KEEPALIVE_IDLE_MS, JSON.stringify(timer));
      }
      duplicate.disconnect();
    }
  } finally {
    for (const connection of connections) connection.disconnect();
    await service.close();
  }
});
