// Shared set-up of the service tests: a private Redis, a BullJobClient on its own prefix, and
// the API app over them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { nanoid } from 'nanoid';
import pino, { type Logger } from 'pino';
import { buildApp, type ApiConfig } from '../../src/api/app.js';
import { jobNotifications } from '../../src/api/notifications.js';
import { DEFAULT_JUDGE_COMPILE_CACHE_BYTES, DEFAULT_WEBHOOK_MEMORY_BYTES, loadConfig } from '../../src/config.js';
import { createExecutor } from '../../src/executor/create.js';
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import { dataDirFromEnv } from '../../src/images/paths.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { openImageStore } from '../../src/images/store.js';
import type { Runtime } from '../../src/images/types.js';
import type { JobRequest } from '../../src/jobs/model.js';
import type { Limits } from '../../src/sandbox/types.js';
import { BullJobClient } from '../../src/queue/client.js';
import { createRedis } from '../../src/queue/connection.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import { startQueueWorker, type JobExecutor, type QueueWorker, type QueueWorkerOptions } from '../../src/queue/worker.js';
import { start, type TestRedis } from '../helpers/redis.js';
import { startCuttableLink, type CuttableLink } from '../helpers/cuttable-link.js';
import { okStage } from '../helpers/stand-in-result.js';

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
  /** The link the API reaches Redis through (ServiceOptions.cuttableLink). */
  link?: CuttableLink;
  close(): Promise<void>;
}

export interface ServiceOptions {
  runtimes?: Runtime[];
  config?: Partial<ApiConfig>;
  maxQueuedJobs?: number;
  resultTtlSeconds?: number;
  redisTimeoutMs?: number;
  /** Keep the rate limit's counters in Redis, as `cellblock api` does (in-process when false). */
  rateLimitInRedis?: boolean;
  /** The API's logger; none when absent. */
  logger?: Logger;
  /** The API reaches Redis through a link the test can cut (ServiceHarness.link); workers
   * started on `redis.url` do not. */
  cuttableLink?: boolean;
}

