// The service under test, as it is deployed: a private redis-server (the one `cellblock start`
// runs, same persistence settings), `cellblock api` and `cellblock worker` as separate child
// processes of the compiled build (what bin/cellblock runs) with their production defaults,
// each logging at info to a file. Only the knobs a load test must turn are set: the rate limit
// and the queue cap (both would refuse the load), and private state dirs so that nothing is
// shared with another service on the machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountPointsUnder } from '../../src/pool/mountinfo.js';
import { freeLoopbackPort, startRedisServer, type RedisAppendFsync, type RedisServer, type RedisServerOptions } from '../../src/queue/redis-server.js';
import { dyingWithParent } from '../../src/parent-death.js';
import { kibToBytes } from '../../src/units.js';
import { makeScratchDir, removeScratchDir, SCRATCH_POOL_DIR } from './scratch.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** How stale /metrics' pool figures may be: the worker's heartbeat interval in the stack. */
export const POOL_FIGURES_LAG_MS = 500;

/** Pool takes that found a ready container (hits) and that prepared one on the spot (misses),
 * summed over images, as /metrics shows them (from the workers' heartbeats). */
export async function poolTakes(url: string): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (figure: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith('cellblock_pool{') && line.includes(`figure="${figure}"`))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return { hits: sum('hits'), misses: sum('misses') };
}

export class StackError extends Error {
  override readonly name = 'StackError';
}

export interface StackOptions {
  /** Jobs the worker process runs at once (CELLBLOCK_WORKER_CONCURRENCY); default: the service's own. */
  workerConcurrency?: number;
  logLevel?: string;
  /** Extra node flags for the worker and API processes (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Redis's appendfsync; default the service's own (CELLBLOCK_REDIS_FSYNC's). For measuring what durability costs. */
  redisAppendFsync?: RedisAppendFsync;
}

export interface Stack {
  url: string;
  redisUrl: string;
  queuePrefix: string;
  scratchDir: string;
  apiPid: number;
  workerPid: number;
  redisPid: number;
  /** Resident set size of a process, from /proc. */
  rssBytes(pid: number): number;
  stop(): Promise<void>;
}

/** The compiled command, as bin/cellblock runs it where the build exists (setup.sh and the
 * Dockerfile make it), built afresh from the sources once per load test (`npm run build:ts`,
 * ~7 s), so that a stale build never stands in for the code under test. Until 2026-12-04 19:57
 * the service ran from the sources through tsx, which a deployment does not: tsx turns on
 * Node's source maps (every error's stack is mapped back to the TypeScript) and loads modules
 * through its hooks. */
