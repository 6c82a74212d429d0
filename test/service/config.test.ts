// Settings from the environment: defaults that work on one machine, and every malformed value a
// ConfigError naming its variable (cellblock prints it with the usage and exits 2), never a crash
// further in (pino refusing a level, listen refusing a port).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import proxyAddr from '@fastify/proxy-addr';
import { checkMaxJobOutputBytes, checkSandboxUids, ConfigError, DEFAULT_MAX_JOB_OUTPUT_BYTES, defaultWorkerConcurrency, loadConfig, makeSettingDirectory, openFilesCapWarning } from '../../src/config.js';
import { checkOpenFiles } from '../../src/bin/host-limits.js';
import { WorkerPreflightError } from '../../src/bin/worker-preflight.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { MiB } from '../../src/units.js';

describe('configuration', () => {
  test('defaults with nothing set', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.maxArgs, 128);
    assert.equal(config.maxJobOutputBytes, 128 * MiB);
    assert.equal(config.judgeCompileCacheBytes, 256 * MiB);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.cgroupBase, 'root');
    // A dead worker's job is re-queued within lock duration + two stall intervals: 40 s, not 90.
    assert.deepEqual([config.lockDurationMs, config.stalledIntervalMs, config.maxStalledCount], [30_000, 5000, 1]);
  });

  test("the stall check interval: 5 s, at most half the lock duration (the lock plus two intervals then bounds a dead worker's job), or the variable's", () => {
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '120000' }).stalledIntervalMs, 5000, 'not longer with a longer lock');
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '30000' }).stalledIntervalMs, 5000);
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '9999' }).stalledIntervalMs, 4999);
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '2000' }).stalledIntervalMs, 1000);
    // The least lock: the least interval the variable takes.
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '1000' }).stalledIntervalMs, 500);
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '1000', CELLBLOCK_STALLED_INTERVAL_MS: '1000' }).stalledIntervalMs, 1000, 'up to the lock when set');
    assert.equal(loadConfig({ CELLBLOCK_STALLED_INTERVAL_MS: '30000' }).stalledIntervalMs, 30_000);
  });

  test('a stall check interval longer than the lock duration: refused in one line naming both', () => {
    assert.equal(loadConfig({ CELLBLOCK_LOCK_DURATION_MS: '2000', CELLBLOCK_STALLED_INTERVAL_MS: '2000' }).stalledIntervalMs, 2000, 'as long: taken');
    for (const [env, expected] of [
      [{ CELLBLOCK_STALLED_INTERVAL_MS: '30001' }, /^CELLBLOCK_STALLED_INTERVAL_MS: 30001 is longer than CELLBLOCK_LOCK_DURATION_MS \(30000\): .*; set at most the lock duration$/],
      [{ CELLBLOCK_LOCK_DURATION_MS: '2000', CELLBLOCK_STALLED_INTERVAL_MS: '5000' }, /^CELLBLOCK_STALLED_INTERVAL_MS: 5000 is longer than CELLBLOCK_LOCK_DURATION_MS \(2000\)/],
    ] as const) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === 'CELLBLOCK_STALLED_INTERVAL_MS' && expected.test(error.message) && !error.message.includes('\n'),
        JSON.stringify(env),
      );
    }
  });

  test('values in range are taken', () => {
    const config = loadConfig({ CELLBLOCK_PORT: '65535', CELLBLOCK_LOG_LEVEL: 'debug', CELLBLOCK_MAX_FILES: ' 3 ', CELLBLOCK_REDIS_URL: 'redis://10.0.0.5:6380/2' });
    assert.deepEqual([config.port, config.logLevel, config.maxFiles, config.redisUrl], [65535, 'debug', 3, 'redis://10.0.0.5:6380/2']);
    assert.equal(loadConfig({ CELLBLOCK_JUDGE_COMPILE_CACHE_BYTES: '0' }).judgeCompileCacheBytes, 0, 'none kept');
    assert.equal(loadConfig({ CELLBLOCK_CGROUP_BASE: 'delegated' }).cgroupBase, 'delegated');
  });

  test('the Redis URL: user and password, host, port, database, family=4|6; refused whole at start, its credentials never shown', () => {
    for (const url of ['rediss://user:p%40ss@redis.internal:6380/15', 'redis://:secret@[::1]:6379', 'redis://10.0.0.5/0?family=6', 'redis://h:6379/2147483646']) {
      assert.equal(loadConfig({ CELLBLOCK_REDIS_URL: url }).redisUrl, url);
    }
    const refused: [string, RegExp][] = [
      // Was `SELECT NaN` at the first command: an uncaught ReplyError.
      ['redis://127.0.0.1:18753/abc', /database "abc": expected a whole number from 0 to 2147483646/],
      ['redis://127.0.0.1:6379/1/2', /database "1\/2"/],
      // Redis's `databases` is at most INT_MAX: index INT_MAX is never there.
      ['redis://127.0.0.1:6379/2147483647', /database "2147483647"/],
      // Was a TypeError with ioredis's stack.
      ['redis://127.0.0.1:99999', /port 99999: expected a port from 1 to 65535/],
      ['redis://127.0.0.1:0', /port 0: expected a port from 1 to 65535/],
      ['redis:///0', /no host/],
      ['redis://:6379', /no host/],
      ['redis://redis host:6379', /not a URL of the form redis:\/\/\[user:password@\]host\[:port\]\[\/db\]/],
      // ioredis takes any parameter as an option of its name, or ignores it: either silently.
      ['redis://127.0.0.1:6379?db=3', /query parameter "db" is not taken: the only one is family=4 or 6/],
      ['redis://127.0.0.1:6379/?connectTimeout=10', /query parameter "connectTimeout" is not taken/],
      ['redis://127.0.0.1:6379?family=5', /query parameter "family": expected family=4 or 6/],
      // ioredis took a query's password too: refused, and its value never shown.
      ['redis://127.0.0.1:6379?password=hunter2-secret', /query parameter "password" is not taken/],
      ['redis://127.0.0.1:6379?family=hunter2-secret', /query parameter "family": expected/],
      ['redis://127.0.0.1:6379#x', /a fragment/],
      ['redis://127.0.0.1:6379#hunter2-secret', /a fragment/],
      ['REDIS://127.0.0.1:6379', /expected redis:\/\//],
    ];
    for (const [url, expected] of refused) {
      for (const withPassword of [url, url.replace('://', '://user:hunter2-secret@')]) {
        assert.throws(
          () => loadConfig({ CELLBLOCK_REDIS_URL: withPassword }),
          (error: unknown) =>
            error instanceof ConfigError && error.variable === 'CELLBLOCK_REDIS_URL' && expected.test(error.message) && !error.message.includes('hunter2'),
          withPassword,
        );
      }
    }
    assert.throws(() => loadConfig({ CELLBLOCK_REDIS_URL: 'user:hunter2@localhost:6379' }), (error: Error) => !error.message.includes('hunter2') && error.message.includes('"***@localhost:6379"'));
  });

  test("the job output maximum: at least what a job of every runtime stores at its default limits, else refused naming the runtime and the figure", () => {
    const runtimes = loadRuntimes();
    checkMaxJobOutputBytes(DEFAULT_MAX_JOB_OUTPUT_BYTES, runtimes);
    // Below the runtimes' default outputBytes (1 MiB): every plain job was refused (or failed).
    let needed = 0;
    assert.throws(
      () => checkMaxJobOutputBytes(1_000_000, runtimes),
      (error: unknown) => {
        const figures = /^CELLBLOCK_MAX_JOB_OUTPUT_BYTES: a job of runtime "([\w.+-]+)" at its default limits would be refused \(.* could store (\d+) bytes of output; at most 1000000 per job\): set at least (\d+)$/.exec((error as Error).message);
        needed = Number(figures?.[3]);
        return error instanceof ConfigError && figures !== null && runtimes.some((runtime) => runtime.id === figures[1]) && figures[2] === figures[3];
      },
    );
    assert.ok(needed >= 1024 * 1024, `${needed}: at least a run's default outputBytes`);
    checkMaxJobOutputBytes(needed, runtimes);
    assert.throws(() => checkMaxJobOutputBytes(needed - 1, runtimes), new RegExp(`at most ${needed - 1} per job\\): set at least ${needed}$`));
  });

  test("worker processes × jobs at once × 2 uids, a compiled language's job's: up to the machine's 1024 sandbox uids, one job past refused naming the settings", () => {
    const uids = (env: Record<string, string>) => () => checkSandboxUids(loadConfig(env));
    const refusal = (variable: string, expected: RegExp) => (error: unknown) => error instanceof ConfigError && error.variable === variable && expected.test(error.message) && !error.message.includes('\n');
    // At the bound: 1 × 512 × 2, and 4 × (64 + 64 in the background) × 2 (a warning each: × 4 is past it).
    assert.ok(uids({ CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_WORKER_CONCURRENCY: '512', CELLBLOCK_BACKGROUND_SLOTS: '0' })());
    assert.ok(uids({ CELLBLOCK_WORKER_PROCESSES: '4', CELLBLOCK_WORKER_CONCURRENCY: '64', CELLBLOCK_BACKGROUND_SLOTS: '64' })());
    // No background lane: its slots run nothing.
    assert.ok(uids({ CELLBLOCK_WORKER_CONCURRENCY: '512', CELLBLOCK_BACKGROUND_SLOTS: '1000', CELLBLOCK_BACKGROUND_AFTER_MS: '0' })());
    // API only (`start` with 0 processes) needs none.
    assert.equal(uids({ CELLBLOCK_WORKER_PROCESSES: '0', CELLBLOCK_WORKER_CONCURRENCY: '100000' })(), undefined);
    assert.throws(
      uids({ CELLBLOCK_WORKER_PROCESSES: '1', CELLBLOCK_WORKER_CONCURRENCY: '513', CELLBLOCK_BACKGROUND_SLOTS: '0' }),
      refusal(
        'CELLBLOCK_WORKER_CONCURRENCY',
        /^CELLBLOCK_WORKER_CONCURRENCY: 1 worker process\(es\) \(CELLBLOCK_WORKER_PROCESSES\) × 513 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 513 \+ CELLBLOCK_BACKGROUND_SLOTS 0\) × 2 sandbox uids, what a compiled language's job holds at once \(its compile's beside a run's\) = 1026, above the machine's 1024 sandbox uids \(60000-61023\): set CELLBLOCK_WORKER_CONCURRENCY \+ CELLBLOCK_BACKGROUND_SLOTS at most 512 per worker process$/,
      ),
    );
    assert.throws(
      uids({ CELLBLOCK_WORKER_PROCESSES: '4', CELLBLOCK_WORKER_CONCURRENCY: '64', CELLBLOCK_BACKGROUND_SLOTS: '65' }),
      refusal('CELLBLOCK_WORKER_CONCURRENCY', /4 worker process\(es\) .* × 129 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 64 \+ CELLBLOCK_BACKGROUND_SLOTS 65\) × 2 .* = 1032, .*: set CELLBLOCK_WORKER_CONCURRENCY \+ CELLBLOCK_BACKGROUND_SLOTS at most 128 per worker process, or at most 3 worker processes \(CELLBLOCK_WORKER_PROCESSES\) of 129 jobs at once$/),
    );
    assert.throws(
      uids({ CELLBLOCK_WORKER_CONCURRENCY: '513', CELLBLOCK_BACKGROUND_AFTER_MS: '0' }),
      refusal('CELLBLOCK_WORKER_CONCURRENCY', /× 513 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 513\) × 2 .*: set CELLBLOCK_WORKER_CONCURRENCY at most 512 per worker process$/),
    );
  });

  test('a refusal of the jobs at once names the setting given, and a way out it leaves open', () => {
    const refused = (env: Record<string, string>, variable: string, expected: RegExp) =>
      assert.throws(
        () => checkSandboxUids(loadConfig(env)),
        (error: unknown) => error instanceof ConfigError && error.variable === variable && expected.test(error.message) && error.message.startsWith(`${variable}: `),
        JSON.stringify(env),
      );
    // The processes alone: their default jobs at once are 1 (+ 1 in the background), which only
    // the lane's slots or fewer processes can lower.
    refused(
      { CELLBLOCK_WORKER_PROCESSES: '300' },
      'CELLBLOCK_WORKER_PROCESSES',
      /300 worker process\(es\) .* × 2 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 1 \+ CELLBLOCK_BACKGROUND_SLOTS 1\) × 2 .* = 1200, .*: set CELLBLOCK_BACKGROUND_SLOTS at most 0 \(CELLBLOCK_WORKER_CONCURRENCY is 1 already\), or at most 256 worker processes \(CELLBLOCK_WORKER_PROCESSES\) of 2 jobs at once$/,
    );
    // Jobs at once set to 1 cannot be lowered: the processes are named.
    refused({ CELLBLOCK_WORKER_PROCESSES: '300', CELLBLOCK_WORKER_CONCURRENCY: '1' }, 'CELLBLOCK_WORKER_PROCESSES', /= 1200, /);
    // The lane's slots alone: the jobs at once are 1 by default then.
    refused(
      { CELLBLOCK_BACKGROUND_SLOTS: '600' },
      'CELLBLOCK_BACKGROUND_SLOTS',
      /^CELLBLOCK_BACKGROUND_SLOTS: 1 worker process\(es\) .* × 601 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 1 \+ CELLBLOCK_BACKGROUND_SLOTS 600\) .* = 1202, .*: set CELLBLOCK_BACKGROUND_SLOTS at most 511 \(CELLBLOCK_WORKER_CONCURRENCY is 1 already\)$/,
    );
    refused({ CELLBLOCK_WORKER_PROCESSES: '2', CELLBLOCK_WORKER_CONCURRENCY: '300' }, 'CELLBLOCK_WORKER_CONCURRENCY', /× 600 jobs at once .*: set CELLBLOCK_WORKER_CONCURRENCY \+ CELLBLOCK_BACKGROUND_SLOTS at most 256 per worker process$/);
    // Too many processes for even one job each.
    refused(
      { CELLBLOCK_WORKER_PROCESSES: '513', CELLBLOCK_WORKER_CONCURRENCY: '1', CELLBLOCK_BACKGROUND_SLOTS: '0' },
      'CELLBLOCK_WORKER_PROCESSES',
      /= 1026, .*: set at most 512 worker processes \(CELLBLOCK_WORKER_PROCESSES\) of 1 jobs at once$/,
    );
    refused(
      { CELLBLOCK_WORKER_PROCESSES: '513', CELLBLOCK_WORKER_CONCURRENCY: '600', CELLBLOCK_BACKGROUND_AFTER_MS: '0' },
      'CELLBLOCK_WORKER_CONCURRENCY',
      /: set at most 512 worker processes \(CELLBLOCK_WORKER_PROCESSES\) of one job at once \(CELLBLOCK_WORKER_CONCURRENCY 1\)$/,
    );
  });

  test('between 2 and 4 uids a job: taken, with a warning saying which jobs may fail at full load', () => {
    const warning = (env: Record<string, string>) => checkSandboxUids(loadConfig(env));
    // Settings that ran before the check: 96 cores, 4 processes of 48 + 48.
    assert.match(
      warning({ CELLBLOCK_WORKER_PROCESSES: '4', CELLBLOCK_WORKER_CONCURRENCY: '48' }) ?? '',
      /^4 worker process\(es\) \(CELLBLOCK_WORKER_PROCESSES\) × 96 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 48 \+ CELLBLOCK_BACKGROUND_SLOTS 48\) × up to 4 sandbox uids a job may hold at once \(.*\) = 1536, above the machine's 1024 sandbox uids \(60000-61023\): at full load each job has 2 uids, and checked jobs \(up to 3\) and interactive ones \(4\) may fail no_sandbox_uid; CELLBLOCK_WORKER_CONCURRENCY \+ CELLBLOCK_BACKGROUND_SLOTS at most 64 per worker process gives every job its 4$/,
    );
    assert.match(warning({ CELLBLOCK_WORKER_CONCURRENCY: '300', CELLBLOCK_BACKGROUND_AFTER_MS: '0' }) ?? '', /× 300 jobs at once \(CELLBLOCK_WORKER_CONCURRENCY 300\) .* = 1200, .*: at full load each job has 3 uids, and interactive jobs \(4\) may fail no_sandbox_uid; CELLBLOCK_WORKER_CONCURRENCY at most 256 per worker process gives/);
    assert.equal(warning({ CELLBLOCK_WORKER_CONCURRENCY: '256', CELLBLOCK_BACKGROUND_AFTER_MS: '0' }), undefined, 'at 4 a job: no warning');
  });

  test("the default jobs at once fit the sandbox uids at 4 a job, beside the other processes' kept uids: no warning, unless the processes alone are too many", () => {
    const cores = os.availableParallelism();
    const loaded = (env: Record<string, string>) => {
      const config = loadConfig(env);
      assert.equal(checkSandboxUids(config), undefined, `${JSON.stringify(env)}: no warning`);
      return [config.workerConcurrency, config.backgroundSlots];
    };
    assert.deepEqual(loaded({}), [Math.min(2 * cores, 128), Math.min(2 * cores, 128)]);
    assert.deepEqual(loaded({ CELLBLOCK_WORKER_PROCESSES: '64' }), [1, 1]);
    assert.deepEqual(loaded({ CELLBLOCK_WORKER_PROCESSES: '64', CELLBLOCK_BACKGROUND_SLOTS: '1' }), [1, 1]);
    assert.equal(loaded({ CELLBLOCK_WORKER_PROCESSES: '128', CELLBLOCK_BACKGROUND_AFTER_MS: '0' })[0], 1);
    // Past 128 processes, their one job (+ one in the background) each is more than 4 uids a job
    // can be given: a warning; past 256, the processes are refused, named.
    assert.ok(checkSandboxUids(loadConfig({ CELLBLOCK_WORKER_PROCESSES: '129' })));
    assert.throws(() => checkSandboxUids(loadConfig({ CELLBLOCK_WORKER_PROCESSES: '257' })), /: CELLBLOCK_WORKER_PROCESSES: 257 worker process\(es\) .* × 2 jobs at once/);
    assert.throws(() => checkSandboxUids(loadConfig({ CELLBLOCK_WORKER_PROCESSES: '64', CELLBLOCK_BACKGROUND_SLOTS: '8' })), /: CELLBLOCK_BACKGROUND_SLOTS: .* × 9 jobs at once/);
  });

  test("the default jobs at once of a large machine: two per core, up to 128 with one process; with more, what leaves the other processes' 16 kept uids each", () => {
    const lane = { backgroundAfterMs: 250 };
    const concurrency = (workerProcesses: number, cores = 96, backgroundSlots?: number) => defaultWorkerConcurrency({ ...lane, workerProcesses, cores, ...(backgroundSlots === undefined ? {} : { backgroundSlots }) });
    assert.equal(concurrency(1), 128);
    assert.equal(concurrency(1, 8), 16);
    // (1024 - 16) / 4 / 2 = 126, half in the background; without the kept uids, 64.
    assert.equal(concurrency(2), 63);
    // (1024 - 3 × 16) / 4 / 4 = 61.
    assert.equal(concurrency(4), 30);
    assert.equal(concurrency(4, 96, 1), 60);
    assert.equal(concurrency(64), 1);
    assert.equal(defaultWorkerConcurrency({ workerProcesses: 2, backgroundAfterMs: 0, cores: 96 }), 126);
  });

  test('the default jobs at once fit in the hard open files limit, said in a warning; an explicit setting that does not fit is refused', () => {
    const lane = { workerProcesses: 1, backgroundAfterMs: 250 };
    // 16 cores would run 32 + 32; 4096 holds (4096 - 64 - 2 × 18) / 81 = 49 jobs: 24 + 24.
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 16 }), 32);
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 16, openFilesLimit: 4096 }), 24);
    // 1024 holds 11: 5 + 5 (4 cores would run 8 + 8); without the lane, 11; more refills, fewer.
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 4, openFilesLimit: 1024 }), 5);
    assert.equal(defaultWorkerConcurrency({ workerProcesses: 1, backgroundAfterMs: 0, cores: 16, openFilesLimit: 1024 }), 11);
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 4, openFilesLimit: 1024, poolRefillConcurrency: 20 }), 3);
    // The lane's slots set: the rest of what fits.
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 16, openFilesLimit: 1024, backgroundSlots: 2 }), 9);
    // A limit that holds more than the cores' default changes nothing; nor does none.
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 2, openFilesLimit: 1024 }), 4);
    assert.equal(defaultWorkerConcurrency({ ...lane, cores: 2, openFilesLimit: Number.POSITIVE_INFINITY }), 4);
    // Loaded under a limit that holds fewer than this machine's cores' default: the default (its
    // lane's too) is what fits, the start-up check takes it, and the warning names the limit and the cap.
    const cores = os.availableParallelism();
    const limit = 64 + 2 * 18 + 2 * 81 + 10;
    const config = loadConfig({}, { openFilesLimit: limit });
    assert.deepEqual([config.workerConcurrency, config.backgroundSlots], [1, 1]);
    assert.doesNotThrow(() => checkOpenFiles(config, limit, 0));
    const warning = openFilesCapWarning(config, limit);
    if (cores > 1) {
      assert.match(warning!, new RegExp(`^the open files limit \\(RLIMIT_NOFILE, hard\\) of this process, ${limit}, holds fewer jobs at once than the default CELLBLOCK_WORKER_CONCURRENCY ${Math.min(2 * cores, 128)} \\(two per core\\) would run: 2 jobs at once \\(CELLBLOCK_WORKER_CONCURRENCY 1 \\+ CELLBLOCK_BACKGROUND_SLOTS 1\\) here.*LimitNOFILE=`));
    }
    // Not lowered: nothing to say.
    assert.equal(openFilesCapWarning(loadConfig({}, { openFilesLimit: 1_000_000 }), 1_000_000), undefined);
    // Set explicitly: taken as given, and refused by the start-up check where it does not fit.
    const explicit = loadConfig({ CELLBLOCK_WORKER_CONCURRENCY: '4' }, { openFilesLimit: limit });
    assert.equal(explicit.workerConcurrency, 4);
    assert.equal(openFilesCapWarning(explicit, limit), undefined);
    assert.throws(() => checkOpenFiles(explicit, limit, 0), WorkerPreflightError);
  });

  test('API keys: KEY[:REQUESTS[:LIVE_SESSIONS]], a figure left out or empty taking the default', () => {
    const config = loadConfig({ CELLBLOCK_API_KEYS: 'first-key-000:120:500, second-key-00: :07,third-key-000', CELLBLOCK_RATE_LIMIT_REQUESTS: '50' });
    assert.deepEqual(config.apiKeys, [
      { key: 'first-key-000', requestsPerWindow: 120, maxLiveSessions: 500 },
      { key: 'second-key-00', requestsPerWindow: 50, maxLiveSessions: 7 },
      { key: 'third-key-000', requestsPerWindow: 50 },
    ]);
  });

  test('API keys: a key given twice, a figure of 0, any malformed entry: refused naming the entry by its position, never showing a key', () => {
    const refused: [string, RegExp][] = [
      // The last entry took the key's figures without a word.
      ['key-one-0001,key-two-0002:5, key-one-0001:2', /^CELLBLOCK_API_KEYS: entries 1 and 3 have the same key: give each key once$/],
      // The key was answered 429 to every request, where CELLBLOCK_RATE_LIMIT_REQUESTS=0 is refused.
      ['key-one-0001,key-two-0002:0', /^CELLBLOCK_API_KEYS: entry 2: requests must be a whole number of at least 1$/],
      ['key-one-0001:1:0', /^CELLBLOCK_API_KEYS: entry 1: live sessions must be a whole number of at least 1$/],
      ['key-one-0001,key-two-0002:x', /^CELLBLOCK_API_KEYS: entry 2: requests must be a whole number/],
      ['key-one-0001:1:1:1', /^CELLBLOCK_API_KEYS: entry 1 is not KEY, KEY:REQUESTS or KEY:REQUESTS:LIVE_SESSIONS/],
    ];
    for (const [keys, expected] of refused) {
      assert.throws(
        () => loadConfig({ CELLBLOCK_API_KEYS: keys }),
        (error: unknown) => error instanceof ConfigError && expected.test(error.message) && !/key-(one|two)/.test(error.message),
        keys,
      );
    }
  });

  test("the notifier's memory budget: 256 MiB of stored bytes by default, or the variable's", () => {
    assert.equal(loadConfig({}).webhookMemoryBytes, 256 * 1024 * 1024);
    assert.equal(loadConfig({ CELLBLOCK_WEBHOOK_MEMORY_BYTES: '1048576' }).webhookMemoryBytes, 1048576);
  });

  test('webhook destinations: link-local denied by default; lists replace the defaults; none empties one', () => {
    const byDefault = loadConfig({}).webhookDestinations;
    assert.deepEqual([byDefault.allow, byDefault.deny], [[], ['169.254.0.0/16', 'fe80::/10']]);
    const set = loadConfig({ CELLBLOCK_WEBHOOK_ALLOW: '10.0.0.0/8, fd00::/8', CELLBLOCK_WEBHOOK_DENY: 'none' }).webhookDestinations;
    assert.deepEqual([set.allow, set.deny], [['10.0.0.0/8', 'fd00::/8'], []]);
    assert.ok(set.permits('10.0.0.1') && !set.permits('192.0.2.1'));
  });

  test('trusted proxies: none by default; a list of addresses and networks', () => {
    assert.deepEqual(loadConfig({}).trustedProxies, []);
    assert.deepEqual(loadConfig({ CELLBLOCK_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7,fd00::/8' }).trustedProxies, ['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
    assert.deepEqual(loadConfig({ CELLBLOCK_TRUSTED_PROXIES: 'none' }).trustedProxies, []);
  });

  test('trusted proxies: networks that together hold every address of a family are refused as a /0 is; ordinary lists are taken', () => {
    for (const list of ['10.0.0.0/8,192.168.0.0/16', '0.0.0.0/1', '0.0.0.0/1,128.0.0.0/2,192.0.0.0/3,224.0.0.0/4', '::ffff:10.0.0.0/104,fd00::/8', '::/1,8000::/2']) {
      assert.deepEqual(loadConfig({ CELLBLOCK_TRUSTED_PROXIES: list }).trustedProxies, list.split(','), list);
    }
    const refused: [string, RegExp][] = [
      ['0.0.0.0/1,128.0.0.0/1', /^CELLBLOCK_TRUSTED_PROXIES: "0\.0\.0\.0\/1", "128\.0\.0\.0\/1" together are every IPv4 address: any client could then name any address/],
      // The proxy check matches an IPv4 peer against an IPv4-mapped network.
      ['::ffff:0.0.0.0/96', /^CELLBLOCK_TRUSTED_PROXIES: "::ffff:0\.0\.0\.0\/96" is every IPv4 address \(an IPv4-mapped network, .*\): any client/],
      ['10.0.0.0/8, ::ffff:0.0.0.0/97,128.0.0.0/1', /"10\.0\.0\.0\/8", "::ffff:0\.0\.0\.0\/97", "128\.0\.0\.0\/1" together are every IPv4 address/],
      ['::/1,8000::/1', /^CELLBLOCK_TRUSTED_PROXIES: "::\/1", "8000::\/1" together are every IPv6 address: any client/],
      // Every IPv6 address but the mapped ones, which the check takes as IPv4.
      ['8000::/1,::/2,4000::/3,6000::/3', /together are every IPv6 address/],
    ];
    for (const [list, expected] of refused) {
      // As fastify's proxy check takes them: every peer of the family trusted.
      const trusted = proxyAddr.compile(list.split(',').map((entry) => entry.trim()));
      const family = /IPv4/.test(expected.source) || list.includes('.') ? ['192.0.2.7', '203.0.113.250', '::ffff:198.51.100.1'] : ['2001:db8::1', 'fe80::1', '::1'];
      assert.ok(family.every((address) => trusted(address, 0)), list);
      assert.throws(
        () => loadConfig({ CELLBLOCK_TRUSTED_PROXIES: list }),
        (error: unknown) => error instanceof ConfigError && error.variable === 'CELLBLOCK_TRUSTED_PROXIES' && expected.test(error.message),
        list,
      );
    }
  });

  test('trusted proxies: an IPv4-mapped network shorter than /96, which the proxy check matches no client against, is refused naming it', () => {
    for (const [list, entry] of [
      ['::ffff:0:0/80', '::ffff:0:0/80'],
      ['10.0.0.0/8, ::ffff:0:0/95,0.0.0.0/1', '::ffff:0:0/95'],
      ['::ffff:10.0.0.0/64', '::ffff:10.0.0.0/64'],
    ] as const) {
      // As fastify's proxy check takes it: no IPv4 client, mapped or not, and no IPv6 one.
      const trusted = proxyAddr.compile([entry]);
      for (const peer of ['10.0.0.1', '0.0.0.0', '::ffff:10.0.0.1', '::ffff:0:1', '::1', '2001:db8::1']) assert.ok(!trusted(peer, 0), `${entry} trusts ${peer}`);
      assert.throws(
        () => loadConfig({ CELLBLOCK_TRUSTED_PROXIES: list }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.variable === 'CELLBLOCK_TRUSTED_PROXIES' &&
          error.message.startsWith(`CELLBLOCK_TRUSTED_PROXIES: "${entry}" is an IPv4-mapped network shorter than /96`),
        list,
      );
    }
    // /96 and longer are the IPv4 networks they map; a native IPv6 network of that length is no mapped one.
    for (const list of ['::ffff:10.0.0.0/104', '::ffff:192.0.2.7', '::ffff:192.0.2.0/120', '2001:db8::/80', 'fe80::/64']) {
      assert.deepEqual(loadConfig({ CELLBLOCK_TRUSTED_PROXIES: list }).trustedProxies, [list], list);
    }
    // The webhook lists' matcher is not the proxy check: theirs are not refused so.
    assert.deepEqual(loadConfig({ CELLBLOCK_WEBHOOK_DENY: '::ffff:0:0/80' }).webhookDestinations.deny, ['::ffff:0:0/80']);
  });

  test("trusted proxies: the lists taken leave some peer of each family untrusted in fastify's proxy check, as the refusal models it", () => {
    // The check fastify itself runs, not a second copy: the refusal models its matching (an IPv4
    // peer only against IPv4 and IPv4-mapped networks), and a version that matched IPv4 peers
    // against other IPv6 networks (::/1 holds ::ffff:0:0/96) would make these lists trust every
    // client of a family, which this test then says.
    const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
    assert.equal(fastifyRequire.resolve('@fastify/proxy-addr'), createRequire(import.meta.url).resolve('@fastify/proxy-addr'), "the test's proxy-addr is fastify's");
    const untrusted = { IPv4: ['192.0.2.7', '203.0.113.250', '::ffff:198.51.100.1'], IPv6: ['fe80::1', 'ff02::1'] };
    for (const list of ['::/1', '2000::/3', '10.0.0.0/8,192.168.0.0/16', '::/1,8000::/2']) {
      assert.deepEqual(loadConfig({ CELLBLOCK_TRUSTED_PROXIES: list }).trustedProxies, list.split(','), list);
      const trusted = proxyAddr.compile(list.split(','));
      for (const [family, peers] of Object.entries(untrusted)) {
        for (const address of peers) assert.ok(!trusted(address, 0), `${list} trusts the ${family} peer ${address}`);
      }
    }
  });

  test('CORS origins: none by default; a list of origins, or *', () => {
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.deepEqual(loadConfig({ CELLBLOCK_CORS_ORIGINS: '*' }).corsOrigins, ['*']);
    assert.deepEqual(loadConfig({ CELLBLOCK_CORS_ORIGINS: 'https://ide.example.com, http://localhost:3000' }).corsOrigins, ['https://ide.example.com', 'http://localhost:3000']);
    // As a browser's Origin header has them: scheme and host in lower case, no default port.
    assert.deepEqual(loadConfig({ CELLBLOCK_CORS_ORIGINS: 'HTTPS://IDE.Example.com:443,http://Localhost:80,http://[::1]:3000' }).corsOrigins, ['https://ide.example.com', 'http://localhost', 'http://[::1]:3000']);
  });

  test('a malformed value is a ConfigError naming the variable and what it expects', () => {
    const refused: [Record<string, string>, string, RegExp][] = [
      [{ CELLBLOCK_PORT: 'abc' }, 'CELLBLOCK_PORT', /whole number/],
      [{ CELLBLOCK_PORT: '70000' }, 'CELLBLOCK_PORT', /from 0 to 65535/],
      [{ CELLBLOCK_LOG_LEVEL: 'loud' }, 'CELLBLOCK_LOG_LEVEL', /one of fatal, error, warn, info, debug, trace, silent/],
      [{ CELLBLOCK_MAX_FILES: '0' }, 'CELLBLOCK_MAX_FILES', /from 1 to 100000, got "0"/],
      [{ CELLBLOCK_MAX_FILES: '1.5' }, 'CELLBLOCK_MAX_FILES', /whole number/],
      [{ CELLBLOCK_BODY_LIMIT_BYTES: '1e99' }, 'CELLBLOCK_BODY_LIMIT_BYTES', /whole number/],
      [{ CELLBLOCK_WORKER_CONCURRENCY: '0' }, 'CELLBLOCK_WORKER_CONCURRENCY', />= 1/],
      [{ CELLBLOCK_REDIS_URL: 'localhost:6379' }, 'CELLBLOCK_REDIS_URL', /redis:\/\//],
      [{ CELLBLOCK_REDIS_FSYNC: 'sometimes' }, 'CELLBLOCK_REDIS_FSYNC', /one of/],
      [{ CELLBLOCK_CGROUP_BASE: 'own' }, 'CELLBLOCK_CGROUP_BASE', /one of root, delegated/],
      [{ CELLBLOCK_QUEUE_PREFIX: 'a b' }, 'CELLBLOCK_QUEUE_PREFIX', /ASCII letters \(A-Z, a-z\), digits, "_" and "-" only, got "a b"/],
      [{ CELLBLOCK_API_KEYS: 'short' }, 'CELLBLOCK_API_KEYS', /entry 1: a key has 8 to 200 characters, this one 5$/],
      [{ CELLBLOCK_API_KEYS: `long-enough-key,${'k'.repeat(201)}` }, 'CELLBLOCK_API_KEYS', /entry 2: a key has 8 to 200 characters, this one 201$/],
      [{ CELLBLOCK_API_KEYS: 'kéy-long-enough' }, 'CELLBLOCK_API_KEYS', /entry 1: a key's characters are ASCII letters, digits and _ \. ~ \+ \/ = - \(its character 2 is not\)$/],
      // The maximum said, where the row does not state it.
      [{ CELLBLOCK_MAX_QUEUED_JOBS: '9007199254740992' }, 'CELLBLOCK_MAX_QUEUED_JOBS', /expected a whole number from 1 to 9007199254740991, got "9007199254740992"/],
      // The request schemas' maxItems (MAX_LIST_ITEMS): above it the schema would refuse a count the policy takes.
      [{ CELLBLOCK_MAX_TESTS: '100001' }, 'CELLBLOCK_MAX_TESTS', /expected a whole number from 1 to 100000, got "100001"/],
      [{ CELLBLOCK_MAX_ARGS: '100001' }, 'CELLBLOCK_MAX_ARGS', /expected a whole number from 0 to 100000, got "100001"/],
      [{ CELLBLOCK_QUEUE_PREFIX: 'p'.repeat(65) }, 'CELLBLOCK_QUEUE_PREFIX', /^CELLBLOCK_QUEUE_PREFIX: at most 64 characters, got 65$/],
      [{ CELLBLOCK_QUEUE_PREFIX: 'café' }, 'CELLBLOCK_QUEUE_PREFIX', /ASCII letters \(A-Z, a-z\), digits, "_" and "-" only, got "café"/],
      [{ CELLBLOCK_CORS_ORIGINS: '*, https://ide.example.com' }, 'CELLBLOCK_CORS_ORIGINS', /"\*" \(any origin\) stands alone: set either \* or a list of origins/],
      [{ CELLBLOCK_CORS_ORIGINS: 'https://user@ide.example.com' }, 'CELLBLOCK_CORS_ORIGINS', /is not an origin: scheme:\/\/host\[:port\] \(http or https\), nothing after/],
      [{ CELLBLOCK_API_KEYS: 'long-enough-key:10:many' }, 'CELLBLOCK_API_KEYS', /live sessions must be a whole number/],
      [{ CELLBLOCK_API_KEYS: `long-enough-key:10:${'9'.repeat(20)}` }, 'CELLBLOCK_API_KEYS', /live sessions must be a whole number/],
      [{ CELLBLOCK_API_KEYS: 'long-enough-key:10:5:1' }, 'CELLBLOCK_API_KEYS', /KEY:REQUESTS:LIVE_SESSIONS/],
      // Past a timer's 2^31 - 1 ms, Node fires it after 1 ms.
      [{ CELLBLOCK_SHUTDOWN_GRACE_MS: '3000000000' }, 'CELLBLOCK_SHUTDOWN_GRACE_MS', /to 2147483647/],
      [{ CELLBLOCK_LOCK_DURATION_MS: '2147483648' }, 'CELLBLOCK_LOCK_DURATION_MS', /to 2147483647/],
      [{ CELLBLOCK_WEBHOOK_ALLOW: '10.0.0.0/8, example.com' }, 'CELLBLOCK_WEBHOOK_ALLOW', /"example.com" is not an address or a network/],
      [{ CELLBLOCK_WEBHOOK_DENY: '10.0.0.0/40' }, 'CELLBLOCK_WEBHOOK_DENY', /is not an address or a network/],
      [{ CELLBLOCK_WEBHOOK_MEMORY_BYTES: '0' }, 'CELLBLOCK_WEBHOOK_MEMORY_BYTES', />= 1/],
      [{ CELLBLOCK_CORS_ORIGINS: 'https://ide.example.com/' }, 'CELLBLOCK_CORS_ORIGINS', /is not an origin/],
      [{ CELLBLOCK_CORS_ORIGINS: 'ide.example.com' }, 'CELLBLOCK_CORS_ORIGINS', /is not an origin/],
      [{ CELLBLOCK_TRUSTED_PROXIES: 'balancer.internal' }, 'CELLBLOCK_TRUSTED_PROXIES', /"balancer.internal" is not an address or a network/],
      // Every client could name its own address (and fastify's proxy-addr throws on a /0 range).
      [{ CELLBLOCK_TRUSTED_PROXIES: '0.0.0.0/0' }, 'CELLBLOCK_TRUSTED_PROXIES', /"0\.0\.0\.0\/0" is every address: any client could then name any address/],
      [{ CELLBLOCK_TRUSTED_PROXIES: '10.0.0.0/8, ::/0' }, 'CELLBLOCK_TRUSTED_PROXIES', /"::\/0" is every address/],
      // An empty allow list is "anywhere": "none" must not open everything.
      [{ CELLBLOCK_WEBHOOK_ALLOW: 'none' }, 'CELLBLOCK_WEBHOOK_ALLOW', /would permit no destination.*CELLBLOCK_WEBHOOK_DENY=0\.0\.0\.0\/0,::\/0/],
      // Directories: absolute; those whose paths go into overlayfs's mount options without its separators.
      [{ CELLBLOCK_DATA_DIR: 'data' }, 'CELLBLOCK_DATA_DIR', /absolute path/],
      [{ CELLBLOCK_DATA_DIR: '/srv/cell block' }, 'CELLBLOCK_DATA_DIR', /':', ',' or white space/],
      [{ CELLBLOCK_POOL_STATE_DIR: '/srv/pool:a' }, 'CELLBLOCK_POOL_STATE_DIR', /':', ',' or white space/],
      [{ CELLBLOCK_POOL_STATE_DIR: 'pool' }, 'CELLBLOCK_POOL_STATE_DIR', /absolute path/],
      [{ CELLBLOCK_REDIS_DATA_DIR: './redis' }, 'CELLBLOCK_REDIS_DATA_DIR', /absolute path/],
    ];
    for (const [env, variable, expected] of refused) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable && expected.test(error.message),
        JSON.stringify(env),
      );
    }
  });
});

describe('a directory a setting names, made before anything starts', () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'cellblock-config-test-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const refusal = (dir: string, expected: RegExp) =>
    assert.throws(
      () => makeSettingDirectory('CELLBLOCK_POOL_STATE_DIR', dir, 0o700),
      (error: unknown) => error instanceof ConfigError && error.variable === 'CELLBLOCK_POOL_STATE_DIR' && expected.test(error.message) && !error.message.includes('\n'),
      dir,
    );

  test('made with its missing parents, with the mode asked; one already there is taken', () => {
    const dir = path.join(scratch, 'made', 'a', 'b');
    makeSettingDirectory('CELLBLOCK_POOL_STATE_DIR', dir, 0o700);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(scratch, 'made')).mode & 0o777, 0o700);
    makeSettingDirectory('CELLBLOCK_POOL_STATE_DIR', dir, 0o700);
  });

  test('a file, or a path under one: refused naming the file', () => {
    const file = path.join(scratch, 'a-file');
    writeFileSync(file, '');
    refusal(file, new RegExp(`^CELLBLOCK_POOL_STATE_DIR: ${file} is not a directory$`));
    refusal(path.join(file, 'sub', 'dir'), new RegExp(`^CELLBLOCK_POOL_STATE_DIR: ${file}/sub/dir cannot be made: ${file} is not a directory$`));
  });

  test('a symbolic link to nothing (a disk not mounted yet): refused naming the link', () => {
    const link = path.join(scratch, 'unmounted');
    symlinkSync(path.join(scratch, 'no-such-disk'), link);
    refusal(path.join(link, 'pool'), new RegExp(`^CELLBLOCK_POOL_STATE_DIR: ${link}/pool cannot be made: ${link} is a symbolic link to nothing$`));
    refusal(link, new RegExp(`^CELLBLOCK_POOL_STATE_DIR: ${link} cannot be made: ${link} is a symbolic link to nothing$`));
  });

  test('a path on a kernel filesystem (/proc, /sys, a cgroup hierarchy): refused at once, nothing made', () => {
    refusal('/sys/kernel/cellblock-config-test', /is on the kernel's sysfs filesystem \(\/sys\/kernel\), which holds no files/);
    // Node's recursive mkdirSync never returned on such a path: in a process of its own, with a timeout.
    const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/config.ts');
    const script = `import { makeSettingDirectory } from ${JSON.stringify(source)};
      try { makeSettingDirectory('CELLBLOCK_POOL_STATE_DIR', '/proc/cellblock-config-test/pool', 0o700); } catch (error) { process.stdout.write(error.message); }`;
    const started = Date.now();
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 5000, killSignal: 'SIGKILL' });
    assert.equal(run.signal, null, `ended by itself within 5 s, not by the timeout (${Date.now() - started} ms)`);
    assert.equal(run.stdout, "CELLBLOCK_POOL_STATE_DIR: /proc/cellblock-config-test/pool is on the kernel's proc filesystem (/proc), which holds no files: choose a directory on a disk or a tmpfs", run.stderr);
  });

  test('a read-only place: refused with the reason, whether the directory is to be made or is there', { skip: process.getuid?.() !== 0 && 'mounts a read-only tmpfs' }, () => {
    const readOnly = path.join(scratch, 'read-only');
    mkdirSync(path.join(readOnly), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'cellblock-config-test', readOnly]);
    try {
      refusal(path.join(readOnly, 'pool'), new RegExp(`cannot be made in ${readOnly}: read-only file system \\(EROFS\\)$`));
      refusal(readOnly, /cannot be written: read-only file system \(EROFS\)$/);
      assert.equal(existsSync(path.join(readOnly, 'pool')), false);
    } finally {
      execFileSync('umount', [readOnly]);
    }
  });
});

