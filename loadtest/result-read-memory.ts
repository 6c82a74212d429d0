// What one large result costs: Redis's memory (the job's hash, the queue's event stream, the
// result's own key), and the peak RSS of an API process (`cellblock api`, a child of this one)
// that hears the job's completion event, then of fresh ones that each answer one GET of it (as
// text, then as base64), and of one that answers several GETs at once. The job is run by a
// worker in this process (src/queue/worker.ts) on a stand-in executor that returns `--tests`
// tests of `--test-bytes` bytes of stdout each (0x01 by default: a control byte, escaped as six
// characters in JSON text): 8 × 16 MiB is the largest result the defaults admit (8 tests at the
// runtimes' largest outputBytes, CELLBLOCK_MAX_JOB_OUTPUT_BYTES 128 MiB). No sandbox, no images.
//
//   node --import tsx loadtest/result-read-memory.ts [--tests 8] [--test-bytes 16777216] [--byte 1] [--concurrent 4]
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Redis } from 'ioredis';
import type { ExecuteResult, TestResult } from '../src/executor/types.js';
import type { JobRequest } from '../src/jobs/model.js';
import { Queue } from 'bullmq';
import { nanoid } from 'nanoid';
import { jobOptions } from '../src/queue/client.js';
import { QUEUE_NAME } from '../src/queue/keys.js';
import { OutboundPolicy } from '../src/queue/outbound.js';
import { startRedisServer } from '../src/queue/redis-server.js';
import { startQueueWorker, type JobExecutor } from '../src/queue/worker.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';

const { values } = parseArgs({
  options: {
    tests: { type: 'string', default: '8' },
    'test-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
    byte: { type: 'string', default: '1' },
    concurrent: { type: 'string', default: '4' },
  },
});
const TESTS = Number(values.tests);
const TEST_BYTES = Number(values['test-bytes']);
const BYTE = Number(values.byte);
const CONCURRENT = Number(values.concurrent);
const MB = 1e6;
const cellblock = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/bin/cellblock.ts');

/** A process's resident set now and at its peak (VmRSS, VmHWM), in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

const stage = (stdout: Buffer): TestResult => ({
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdout,
  stderr: Buffer.alloc(0),
  stdoutTruncated: false,
  stderrTruncated: false,
  metrics: { cpuTimeMs: 1, wallTimeMs: 1, peakMemoryBytes: 1 },
  passed: null,
});

/** Each test's stdout made afresh per job, as a sandbox's would be, and dropped with the result. */
const executor: JobExecutor = {
  execute: async (): Promise<ExecuteResult> => ({
    verdict: 'ok',
    runtime: { id: 'python', language: 'python', version: '3.11.2' },
    tests: Array.from({ length: TESTS }, () => stage(Buffer.alloc(TEST_BYTES, BYTE))),
  }),
  close: async () => {},
};