export async function startService(options: ServiceOptions = {}): Promise<ServiceHarness> {
  const redis = await start();
  const link = options.cuttableLink ? await startCuttableLink(redis.port) : undefined;
  const apiRedisUrl = link?.url ?? redis.url;
  const prefix = `t${nanoid(8)}`;
  const maxQueuedJobs = options.maxQueuedJobs ?? 1000;
  const jobs = new BullJobClient({
    redisUrl: apiRedisUrl,
    prefix,
    resultTtlSeconds: options.resultTtlSeconds ?? 600,
    maxQueuedJobs,
    ...(options.redisTimeoutMs ? { redisTimeoutMs: options.redisTimeoutMs } : {}),
    notifications: jobNotifications(options.runtimes ?? loadRuntimes()),
  });
  const rateLimitRedis = options.rateLimitInRedis ? createRedis(apiRedisUrl, 'producer', 'cellblock-test-ratelimit') : undefined;
  let app: FastifyInstance | undefined;
  const close = async (): Promise<void> => {
    link?.restore();
    await app?.close();
    await jobs.close();
    rateLimitRedis?.disconnect();
    await link?.close();
    await redis.stop();
  };
  try {
    await jobs.ready();
    const config: ApiConfig = { ...loadConfig({}), maxQueuedJobs, ...options.config };
    app = await buildApp({
      jobs,
      runtimes: options.runtimes ?? [testRuntime],
      config,
      ...(rateLimitRedis ? { rateLimitRedis } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    await app.ready();
    return { redis, jobs, app, prefix, ...(link ? { link } : {}), close };
  } catch (error) {
    // A service that did not start leaves no Redis (nor its data dir) behind.
    await close().catch(() => {});
    throw error;
  }
}

/** Keeps every request the API hands to the queue in `into` (the fuzz tests check each against
 * the worker's own check). */
export function recordSubmissions(jobs: BullJobClient, into: JobRequest[]): void {
  const submit = jobs.submit.bind(jobs);
  const submitOnce = jobs.submitOnce.bind(jobs);
  const submitBatch = jobs.submitBatch.bind(jobs);
  jobs.submit = (request) => (into.push(request), submit(request));
  jobs.submitOnce = (request, key) => (into.push(request), submitOnce(request, key));
  jobs.submitBatch = (requests) => (into.push(...requests), submitBatch(requests));
}

export interface TestWorker {
  worker: QueueWorker;
  close(): Promise<void>;
}

/** Worker settings short enough that stall recovery happens within a test. */
export const fastStallSettings = { lockDurationMs: 2000, stalledIntervalMs: 1000, maxStalledCount: 1 };

/** The runtime with `factor` times its CPU and wall time limits (defaults, maxima, compile's). */
export function withSlowCpu(runtime: Runtime, factor = 10): Runtime {
  const scaled = <L extends Partial<Limits>>(limits: L): L => ({
    ...limits,
    ...(limits.cpuTimeMs !== undefined ? { cpuTimeMs: limits.cpuTimeMs * factor } : {}),
    ...(limits.wallTimeMs !== undefined ? { wallTimeMs: limits.wallTimeMs * factor } : {}),
  });
  return {
    ...runtime,
    defaultLimits: scaled(runtime.defaultLimits),
    maxLimits: scaled(runtime.maxLimits),
    ...(runtime.compile ? { compile: { ...runtime.compile, ...(runtime.compile.limits ? { limits: scaled(runtime.compile.limits) } : {}) } } : {}),
  };
}

/** Runtimes whose images are built on this machine; the reason when some are not. */
export function builtRuntimes(): { runtimes: Runtime[]; missing: string[] } {
  const store = openImageStore(dataDirFromEnv());
  const runtimes = loadRuntimes();
  return {
    runtimes: runtimes.filter((runtime) => store.get(runtime.image)),
    missing: runtimes.filter((runtime) => !store.get(runtime.image)).map((runtime) => `${runtime.id} (image ${runtime.image})`),
  };
}

/** Why a worker cannot start here (its start-up checks: an image, root), for a test's `skip`; false
 * where it can. */
export function workerStartSkip(): string | false {
  if (!builtRuntimes().runtimes.length) return 'no image built (bin/cellblock images build python)';
  return process.getuid?.() !== 0 && 'a worker runs as root';
}

/** Silent, unless CELLBLOCK_TEST_LOG_LEVEL names a level (then to stdout) or lines are collected. */
function testLogger(lines: string[] | undefined): Logger {
  const printLevel = process.env.CELLBLOCK_TEST_LOG_LEVEL;
  if (!lines) return pino({ level: printLevel ?? 'silent' });
  return pino(
    { level: printLevel ?? 'warn' },
    {
      write: (line: string) => {
        lines.push(line);
        if (printLevel) process.stdout.write(line);
      },
    },
  );
}

/** A worker in this process on a stand-in executor (tests of the worker's queue side, no sandbox):
 * short locks and stall checks, a one-try webhook; `options` overrides any of these. */
export function startStandInWorker(service: { redis: { url: string }; prefix: string }, executor: JobExecutor, options: Partial<QueueWorkerOptions> = {}): Promise<QueueWorker> {
  return startQueueWorker({
    redisUrl: service.redis.url,
    prefix: service.prefix,
    concurrency: 1,
    backgroundSlots: 0,
    backgroundAfterMs: 0,
    executor,
    logger: pino({ level: 'silent' }),
    lockDurationMs: 5000,
    stalledIntervalMs: 1000,
    maxStalledCount: 1,
    heartbeatTtlMs: 3000,
    shutdownGraceMs: 5000,
    webhook: { attempts: 1, timeoutMs: 1000, backoffMs: 100, destinations: new OutboundPolicy(), memoryBytes: DEFAULT_WEBHOOK_MEMORY_BYTES },
    notifications: jobNotifications(loadRuntimes()),
    ...options,
  });
}

/** A stand-in executor's run of `job` as an echo: its stdout is its input (a live job's, from its
 * client, to its end, told as one output). */
export async function runAsEcho(job: ExecuteRequest): Promise<ExecuteResult> {
  let stdout = Buffer.from(job.stdin ?? '');
  if (job.live) {
    const live = job.live;
    const chunks: Buffer[] = [];
    live.stage('run');
    await new Promise<void>((ended) => live.connectStdin({ write: (data) => void chunks.push(Buffer.from(data)), end: () => ended(), resize: () => {} }));
    stdout = Buffer.concat(chunks);
    live.output('run', 'stdout', stdout);
    live.exit('run', okStage(stdout));
  }
  return { verdict: 'ok', runtime: { id: job.runtimeId, language: 'python', version: '3' }, run: okStage(stdout) };
}

/** A stand-in executor for a worker that is never given a job: one would fail. */
export function idleExecutor(): JobExecutor {
  return {
    execute: async () => {
      throw new Error('no job is run');
    },
    close: async () => {},
  };
}

/** A worker in this process against `redisUrl` that must run no job (its stand-in executor
 * throws if asked to, failing that job; the tests find no job or key either way): tests of its
 * start against a Redis that is away or refuses it. */
export function startIdleWorker(redisUrl: string, prefix: string, logger: Logger): Promise<QueueWorker> {
  return startStandInWorker({ redis: { url: redisUrl }, prefix }, idleExecutor(), {
    logger,
    lockDurationMs: 2000,
    shutdownGraceMs: 1000,
    webhook: { attempts: 1, timeoutMs: 1000, backoffMs: 100, destinations: new OutboundPolicy(), memoryBytes: 1024 * 1024 },
    notifications: jobNotifications([testRuntime]),
  });
}

/** A worker in this process on a real executor, its pool state in `poolStateDir`. */
export async function startTestWorker(
  service: ServiceHarness,
  poolStateDir: string,
  options: {
    concurrency?: number;
    shutdownGraceMs?: number;
    lockDurationMs?: number;
    backgroundSlots?: number;
    backgroundAfterMs?: number;
    /** Collects what the worker logs at warn and above. */
    logLines?: string[];
    /** Default: images/runtimes/*.json. */
    runtimes?: Runtime[];
    /** The notifier's budget (WebhookPolicy.memoryBytes); default DEFAULT_WEBHOOK_MEMORY_BYTES. */
    webhookMemoryBytes?: number;
    /** One delivery's timeout; default 2000 ms. */
    webhookTimeoutMs?: number;
    /** Default: fastStallSettings's. */
    maxStalledCount?: number;
  } = {},
): Promise<TestWorker> {
  const backgroundAfterMs = options.backgroundAfterMs ?? 0;
  const executor = await createExecutor({
    dataDir: dataDirFromEnv(),
    pool: { stateRoot: poolStateDir },
    backgroundAfterCpuMs: backgroundAfterMs,
    judgeCompileCacheBytes: DEFAULT_JUDGE_COMPILE_CACHE_BYTES,
    ...(options.runtimes ? { runtimes: options.runtimes } : {}),
  });
  const worker = await startQueueWorker({
    redisUrl: service.redis.url,
    prefix: service.prefix,
    concurrency: options.concurrency ?? 2,
    backgroundSlots: options.backgroundSlots ?? 0,
    backgroundAfterMs,
    executor,
    logger: testLogger(options.logLines),
    ...fastStallSettings,
    ...(options.lockDurationMs ? { lockDurationMs: options.lockDurationMs, stalledIntervalMs: options.lockDurationMs } : {}),
    ...(options.maxStalledCount !== undefined ? { maxStalledCount: options.maxStalledCount } : {}),
    heartbeatTtlMs: 3000,
    shutdownGraceMs: options.shutdownGraceMs ?? 30_000,
    webhook: { attempts: 4, timeoutMs: options.webhookTimeoutMs ?? 2000, backoffMs: 100, destinations: new OutboundPolicy(), memoryBytes: options.webhookMemoryBytes ?? DEFAULT_WEBHOOK_MEMORY_BYTES },
    notifications: jobNotifications(options.runtimes ?? loadRuntimes()),
  });
  return { worker, close: () => worker.close() };
}

export async function listen(service: ServiceHarness): Promise<string> {
  return service.app.listen({ host: '127.0.0.1', port: 0 });
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json(), headers: response.headers };
}

export async function getJson(url: string, method = 'GET'): Promise<{ status: number; json: any }> {
  const response = await fetch(url, { method });
  return { status: response.status, json: await response.json() };
}

const finished = (view: { status: string }) => ['done', 'failed', 'cancelled'].includes(view.status);

/** Polls a job until `done(view)` (default: finished) or the deadline; returns its last view. */
export async function pollJob(baseUrl: string, id: string, timeoutMs: number, done: (view: any) => boolean = finished): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, json } = await getJson(`${baseUrl}/v1/jobs/${id}`);
    if (status === 200 && done(json)) return json;
    if (Date.now() > deadline) throw new Error(`job ${id} not finished after ${timeoutMs} ms: ${JSON.stringify(json)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A scratch dir for a test's worker pool state. Tests make it after the service they start
 * (startService cleans up after itself when it fails), so that a failed start leaves no dir. */
export async function scratchDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cellblock-service-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

// The sources through tsx, as the tests run them (bin/cellblock runs them too whenever a source is newer than dist/).
export const cellblockSource = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/bin/cellblock.ts');

export interface CellblockProcess {
  child: ChildProcess;
  /** Everything it has printed so far (pino's JSON lines). */
  output(): string;
}

/** Runs the `cellblock` command with `env` added, and waits until it prints `readyText`. With
 * `cgroupDirs` (one per hierarchy), it starts in those cgroups, as a service manager starts a
 * unit in the cgroup it made for it. */
export async function spawnCellblock(
  args: string[],
  readyText: string,
  env: Record<string, string | undefined>,
  readyTimeoutMs = 60_000,
  cgroupDirs: string[] = [],
): Promise<CellblockProcess> {
  const command = [process.execPath, '--import', 'tsx', cellblockSource, ...args];
  const options = { env: { ...process.env, CELLBLOCK_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const joinCgroups = 'for dir in "$@"; do [ "$dir" = -- ] && break; echo $$ > "$dir/cgroup.procs" || exit 1; shift; done; shift; exec "$@"';
  const child =
    cgroupDirs.length === 0
      ? spawn(command[0]!, command.slice(1), options)
      : spawn('sh', ['-c', joinCgroups, 'sh', ...cgroupDirs, '--', ...command], options);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + readyTimeoutMs;
  while (!output.includes(readyText)) {
    if (child.exitCode !== null) throw new Error(`cellblock ${args.join(' ')} exited at start (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cellblock ${args.join(' ')} did not print ${readyText} in ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, output: () => output };
}

/** Runs the `cellblock` command with `env` added (logging silenced) until it exits on its own:
 * its exit code and what it wrote to stderr. Killed after `timeoutMs` (code null). */
export async function runCellblockToExit(args: string[], env: Record<string, string | undefined>, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cellblockSource, ...args], {
    env: { ...process.env, CELLBLOCK_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