describe("README's Configuration table", () => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## Performance\n'));
  const rows = new Map([...section.matchAll(/^\| `(CELLBLOCK_[A-Z0-9_]+)` \|.*$/gm)].map(([row, name]) => [name!, row]));

  test('has a row for every variable config.ts reads, and none other', () => {
    const source = readFileSync(path.join(repo, 'src/config.ts'), 'utf8');
    assert.deepEqual([...rows.keys()].sort(), [...new Set(source.match(/CELLBLOCK_[A-Z0-9_]+/g))].sort());
  });

  test("states each number's bounds that the code enforces: a minimum above 0, a maximum below the opening's", () => {
    assert.match(section, /every `\*_MS` setting is at most `2147483647`/);
    assert.match(section, /any other at most `9007199254740991`/);
    for (const [name, row] of rows) {
      // Probed: 0 (taken, or refused with the minimum), and 2^53 - 1 (refused with the maximum).
      const refusal = (value: string) => {
        try {
          loadConfig({ [name]: value });
          return undefined;
        } catch (error) {
          return /expected a whole number (?:>= (\d+)|from (\d+) to (\d+))/.exec((error as Error).message) ?? undefined;
        }
      };
      const least = refusal('0');
      const minimum = Number(least?.[1] ?? least?.[2] ?? 0);
      if (minimum > 0) assert.ok(row.includes(`At least \`${minimum}\``), `${name}: at least ${minimum}, not in its row`);
      const maximum = Number(refusal(String(Number.MAX_SAFE_INTEGER))?.[3] ?? Number.MAX_SAFE_INTEGER);
      if (maximum !== Number.MAX_SAFE_INTEGER && !(name.endsWith('_MS') && maximum === 2 ** 31 - 1)) {
        assert.ok(row.includes(`\`${maximum}\``), `${name}: at most ${maximum}, not in its row`);
      }
    }
  });
});
