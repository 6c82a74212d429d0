// The limits a worker inherits, checked before workers start (src/bin/host-limits.ts): its open
// files against its jobs at once and its ready containers, its processes against the runtimes'
// pids limits; and the same refusals from the command itself, started under low limits (prlimit).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkOpenFiles, checkProcesses, openFilesPlan, readProcessLimits } from '../../src/bin/host-limits.js';
import { WorkerPreflightError } from '../../src/bin/worker-preflight.js';
import { JOB_DESCRIPTORS, WORKER_OWN_DESCRIPTORS } from '../../src/executor/descriptors.js';
import { mountPointsUnder } from '../../src/pool/mountinfo.js';
import { freeLoopbackPort } from '../../src/queue/redis-server.js';
import { PREPARED_CONTAINER_DESCRIPTORS, PREPARING_CONTAINER_DESCRIPTORS } from '../../src/sandbox/descriptors.js';
import { reclaimPoolState } from '../helpers/pool-state.js';
import { until } from '../helpers/until.js';
import { builtRuntimes, cellblockSource, getJson, postJson, testRuntime } from './fixtures.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             4096                 unlimited            processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the limits are read from /proc/self/limits: soft and hard, unlimited as Infinity', () => {
  assert.deepEqual(readProcessLimits(LIMITS), { openFiles: { soft: 1024, hard: 524288 }, processes: { soft: 4096, hard: Number.POSITIVE_INFINITY } });
  const own = readProcessLimits();
  // Node raises its soft open files limit to the hard one as it starts.
  assert.equal(own.openFiles.soft, own.openFiles.hard);
  assert.throws(() => readProcessLimits('Limit Soft Hard\n'), /no "Max open files" line/);
});

const settings = { workerConcurrency: 4, backgroundSlots: 4, backgroundAfterMs: 250, poolRefillConcurrency: 2 };
/** What a worker of `settings` needs before any ready container. */
const needed = WORKER_OWN_DESCRIPTORS + 8 * JOB_DESCRIPTORS + 2 * PREPARING_CONTAINER_DESCRIPTORS;

test("a worker's open files: its own, its jobs' at once, its refills'; the rest holds its ready containers", () => {
  assert.deepEqual(openFilesPlan(settings, needed + 10 * PREPARED_CONTAINER_DESCRIPTORS + 5), { limit: needed + 10 * PREPARED_CONTAINER_DESCRIPTORS + 5, needed, readyContainers: 10 });
  // No background lane: its slots are no jobs at once.
  assert.equal(openFilesPlan({ ...settings, backgroundAfterMs: 0 }, 100_000).needed, needed - 4 * JOB_DESCRIPTORS);
  assert.equal(openFilesPlan(settings, Number.POSITIVE_INFINITY).readyContainers, Number.MAX_SAFE_INTEGER);
  assert.equal(openFilesPlan(settings, 256).readyContainers, 0);
});

test('an open files limit below what the jobs at once need is refused in one line: the limit, what is needed, how to raise it', () => {
  assert.throws(
    () => checkOpenFiles(settings, 256, 100),
    (error: unknown) =>
      error instanceof WorkerPreflightError &&
      error.message ===
        `the open files limit (RLIMIT_NOFILE, hard) of this process is 256, below the ${needed} descriptors a worker process may need: 8 jobs at once (CELLBLOCK_WORKER_CONCURRENCY 4 + CELLBLOCK_BACKGROUND_SLOTS 4), up to ${JOB_DESCRIPTORS} each; 2 container(s) prepared at once (CELLBLOCK_POOL_REFILL_CONCURRENCY), up to ${PREPARING_CONTAINER_DESCRIPTORS} each; ${WORKER_OWN_DESCRIPTORS} of its own. Raise it (systemd: LimitNOFILE=; a shell, as root: ulimit -Hn N before the command), or run fewer jobs at once (at most 1 here)`,
  );
  // Exactly enough for the jobs: no ready container, said as a warning.
  const { plan, warning } = checkOpenFiles(settings, needed, 100);
  assert.equal(plan.readyContainers, 0);
  assert.match(warning!, /leaves each worker process room for 0 ready container\(s\) .* of the 100 its pools could keep .*: each keeps at most 0 ready/);
  assert.doesNotMatch(warning!, /\n/);
  // Room for every container the pools could keep: nothing to say.
  assert.deepEqual(checkOpenFiles(settings, 20_000, 100), { plan: openFilesPlan(settings, 20_000) });
});