interface Api {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

async function startApi(redisUrl: string, prefix: string): Promise<Api> {
  const child = spawn(process.execPath, ['--import', 'tsx', cellblock, 'api'], {
    env: { ...process.env, CELLBLOCK_REDIS_URL: redisUrl, CELLBLOCK_QUEUE_PREFIX: prefix, CELLBLOCK_PORT: '0', CELLBLOCK_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!(url = /"msg":"api listening"/.test(output) ? /"url":"([^"]+)"/.exec(output)?.[1] : undefined)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cellblock api did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Settled after its start (connections made, first reads done) before it is measured.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return {
    child,
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** Redis's figures: used memory, and each of the job's keys (MEMORY USAGE, bytes). */
async function redisFigures(redis: Redis, prefix: string, jobId: string): Promise<Record<string, number>> {
  const info = await redis.info('memory');
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
  const peak = Number(/^used_memory_peak:(\d+)/m.exec(info)?.[1]);
  const usage = async (key: string) => Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
  const resultKeys = await redis.keys(`${prefix}:cb:result:*`);
  let resultKeyBytes = 0;
  for (const key of resultKeys) resultKeyBytes += await usage(key);
  return {
    usedMemory: used,
    usedMemoryPeak: peak,
    jobHash: await usage(`${prefix}:${QUEUE_NAME}:${jobId}`),
    eventStream: await usage(`${prefix}:${QUEUE_NAME}:events`),
    resultKeys: resultKeyBytes,
  };
}

/** A GET by curl (a client of its own, reading as fast as the API writes): its status, the error's
 * code, the body's size and the time it took. */
async function read(url: string): Promise<string> {
  const curl = spawn('curl', ['-sS', '-o', '-', '-w', '\n%{http_code} %{size_download} %{time_total}', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Only the start and the end of the body are kept: the error's code, and curl's figures.
  let head = '';
  let tail = '';
  curl.stdout.on('data', (chunk: Buffer) => {
    if (head.length < 200) head += chunk.toString('latin1', 0, 200);
    tail = (tail + chunk.toString('latin1')).slice(-200);
  });
  await new Promise((resolve) => curl.once('exit', resolve));
  const [status, size, seconds] = tail.slice(tail.lastIndexOf('\n') + 1).split(' ');
  const code = status === '200' ? '' : ` ${/"code":"([^"]+)"/.exec(head)?.[1] ?? '?'}`;
  return `${status}${code} ${mb(Number(size))} in ${Number(seconds).toFixed(2)} s`;
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

const dataDir = await makeScratchDir('result-read-memory');
const server = await startRedisServer({ dataDir });
const redis = new Redis(server.url);
const prefix = `rrm${process.pid}`;
const apis = new Set<Api>();
let worker: Awaited<ReturnType<typeof startQueueWorker>> | undefined;
let queue: Queue | undefined;

async function measured<T>(label: string, api: Api, action: () => Promise<T>): Promise<T> {
  const before = memoryOf(api.child.pid!);
  const outcome = await action();
  const after = memoryOf(api.child.pid!);
  console.log(`  ${label}: API RSS ${mb(before.rss)} before, peak ${mb(after.peak)} (+${mb(after.peak - before.rss)})`);
  return outcome;
}

await runInterruptible(
  'result-read-memory',
  async () => {
    console.log(`a result of ${TESTS} tests × ${TEST_BYTES} bytes of 0x${BYTE.toString(16).padStart(2, '0')} (${mb(TESTS * TEST_BYTES)} of output)`);
    worker = await startQueueWorker({
      redisUrl: server.url,
      prefix,
      concurrency: 1,
      backgroundSlots: 0,
      backgroundAfterMs: 0,
      executor,
      logger: pino({ level: 'warn' }),
      lockDurationMs: 30_000,
      stalledIntervalMs: 5000,
      maxStalledCount: 1,
      heartbeatTtlMs: 15_000,
      shutdownGraceMs: 5000,
      webhook: { attempts: 1, timeoutMs: 1000, backoffMs: 100, destinations: new OutboundPolicy(), memoryBytes: 1 },
      notifications: { wanted: () => false, compose: () => undefined },
    });
    // Queued as the API queues it, and waited for by its state: this process hears no event.
    queue = new Queue(QUEUE_NAME, { connection: redis, prefix });
    const redisBefore = await redisFigures(redis, prefix, 'none');
    const request: JobRequest = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: '' }], stdinBase64: '', args: [], limits: {}, tests: Array.from({ length: TESTS }, () => ({ stdinBase64: '' })) };

    const listening = await startApi(server.url, prefix);
    apis.add(listening);
    const workerBefore = memoryOf(process.pid);
    const id = await measured('the completion event alone (no request waits)', listening, async () => {
      const submitted = nanoid();
      await queue!.add(request.runtimeId, request, jobOptions(submitted, Date.now(), 3600));
      const deadline = Date.now() + 120_000;
      let state: string;
      while ((state = await queue!.getJobState(submitted)) !== 'completed') {
        if (state === 'failed' || Date.now() > deadline) throw new Error(`the job did not finish: ${state}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return submitted;
    });
    console.log(`  worker (this process, with the stand-in executor's output): RSS ${mb(workerBefore.rss)} before, peak ${mb(memoryOf(process.pid).peak)}`);
    await listening.stop();
    apis.delete(listening);

    const redisAfter = await redisFigures(redis, prefix, id);
    console.log(
      `  redis: used memory ${mb(redisBefore.usedMemory)} → ${mb(redisAfter.usedMemory)} (peak ${mb(redisAfter.usedMemoryPeak)}); ` +
        `job hash ${mb(redisAfter.jobHash)}, event stream ${mb(redisAfter.eventStream)}, result keys ${mb(redisAfter.resultKeys)}`,
    );

    for (const [label, query, reads] of [
      ['one GET as text', '', 1],
      ['one GET as base64', '?outputEncoding=base64', 1],
      [`${CONCURRENT} GETs as base64 at once`, '?outputEncoding=base64', CONCURRENT],
    ] as const) {
      const api = await startApi(server.url, prefix);
      apis.add(api);
      const answers = await measured(label, api, () =>
        Promise.all(
          Array.from({ length: reads }, () => read(`${api.url}/v1/jobs/${id}${query}`)),
        ),
      );
      console.log(`    answered: ${answers.join('; ')}`);
      await api.stop();
      apis.delete(api);
    }
  },
  async () => {
    for (const api of apis) await api.stop();
    await worker?.close();
    await queue?.close();
    redis.disconnect();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
