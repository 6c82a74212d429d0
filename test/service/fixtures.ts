// Shared set-up of the service tests: a private Redis, a BullJobClient on its own prefix, and
// the API app over them.
import type { FastifyInstance } from 'fastify';
import { nanoid } from 'nanoid';
import { buildApp, type ApiConfig } from '../../src/api/app.js';
import { loadConfig } from '../../src/config.js';
import type { Runtime } from '../../src/images/types.js';
import { BullJobClient } from '../../src/queue/client.js';
import { start, type TestRedis } from '../helpers/redis.js';

/** A runtime as data, for tests of the API's own checks (no worker runs it). */
export const testRuntime: Runtime = {
  id: 'python',
  language: 'python',
  version: '3.11.2',
  aliases: ['py', 'python3'],
  image: 'python',
  sourceFile: 'main.py',
  run: { argv: ['/usr/bin/python3', 'main.py'] },
  env: {},
  defaultLimits: {
    cpuTimeMs: 2000,
    wallTimeMs: 5000,
    memoryBytes: 128 * 1024 * 1024,
    pids: 32,
    outputBytes: 64 * 1024,
    fileSizeBytes: 1024 * 1024,
    openFiles: 64,
    stackBytes: 8 * 1024 * 1024,
    tmpBytes: 16 * 1024 * 1024,
    cpuCores: 1,
  },
  maxLimits: {
    cpuTimeMs: 10_000,
    wallTimeMs: 20_000,
    memoryBytes: 512 * 1024 * 1024,
    pids: 128,
    outputBytes: 1024 * 1024,
    fileSizeBytes: 16 * 1024 * 1024,
    openFiles: 256,
    stackBytes: 64 * 1024 * 1024,
    tmpBytes: 64 * 1024 * 1024,
    cpuCores: 2,
  },
  helloWorld: { source: 'print("hello, world")\n', stdout: 'hello, world\n' },
};

export interface ServiceHarness {
  redis: TestRedis;
  jobs: BullJobClient;
  app: FastifyInstance;
  prefix: string;
  close(): Promise<void>;
}

export async function startService(
  options: { runtimes?: Runtime[]; config?: Partial<ApiConfig>; maxQueuedJobs?: number; resultTtlSeconds?: number } = {},
): Promise<ServiceHarness> {
  const redis = await start();
  const prefix = `t${nanoid(8)}`;
  const jobs = new BullJobClient({
    redisUrl: redis.url,
    prefix,
    resultTtlSeconds: options.resultTtlSeconds ?? 600,
    maxQueuedJobs: options.maxQueuedJobs ?? 1000,
  });
  await jobs.ready();
  const config: ApiConfig = { ...loadConfig({}), ...options.config };
  const app = await buildApp({ jobs, runtimes: options.runtimes ?? [testRuntime], config });
  await app.ready();
  return {
    redis,
    jobs,
    app,
    prefix,
    close: async () => {
      await app.close();
      await jobs.close();
      await redis.stop();
    },
  };
}