test("a processes limit below a runtime's default pids is refused, below its maximum warned of; the soft limit is the one the kernel applies", () => {
  const java = { ...testRuntime, id: 'java', defaultLimits: { ...testRuntime.defaultLimits, pids: 128 }, maxLimits: { ...testRuntime.maxLimits, pids: 256 } };
  const compiled = { ...testRuntime, id: 'c', compile: { argv: ['cc'], limits: { pids: 64 } } };
  assert.throws(
    () => checkProcesses([testRuntime, java], { soft: 8, hard: 8 }),
    (error: unknown) =>
      error instanceof WorkerPreflightError &&
      error.message ===
        "the processes limit (RLIMIT_NPROC) of this process is 8, which every sandbox inherits and the kernel counts per sandbox uid (its processes and threads): below the 128 pids that java's stages have at its default limits, so that jobs would fail by the host's limit rather than their own (a thread or process not started); raise it to at least 256 (systemd: LimitNPROC=; a shell, as root: ulimit -u N before the command)",
  );
  // A compile's own pids count as a default.
  assert.throws(() => checkProcesses([compiled], { soft: 40, hard: Number.POSITIVE_INFINITY }), /is 40 \(hard Infinity\), .*below the 64 pids that c's stages have/);
  assert.equal(
    checkProcesses([testRuntime, java], { soft: 200, hard: 200 }),
    'the processes limit (RLIMIT_NPROC) of this process is 200, which every sandbox inherits and the kernel counts per sandbox uid (its processes and threads): below the 256 pids a job of java may ask for (its maxLimits), so that a job asking for more than 200 is held to 200; raise it to at least 256 (systemd: LimitNPROC=; a shell, as root: ulimit -u N before the command)',
  );
  assert.equal(checkProcesses([testRuntime, java], { soft: 256, hard: 256 }), undefined);
  assert.equal(checkProcesses([], { soft: 1, hard: 1 }), undefined);
});

// The command under low limits, as a shell's `ulimit` or a unit's LimitNOFILE= / LimitNPROC= gives
// them: refused before anything starts (its Redis URL names no server).
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cellblock-host-limits-test-'));
after(async () => {
  // A worker that was not refused (a regression) and was killed at the timeout left its pool.
  if (mountPointsUnder(scratch).length > 0) await reclaimPoolState(path.join(scratch, 'pool'));
  rmSync(scratch, { recursive: true, force: true });
});
const commandSkip =
  process.getuid?.() !== 0 ? 'needs root' : builtRuntimes().runtimes.length === 0 ? 'no language image is built' : spawnSync('prlimit', ['--version']).error ? 'prlimit is missing (util-linux)' : false;

function workerUnder(limit: string, env: Record<string, string> = {}) {
  const run = spawnSync('prlimit', [limit, '--', process.execPath, '--import', 'tsx', cellblockSource, 'worker'], {
    encoding: 'utf8',
    timeout: 30_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_POOL_STATE_DIR: path.join(scratch, 'pool'), CELLBLOCK_LOG_LEVEL: 'silent', ...env },
  });
  return { status: run.status, signal: run.signal, stderr: run.stderr };
}

test('cellblock worker under a low open files limit (prlimit --nofile): one line saying what it needs, status 1, before its pool', { skip: commandSkip }, () => {
  const run = workerUnder('--nofile=256:256', { CELLBLOCK_WORKER_CONCURRENCY: '3', CELLBLOCK_BACKGROUND_SLOTS: '3' });
  assert.equal(run.signal, null, 'ended by itself, not by the timeout');
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /^cellblock: the open files limit \(RLIMIT_NOFILE, hard\) of this process is 256, below the \d+ descriptors a worker process may need: 6 jobs at once .*ulimit -Hn.*\n$/);
});

