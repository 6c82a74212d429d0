// The `cellblock` command's usage answers: help and bad arguments are answered before anything
// starts (a `cellblock start --help` on a production host once started the whole service on the
// default port and data dir). Run with a scratch Redis data dir and no workers, so that a run that
// did start something (a regression) stays private and is ended by the timeout.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { workerStartSkip } from './fixtures.js';

const workerSkip = workerStartSkip();

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cellblock-command-line-test-'));
const redisDataDir = path.join(scratch, 'redis');
after(() => rmSync(scratch, { recursive: true, force: true }));

function cellblock(...args: string[]) {
  return cellblockWith({}, ...args);
}

function cellblockWith(env: Record<string, string>, ...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/bin/cellblock.ts'), ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 15_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, CELLBLOCK_WORKER_PROCESSES: '0', CELLBLOCK_REDIS_DATA_DIR: redisDataDir, CELLBLOCK_PORT: '0', CELLBLOCK_REDIS_URL: '', ...env },
  });
  return { status: run.status, signal: run.signal, stdout: run.stdout, stderr: run.stderr };
}

for (const args of [['--help'], ['start', '--help'], ['start', '-h'], ['api', 'help'], ['worker', '--help']]) {
  test(`cellblock ${args.join(' ')}: the usage, status 0, nothing started`, () => {
    const run = cellblock(...args);
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^usage: cellblock <command>/);
    assert.equal(existsSync(redisDataDir), false, 'no private Redis was started');
  });
}

for (const args of [['start', '--bogus'], ['start', '8080'], ['api', '--port=1'], ['worker', '--single', '--x']]) {
  test(`cellblock ${args.join(' ')}: one line naming the argument, status 2, nothing started`, () => {
    const run = cellblock(...args);
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2);
    const unexpected = args.at(-1)!;
    assert.equal(run.stderr.split('\n')[0], `cellblock: cellblock ${args[0]} takes no arguments (got ${JSON.stringify(unexpected)}): its settings are CELLBLOCK_* environment variables`);
    assert.match(run.stderr, /\n\nusage: cellblock <command>\n/, 'a command line refused: the usage follows');
    assert.equal(existsSync(redisDataDir), false, 'no private Redis was started');
  });
}

test('cellblock bogus: unknown command, status 2', () => {
  const run = cellblock('bogus');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /^cellblock: unknown command "bogus"/);
});

test('cellblock start with a Redis data dir it cannot make (under a file; on procfs): one line naming the variable, status 2, at once', () => {
  const file = path.join(scratch, 'a-file');
  writeFileSync(file, '');
  const refusals: [string, string][] = [
    [path.join(file, 'redis'), `${file}/redis cannot be made: ${file} is not a directory`],
    // A recursive mkdirSync under /proc never returned (spinning, deaf to SIGTERM).
    ['/proc/cellblock-command-line-test/redis', "/proc/cellblock-command-line-test/redis is on the kernel's proc filesystem (/proc), which holds no files: choose a directory on a disk or a tmpfs"],
  ];
  for (const [dir, reason] of refusals) {
    const run = cellblockWith({ CELLBLOCK_REDIS_DATA_DIR: dir }, 'start');
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stderr, `cellblock: CELLBLOCK_REDIS_DATA_DIR: ${reason}\n`, 'one line');
  }
});

test('cellblock api and worker with a Redis URL ioredis would crash on: one line naming the variable, the password masked, status 2', () => {
  for (const command of ['api', 'worker']) {
    const run = cellblockWith({ CELLBLOCK_REDIS_URL: 'redis://user:hunter2@127.0.0.1:18753/abc' }, command);
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2, run.stderr);
    assert.equal(
      run.stderr,
      'cellblock: CELLBLOCK_REDIS_URL: database "abc": expected a whole number from 0 to 2147483646 after the host (redis://host:port/db), got "redis://***@127.0.0.1:18753/abc"\n',
      'one line',
    );
  }
});

test('cellblock api and worker with a job output maximum below a runtime default job\'s: one line naming the variable, status 2', () => {
  for (const command of ['api', 'worker']) {
    const run = cellblockWith({ CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_MAX_JOB_OUTPUT_BYTES: '1000000' }, command);
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /^cellblock: CELLBLOCK_MAX_JOB_OUTPUT_BYTES: a job of runtime "[\w.+-]+" at its default limits would be refused \(.*; at most 1000000 per job\): set at least \d+\n$/);
  }
});

