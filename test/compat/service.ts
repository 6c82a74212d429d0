// The whole service for the compat e2e tests, as a user runs it: a private Redis, the API
// listening on a loopback port (clients speak real HTTP), and a queue worker over the real
// executor, pool, engine and images. Nothing is mocked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { nanoid } from 'nanoid';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import { jobNotifications } from '../../src/api/notifications.js';
import { DEFAULT_WEBHOOK_MEMORY_BYTES, loadConfig } from '../../src/config.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { Runtime } from '../../src/images/types.js';
import { BullJobClient } from '../../src/queue/client.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import type { QueueWorker } from '../../src/queue/worker.js';
import type { Executor } from '../../src/executor/executor.js';
import { dataDir, executorSkipReason } from '../executor/helpers.js';
import { start, type TestRedis } from '../helpers/redis.js';

export interface RunningService {
  baseUrl: string;
  runtimes: Runtime[];
  close(): Promise<void>;
}

/** Why the service cannot run jobs here (or undefined), given the runtimes' images. */
export function serviceSkipReason(): string | undefined {
  return executorSkipReason([...new Set(loadRuntimes().map((runtime) => runtime.image))]);
}

export async function startRunningService(): Promise<RunningService> {
  const runtimes = loadRuntimes();
  const prefix = `compat${nanoid(6)}`;
  const stateRoot = mkdtempSync(join(tmpdir(), 'cellblock-compat-test-'));
  const logger = pino({ level: 'warn' });
  let redis: TestRedis | undefined;
  let jobs: BullJobClient | undefined;
  let app: FastifyInstance | undefined;
  let executor: Executor | undefined;
  let worker: QueueWorker | undefined;
  const close = async () => {
    await app?.close();
    await worker?.close();
    await executor?.close();
    await jobs?.close();
    await redis?.stop();
    rmSync(stateRoot, { recursive: true, force: true });
  };
  try {
    redis = await start();
    jobs = new BullJobClient({ redisUrl: redis.url, prefix, resultTtlSeconds: 600, maxQueuedJobs: 1000, notifications: jobNotifications(runtimes) });
    await jobs.ready();
    app = await buildApp({ jobs, runtimes, config: { ...loadConfig({}), maxWaitMs: 60_000 } });
    const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    // Imported here: loading the engine needs its native addon, which the skip reason checked.
    const { createExecutor } = await import('../../src/executor/create.js');
    const { startQueueWorker } = await import('../../src/queue/worker.js');
    executor = await createExecutor({
      dataDir,
      runtimes,
      pool: { stateRoot, sizing: { minReady: 0, maxReady: 2 }, warmImages: [] },
      sandbox: { instanceId: `compat-${process.pid}` },
    });
    worker = await startQueueWorker({
      redisUrl: redis.url,
      prefix,
      concurrency: 2,
      backgroundSlots: 0,
      backgroundAfterMs: 0,
      executor,
      logger,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      maxStalledCount: 1,
      heartbeatTtlMs: 15_000,
      shutdownGraceMs: 5_000,
      webhook: { attempts: 1, timeoutMs: 1000, backoffMs: 0, destinations: new OutboundPolicy(), memoryBytes: DEFAULT_WEBHOOK_MEMORY_BYTES },
      notifications: jobNotifications(runtimes),
    });
    return { baseUrl, runtimes, close };
  } catch (error) {
    await close();
    throw error;
  }
}