test('cellblock worker unconfigured under an open files limit below its cores\' default: the default is what fits, said in a warning, and it starts', { skip: os.availableParallelism() < 2 ? 'one core: its default, 2 jobs at once, fits' : commandSkip, timeout: 60_000 }, async () => {
  // 512 holds (512 - 64 - 2 × 18) / 81 = 5 jobs at once: 2 + 2, where two cores' default is 4 + 4.
  const limit = 512;
  const cores = os.availableParallelism();
  const child = spawn('prlimit', [`--nofile=${limit}:${limit}`, '--', process.execPath, '--import', 'tsx', cellblockSource, 'worker'], {
    env: { ...process.env, CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_POOL_STATE_DIR: path.join(scratch, 'pool'), CELLBLOCK_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const ended = await Promise.race([until(async () => output.includes('RLIMIT_NOFILE'), 30_000, 50, `the warning:\n${output}`).then(() => false), exited.then(() => true)]);
    assert.equal(ended, false, `not refused:\n${output}`);
    await until(async () => output.includes('\n'), 5000, 20, 'a whole line');
    const line = JSON.parse(output.split('\n').find((entry) => entry.includes('RLIMIT_NOFILE'))!) as { msg: string; openFilesLimit: number; workerConcurrency: number };
    assert.equal(line.openFilesLimit, limit);
    assert.equal(line.workerConcurrency, 2);
    assert.match(line.msg, new RegExp(`^the open files limit \\(RLIMIT_NOFILE, hard\\) of this process, ${limit}, .*default CELLBLOCK_WORKER_CONCURRENCY ${2 * cores} .*: 4 jobs at once \\(CELLBLOCK_WORKER_CONCURRENCY 2 \\+ CELLBLOCK_BACKGROUND_SLOTS 2\\)`));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('cellblock worker under a low processes limit (prlimit --nproc): one line naming the runtime it would fail, status 1', { skip: commandSkip }, () => {
  const run = workerUnder('--nproc=8:8');
  assert.equal(run.signal, null, 'ended by itself, not by the timeout');
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /^cellblock: the processes limit \(RLIMIT_NPROC\) of this process is 8, .*below the \d+ pids that [\w.+-]+'s stages have at its default limits.*LimitNPROC=.*\n$/);
});

/** The sum of a pool figure over every image key, from /metrics' text. */
function poolFigure(metrics: string, figure: string, keys: (image: string) => boolean = () => true): number {
  let sum = 0;
  for (const match of metrics.matchAll(/^cellblock_pool\{image="([^"]+)",figure="(\w+)"\} (\d+)$/gm)) {
    if (match[2] === figure && keys(match[1]!)) sum += Number(match[3]);
  }
  return sum;
}

test('cellblock start under an open files limit that holds fewer ready containers than its pools could keep: a warning, each worker keeps at most that many, and jobs run', { skip: commandSkip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(path.join(scratch, 'start-'));
  const port = await freeLoopbackPort();
  // 1 job at once, 2 refills: 64 + 81 + 36 = 181 needed; the rest (119) holds 9 ready containers,
  // of the 22 or so its pools would warm (one per image's runs and compiles).
  const limit = WORKER_OWN_DESCRIPTORS + JOB_DESCRIPTORS + 2 * PREPARING_CONTAINER_DESCRIPTORS + 9 * PREPARED_CONTAINER_DESCRIPTORS + 11;
  const child = spawn('prlimit', [`--nofile=${limit}:${limit}`, '--', process.execPath, '--import', 'tsx', cellblockSource, 'start'], {
    env: {
      ...process.env,
      CELLBLOCK_REDIS_URL: '',
      CELLBLOCK_LOG_LEVEL: 'info',
      CELLBLOCK_PORT: String(port),
      CELLBLOCK_REDIS_DATA_DIR: path.join(dir, 'redis'),
      CELLBLOCK_POOL_STATE_DIR: path.join(dir, 'pool'),
      CELLBLOCK_WORKER_PROCESSES: '1',
      CELLBLOCK_WORKER_CONCURRENCY: '1',
      CELLBLOCK_BACKGROUND_SLOTS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(async () => (await getJson(`${base}/readyz`).catch(() => ({ status: 0 }))).status === 200, 60_000, 200, `ready:\n${output}`);
    const warning = output.split('\n').find((line) => line.includes('leaves each worker process room for'));
    assert.ok(warning, `the start warns of the limit:\n${output}`);
    assert.match(warning, /room for 9 ready container\(s\) .* each keeps at most 9 ready/);
    const metrics = async () => (await fetch(`${base}/metrics`)).text();
    // The pools warm every image's runs and compiles: the cap stops them at 9 ready (or coming).
    await until(async () => poolFigure(await metrics(), 'prepared') >= 9, 60_000, 200, 'the pools warmed up to the cap');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const warmed = await metrics();
    assert.equal(poolFigure(warmed, 'ready') + poolFigure(warmed, 'preparing'), 9, warmed.split('\n').filter((line) => line.startsWith('cellblock_pool{')).join('\n'));
    for (const [language, source] of [
      ['python', 'print("hello, world")'],
      ['c', '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }'],
    ] as const) {
      const hello = await postJson(`${base}/v1/jobs?wait=true`, { language, source });
      assert.equal(hello.json.result?.stdout, 'hello, world\n', JSON.stringify(hello.json));
    }
    assert.doesNotMatch(output, /EMFILE/, 'no descriptor ran out');
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output.slice(-3000));
    assert.deepEqual(mountPointsUnder(dir), [], 'nothing left mounted');
  }
});