test("cellblock worker and start with more jobs at once than the sandbox uids allow a compiled language's jobs: one line naming the settings, status 2, before anything starts", () => {
  const env = { CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_WORKER_CONCURRENCY: '513', CELLBLOCK_BACKGROUND_SLOTS: '0' };
  for (const [command, settings] of [['worker', env], ['start', { ...env, CELLBLOCK_REDIS_URL: '' }]] as const) {
    const run = cellblockWith(settings, command);
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /^cellblock: CELLBLOCK_WORKER_CONCURRENCY: 1 worker process\(es\) \(CELLBLOCK_WORKER_PROCESSES\) × 513 jobs at once .* × 2 sandbox uids, .* = 1026, above the machine's 1024 sandbox uids \(60000-61023\): set CELLBLOCK_WORKER_CONCURRENCY \+ CELLBLOCK_BACKGROUND_SLOTS at most 512 per worker process\n$/);
    assert.equal(existsSync(redisDataDir), false, 'no private Redis was started');
  }
});

test('cellblock worker with jobs at once within 2 but not 4 sandbox uids a job: a warning line naming the settings, then its other checks', () => {
  // A data dir without images: the worker's next check refuses it, after the warning.
  const dataDir = path.join(scratch, 'no-images');
  const env = { CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_DATA_DIR: dataDir, CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_WORKER_CONCURRENCY: '300', CELLBLOCK_BACKGROUND_SLOTS: '0' };
  const run = cellblockWith(env, 'worker');
  assert.equal(run.signal, null, 'ended by itself, not by the timeout');
  const warning = run.stdout.split('\n').filter((line) => line.includes('sandbox uids')).map((line) => JSON.parse(line) as { level: number; msg: string; workerConcurrency: number });
  assert.equal(warning.length, 1, run.stdout);
  assert.equal(warning[0]!.level, 40, 'warn');
  assert.equal(warning[0]!.workerConcurrency, 300);
  assert.match(warning[0]!.msg, /^1 worker process\(es\) .* × 300 jobs at once .* = 1200, .*: at full load each job has 3 uids, and interactive jobs \(4\) may fail no_sandbox_uid; /);
  assert.notEqual(run.status, 0, 'refused by a later check (no image built)');
  assert.doesNotMatch(run.stderr, /CELLBLOCK_WORKER_CONCURRENCY/);
});

test('cellblock worker whose pool state dir has no room (what dead workers left reclaimed): one line naming the variable, status 2', { skip: workerSkip }, () => {
  const stateDir = path.join(scratch, 'full-state');
  mkdirSync(stateDir);
  // A tmpfs whose inodes are used up (as by kept judge compiles), under the scratch dir.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=16,mode=0700', 'tmpfs', stateDir]);
  try {
    for (let i = 0; ; i++) {
      try {
        writeFileSync(path.join(stateDir, `f${i}`), '');
      } catch {
        break;
      }
    }
    const run = cellblockWith({ CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:18753', CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_POOL_STATE_DIR: stateDir }, 'worker');
    assert.equal(run.signal, null, 'ended by itself, not by the timeout');
    assert.equal(run.status, 2, run.stderr);
    assert.equal(
      run.stderr,
      `cellblock: CELLBLOCK_POOL_STATE_DIR: ${stateDir} has no room for this worker's files (no space left on device, ENOSPC), with what dead workers left there reclaimed: free space or inodes on its filesystem (df -h, df -i), or give the workers a larger one\n`,
    );
  } finally {
    execFileSync('umount', [stateDir]);
  }
});

test('a setting refused: its one line alone, status 2 (the usage is for a command line refused)', () => {
  const refusals: [Record<string, string>, string[], string][] = [
    [{ CELLBLOCK_PORT: 'abc' }, ['start'], 'cellblock: CELLBLOCK_PORT: expected a whole number, got "abc"\n'],
    [{}, ['api'], 'cellblock: CELLBLOCK_REDIS_URL: unset, and cellblock api needs it (redis://host:port)\n'],
    [{}, ['worker'], 'cellblock: CELLBLOCK_REDIS_URL: unset, and cellblock worker needs it (redis://host:port)\n'],
    [
      { CELLBLOCK_LOCK_DURATION_MS: '2000', CELLBLOCK_STALLED_INTERVAL_MS: '5000' },
      ['start'],
      "cellblock: CELLBLOCK_STALLED_INTERVAL_MS: 5000 is longer than CELLBLOCK_LOCK_DURATION_MS (2000): the stall check would run less often than a lock lasts, and a dead worker's job would wait for it past the lock duration plus two intervals; set at most the lock duration\n",
    ],
  ];
  for (const [env, args, line] of refusals) {
    const run = cellblockWith(env, ...args);
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stderr, line);
    assert.equal(existsSync(redisDataDir), false, 'no private Redis was started');
  }
});

test('cellblock images --help: the usage on stdout, a line at a time, status 0', () => {
  const run = cellblock('images', '--help');
  assert.equal(run.status, 0);
  assert.match(run.stdout, /^usage: cellblock images build .*\n$/s);
  assert.equal(run.stderr, '');
});