let compiledCommand: string | undefined;
function compiledCellblock(): string {
  if (compiledCommand === undefined) {
    execFileSync('npm', ['run', '--silent', 'build:ts'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    compiledCommand = path.join(REPO_ROOT, 'dist/src/bin/cellblock.js');
  }
  return compiledCommand;
}

/** The child logs to a pipe read by a `cat` of its own that appends to the file: a service
 * logging to stdout, read by a log collector (journald, a container runtime). Piped through this
 * process instead, every log line woke the load test's own process (the one that sends the
 * requests and reads the answers) to copy it, and the service was charged for the harness. Quick
 * sporadic load tests (c true, python hello, 100 jobs), through this process vs a collector, two
 * alternating pairs: p50 above bare c true 7.81, 8.94 -> 7.30, 7.59 ms, python hello 6.37, 5.79
 * -> 6.09, 6.18 ms; the load generator's CPU per python job 1.91, 1.89 -> 1.48, 1.31 ms. (Straight
 * to the file did as well, but a write stuck in the filesystem would then stall the service's
 * event loop, its logger writing synchronously, which a deployment logging to stdout does not
 * risk.) */
function launch(args: string[], env: NodeJS.ProcessEnv, logPath: string, nodeFlags: string[]): ChildProcess {
  const command = compiledCellblock();
  const log = openSync(logPath, 'a');
  let collector: ChildProcess;
  try {
    collector = spawn('/bin/cat', [], { stdio: ['pipe', log, log] });
    // Without a listener a failed spawn would end the load test with an unhandled 'error'; the
    // service's own start-up check then reports the service's failure.
    collector.once('error', (error) => process.stderr.write(`loadtest: log collector for ${args.join(' ')}: ${error.message}\n`));
  } finally {
    closeSync(log); // the collector has its own copy
  }
  try {
    // A load test killed outright still stops its service: SIGTERM, on which the worker tears
    // its pool down as at any stop.
    const service = dyingWithParent('TERM', process.execPath, [...nodeFlags, command, ...args]);
    return spawn(service.file, service.args, {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', collector.stdin!, collector.stdin!],
    });
  } finally {
    // The service holds the pipe now: the collector ends when the service does.
    collector.stdin!.destroy();
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await done;
  clearTimeout(timer);
}

/** Waits until /readyz says Redis answers and a worker is alive (its pool warmed and heartbeat up). */
async function waitUntilReady(url: string, children: { name: string; child: ChildProcess; logPath: string }[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const { name, child, logPath } of children) {
      if (exited(child)) {
        const tail = readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n');
        throw new StackError(`${name} exited at start (${child.exitCode ?? child.signalCode}); its log ends:\n${tail}`);
      }
    }
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new StackError(`the service at ${url} was not ready within ${START_TIMEOUT_MS} ms`);
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new StackError(`no VmRSS for pid ${pid}`);
  return kibToBytes(Number(match[1]));
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const scratchDir = await makeScratchDir('loadtest');
  const children: { name: string; child: ChildProcess; logPath: string }[] = [];
  let redis: RedisServer | undefined;
  // Should this process die without stopping the stack, the service still shuts down cleanly.
  const terminateOnExit = () => children.forEach(({ child }) => exited(child) || child.kill('SIGTERM'));
  process.once('exit', terminateOnExit);
  const stop = async () => {
    process.off('exit', terminateOnExit);
    // API first (no new jobs), then the worker (tears its pool down), then Redis.
    for (const { child } of children) await stopChild(child);
    await redis?.stop();
    const left = mountPointsUnder(scratchDir);
    if (left.length > 0) process.stderr.write(`loadtest: the worker left ${left.length} mounts under ${scratchDir}; reclaiming them\n`);
    if (!(await removeScratchDir(scratchDir))) {
      process.stderr.write(`loadtest: left ${scratchDir}: something is still mounted under it (the next run retries)\n`);
    }
  };
  try {
    mkdirSync(path.join(scratchDir, 'redis'));
    const redisOptions: RedisServerOptions = { dataDir: path.join(scratchDir, 'redis') };
    if (options.redisAppendFsync) redisOptions.appendFsync = options.redisAppendFsync;
    redis = await startRedisServer(redisOptions);
    const port = await freeLoopbackPort();
    const queuePrefix = 'loadtest';
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CELLBLOCK_REDIS_URL: redis.url,
      CELLBLOCK_QUEUE_PREFIX: queuePrefix,
      CELLBLOCK_HOST: '127.0.0.1',
      CELLBLOCK_PORT: String(port),
      CELLBLOCK_POOL_STATE_DIR: path.join(scratchDir, SCRATCH_POOL_DIR),
      CELLBLOCK_WORKER_PROCESSES: '1',
      CELLBLOCK_RATE_LIMIT_REQUESTS: String(1_000_000_000),
      CELLBLOCK_MAX_QUEUED_JOBS: String(100_000),
      CELLBLOCK_LOG_LEVEL: options.logLevel ?? 'info',
      // A heartbeat every 500 ms: /metrics' pool figures (advertised with it) then lag the
      // worker by at most that, and the report can read them around each run.
      CELLBLOCK_WORKER_HEARTBEAT_TTL_MS: String(3 * POOL_FIGURES_LAG_MS),
    };
    if (options.workerConcurrency !== undefined) env.CELLBLOCK_WORKER_CONCURRENCY = String(options.workerConcurrency);
    const nodeFlags = options.nodeFlags ?? [];
    for (const name of ['api', 'worker'] as const) {
      const logPath = path.join(scratchDir, `${name}.log`);
      children.push({ name, child: launch([name], env, logPath, nodeFlags), logPath });
    }
    const url = `http://127.0.0.1:${port}`;
    await waitUntilReady(url, children);
    return {
      url,
      redisUrl: redis.url,
      queuePrefix,
      scratchDir,
      apiPid: children[0]!.child.pid!,
      workerPid: children[1]!.child.pid!,
      redisPid: redis.pid!,
      rssBytes,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
