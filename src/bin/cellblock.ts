#!/usr/bin/env node
// The `cellblock` command: start (API + workers, and a private Redis when none is configured),
// api, worker, images. Configuration comes from CELLBLOCK_* environment variables (src/config.ts).
import path from 'node:path';
import type { Logger } from 'pino';
import { checkMaxJobOutputBytes, checkSandboxUids, ConfigError, loadConfig, makeSettingDirectory, openFilesCapWarning, type Config } from '../config.js';
import { containerSlotKeys } from '../executor/slot-keys.js';
import { loadRuntimes } from '../images/runtimes.js';
import type { Runtime } from '../images/types.js';
import { tryHoldLockFile } from '../lock-file.js';
import { STATE_ROOT_MODE } from '../pool/state-dir.js';
import { CgroupError } from '../sandbox/cgroups/backend.js';
import { SandboxError } from '../sandbox/types.js';
import { exitReason, startRedisServer } from '../queue/redis-server.js';
import { ListenError, runApi } from './api-command.js';
import { checkOpenFiles, checkProcesses, readProcessLimits, type ProcessLimits } from './host-limits.js';
import { createLogger, EXIT_SETTING_REFUSED, guardStartup, onShutdown, SINGLE_WORKER_FLAG, watchRedisRefusal } from './process-control.js';
import { checkWorkerMachine, sandboxUidAccountsWarning, WorkerPreflightError } from './worker-preflight.js';

const USAGE = `usage: cellblock <command>

  start            API and workers on this machine; runs a private redis-server when
                   CELLBLOCK_REDIS_URL is not set (data in $CELLBLOCK_REDIS_DATA_DIR),
                   started again should it die
  api              the HTTP API alone (needs CELLBLOCK_REDIS_URL)
  worker           worker processes alone (needs CELLBLOCK_REDIS_URL)
  images <...>     build, list and prune language images (cellblock images --help)

Settings are environment variables; see README.md ("Configuration").`;

/** A command line refused (an unknown command or argument): its line, then the usage. A setting
 * refused is a ConfigError: its line alone. */
class UsageError extends Error {}

function requireRedisUrl(config: Config, command: string): string {
  if (!config.redisUrl) throw new ConfigError('CELLBLOCK_REDIS_URL', `unset, and cellblock ${command} needs it (redis://host:port)`);
  return config.redisUrl;
}

async function api(config: Config, runtimes: Runtime[]): Promise<void> {
  const logger = createLogger(config.logLevel, 'api');
  const refusal = watchRedisRefusal(logger);
  const running = await runApi(config, requireRedisUrl(config, 'api'), logger, runtimes);
  refusal.running(onShutdown(logger, () => running.close()));
}

/** Loaded only by the commands that run jobs: it loads the native addon, which `cellblock api`
 * (on a machine without the sandbox built) does not need, and `cellblock images` only for the
 * build lock's flock (build and prune, which run where the workers do, after scripts/setup.sh
 * has built the addon). */
const workerCommand = () => import('./worker-command.js');

/** Refuses, in one line, more jobs at once than the machine's sandbox uids allow even for a
 * compiled language's jobs (checkSandboxUids), a machine where no worker could run
 * (checkWorkerMachine: not root, a kernel below 5.9, no cgroups its sandbox could make, no image built), limits its
 * workers would inherit that their jobs do not fit in (open files, processes: host-limits.ts), or
 * a pool state dir that cannot be made (before the workers, each of which would fail at it); warns
 * of jobs at once whose checked and interactive jobs may find no uid at full load, of the runtimes
 * whose jobs would fail here, of host accounts with sandbox uids, and of limits that hold fewer
 * ready containers than the pools could keep, or fewer processes than a job may ask for. `limits`:
 * this process's (readProcessLimits). */
async function checkMachineForWorkers(config: Config, logger: Logger, runtimes: Runtime[], limits: ProcessLimits): Promise<void> {
  const uidsWarning = checkSandboxUids(config);
  if (uidsWarning !== undefined) {
    const { workerProcesses, workerConcurrency, backgroundSlots, backgroundAfterMs } = config;
    logger.warn({ workerProcesses, workerConcurrency, backgroundSlots: backgroundAfterMs > 0 ? backgroundSlots : 0 }, uidsWarning);
  }
  const { missingImages: missing, sandboxUidAccounts, passwdSource } = await checkWorkerMachine(config, runtimes);
  // The limits this process's workers inherit: their open files for their jobs and ready
  // containers, their processes for every sandbox's (host-limits.ts).
  const built = runtimes.filter((runtime) => !missing.includes(runtime));
  const openFiles = checkOpenFiles(config, limits.openFiles.hard, config.poolMaxReady * containerSlotKeys(built).size);
  const processes = checkProcesses(built, limits.processes);
  makeSettingDirectory('CELLBLOCK_POOL_STATE_DIR', config.poolStateDir, STATE_ROOT_MODE);
  const capped = openFilesCapWarning(config, limits.openFiles.hard);
  if (capped) logger.warn({ openFilesLimit: limits.openFiles.hard, workerConcurrency: config.workerConcurrency, backgroundSlots: config.backgroundSlots }, capped);
  if (openFiles.warning) logger.warn({ openFilesLimit: openFiles.plan.limit, readyContainers: openFiles.plan.readyContainers }, openFiles.warning);
  if (processes) logger.warn({ processesLimit: limits.processes }, processes);
  if (sandboxUidAccounts.length > 0) {
    logger.warn({ accounts: sandboxUidAccounts, source: passwdSource }, sandboxUidAccountsWarning(sandboxUidAccounts));
  }
  if (missing.length > 0) {
    logger.warn(
      { runtimes: missing.map((runtime) => runtime.id), images: [...new Set(missing.map((runtime) => runtime.image))] },
      'runtimes whose image is not built on this machine: their jobs fail here (cellblock images build IMAGE)',
    );
  }
}

async function worker(config: Config, argv: string[], runtimes: Runtime[], limits: ProcessLimits): Promise<void> {
  const redisUrl = requireRedisUrl(config, 'worker');
  if (config.workerProcesses < 1) {
    throw new ConfigError('CELLBLOCK_WORKER_PROCESSES', '0 is for `cellblock start` alone (the API without workers): cellblock worker runs at least one worker process');
  }
  const logger = createLogger(config.logLevel, 'worker');
  const { isSupervisedWorker, runWorkerProcess, superviseWorkers, tellSupervisorReady } = await workerCommand();
  // Forked by our supervisor, which stops it. Not `--single` alone, nor IPC alone, which a worker
  // started by hand, or by a manager that stops it with SIGINT (pm2), may also have.
  const supervised = isSupervisedWorker();
  // The supervisor checked the machine before it forked this one.
  if (!supervised) await checkMachineForWorkers(config, logger, runtimes, limits);
  if (argv.includes(SINGLE_WORKER_FLAG) || config.workerProcesses <= 1) {
    // A supervised worker stops with its supervisor, even one killed by SIGKILL, rather than
    // live on as an orphan taking jobs; and a stop during start-up releases what was prepared.
    const startup = guardStartup();
    const refusal = watchRedisRefusal(logger, () => startup.abort());
    // A refused login fails the commands queued meanwhile: the start-up's failure is the refusal's.
    const running = await runWorkerProcess(config, redisUrl, logger, startup.signal, { runtimes, openFilesLimit: limits.openFiles.hard }).catch((error: unknown) => {
      if (refusal.refused) return undefined;
      throw error;
    });
    if (!running) {
      if (refusal.refused) process.exit(EXIT_SETTING_REFUSED);
      logger.warn('asked to stop before the worker was ready; exiting');
      process.exit(0);
    }
    refusal.running(onShutdown(logger, () => running.close(), { supervised, startup }));
    if (supervised) tellSupervisorReady();
    // Stopped by itself (it can run no more jobs, and has closed): a non-zero exit, so that its
    // supervisor (superviseWorkers, or a service manager's Restart=) starts a new one.
    void running.stoppedByItself.then((cause) => {
      logger.error({ err: cause }, `worker exiting with status 1: it can run no more jobs (${cause.message})`);
      process.exit(1);
    });
    return;
  }
  // Redis refused a worker process's setting (each one refused says so): the others stop too.
  const refusal = watchRedisRefusal(logger);
  const supervisor = superviseWorkers(config.workerProcesses, redisUrl, logger, () => refusal.workerRefused());
  refusal.running(onShutdown(logger, () => supervisor.stop(), { beforeForcedExit: () => supervisor.kill() }));
}

/** A second `cellblock start` on the same data (two start.sh by mistake) would run a second
 * redis-server on the same append-only file, and workers of its own against it. */
class AlreadyStartedError extends Error {
  override readonly name = 'AlreadyStartedError';
}

/** Takes the private Redis data dir's start lock (an flock: the kernel drops it however its
 * holders end), held by this process and handed to redis-server too (RedisServerOptions.heldFd),
 * so that it lasts until the server, which outlives this process by its last writes, is gone;
 * the workers, exec'd, do not inherit it (close-on-exec). Returns its descriptor. */
function holdPrivateRedisDir(dataDir: string): number {
  const lock = path.join(dataDir, 'cellblock-start.lock');
  const fd = tryHoldLockFile(lock);
  if (fd === undefined) {
    throw new AlreadyStartedError(
      `another \`cellblock start\` runs its private Redis in ${dataDir} (CELLBLOCK_REDIS_DATA_DIR), or that Redis is still writing its last after its \`start\` ended: stop it first, or give this one its own CELLBLOCK_REDIS_DATA_DIR`,
    );
  }
  return fd;
}

async function start(config: Config, runtimes: Runtime[], limits: ProcessLimits): Promise<void> {
  const logger = createLogger(config.logLevel, 'start');
  if (config.workerProcesses > 0) await checkMachineForWorkers(config, logger, runtimes, limits);
  let redisUrl = config.redisUrl;
  let stopRedis = async () => {};
  /** Resolves with the error when the private Redis kept dying and was given up. */
  let redisGivenUp = new Promise<Error>(() => {});
  if (!redisUrl) {
    const dataDir = config.redisDataDir;
    // 0700: its append-only file holds every job's source, input and outputs (as the pool's state dir).
    makeSettingDirectory('CELLBLOCK_REDIS_DATA_DIR', dataDir, 0o700);
    // Held for this process's life (never closed): each restarted redis-server inherits it too.
    const heldFd = holdPrivateRedisDir(dataDir);
    const appendFsync = config.redisAppendFsync;
    let giveUp: (error: Error) => void = () => {};
    redisGivenUp = new Promise((resolve) => (giveUp = resolve));
    // Not the API's port: it is free until the API binds it, after Redis is up.
    const redis = await startRedisServer({
      dataDir,
      appendFsync,
      avoidPorts: [config.port],
      heldFd,
      onLog: (line) => logger.debug({ redis: line }, 'redis-server'),
      // Nothing else restarts it: without this, the API answers 503 and the workers wait for ever.
      supervise: {
        onExit: ({ pid, code, signal, ranMs, lastLines, restartInMs }) =>
          logger.warn({ pid, code, signal, ranMs, reason: exitReason(lastLines), restartInMs }, 'private redis-server exited; starting it again'),
        onRestarted: ({ pid, downMs }) => logger.info({ pid, downMs }, 'private redis-server started again'),
        onGiveUp: giveUp,
      },
    });
    logger.info({ url: redis.url, pid: redis.pid, dataDir, appendFsync }, 'private redis-server started');
    redisUrl = redis.url;
    // Also a stop while its restart is pending or under way: an exit from now on is no crash.
    stopRedis = () => redis.stop();
  }
  // Redis refusing a setting of CELLBLOCK_REDIS_URL, to this process or to a worker process (not
  // restarted): the whole service stops, as `cellblock worker`'s supervisor stops its workers
  // (exit 78). A worker process's refusal during the API's start is acted on once it can stop in
  // order.
  const refusal = watchRedisRefusal(logger);
  const { superviseWorkers } = await workerCommand();
  const workers = config.workerProcesses > 0 ? superviseWorkers(config.workerProcesses, redisUrl, logger, () => refusal.workerRefused()) : undefined;
  const running = await runApi(config, redisUrl, logger, runtimes);
  const fail = onShutdown(
    logger,
    async () => {
      // The API stops taking requests as its close begins, and the workers are told to stop at
      // once beside it, not behind it: nothing the API's close still does (answers in flight,
      // live sockets' last messages) needs them, and a request that never finishes arriving must
      // not hold their SIGTERM (the API's close is bounded, app.ts, but not short). Redis last.
      await Promise.all([running.close(), workers?.stop()]);
      await stopRedis();
    },
    { beforeForcedExit: () => workers?.kill() },
  );
  refusal.running(fail);
  // Given up (even during start-up): the service cannot run on, so it stops, in order, non-zero.
  void redisGivenUp.then((error) => {
    logger.fatal({ err: error }, 'private redis-server given up');
    process.stderr.write(`cellblock: ${error.message}\n`);
    fail('private redis-server given up', 1);
  });
}

const SERVICE_COMMANDS = ['start', 'api', 'worker'];
const HELP_ARGS = ['help', '--help', '-h'];

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command === 'images') {
    const { imagesCommand } = await import('../images/cli.js');
    return imagesCommand(rest);
  }
  if (!command || HELP_ARGS.includes(command)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!SERVICE_COMMANDS.includes(command)) throw new UsageError(`unknown command "${command}"`);
  // Checked before anything starts: `cellblock start --help` on a production host must not run
  // a service (on the default port and data) rather than say how to use it.
  if (rest.some((arg) => HELP_ARGS.includes(arg))) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unexpected = rest.filter((arg) => !(command === 'worker' && arg === SINGLE_WORKER_FLAG));
  if (unexpected.length > 0) {
    throw new UsageError(`cellblock ${command} takes no arguments (got ${JSON.stringify(unexpected[0])}): its settings are CELLBLOCK_* environment variables`);
  }
  // A process that runs workers (start, worker) fits the default jobs at once in its hard open
  // files limit, which its workers inherit (host-limits.ts): the API's is its own. Read once: the
  // machine's checks and a worker run in this process take them too.
  const limits = command === 'api' ? undefined : readProcessLimits();
  const config = loadConfig(process.env, limits ? { openFilesLimit: limits.openFiles.hard } : {});
  // This checkout's runtimes, read once: the checks below, the API and a worker run in this
  // process take them.
  const runtimes = loadRuntimes();
  // Every command reads it: the API to refuse jobs, a worker to fail one that came past an API
  // with another value.
  checkMaxJobOutputBytes(config.maxJobOutputBytes, runtimes);
  // Limits were read for start and worker, the other SERVICE_COMMANDS: none is `api`.
  if (!limits) await api(config, runtimes);
  else if (command === 'start') await start(config, runtimes, limits);
  else await worker(config, rest, runtimes, limits);
  return undefined;
}

main(process.argv.slice(2)).then(
  (exitCode) => {
    if (exitCode !== undefined) process.exitCode = exitCode;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`cellblock: ${error.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    // A setting refused "in one line naming the variable" (README): the usage says nothing of it.
    if (error instanceof ConfigError) {
      process.stderr.write(`cellblock: ${error.message}\n`);
      process.exit(2);
    }
    // A worker's sandbox refused at its start (its cgroups, where the preflight could not tell):
    // the message says what, and a stack would bury it.
    if (error instanceof ListenError || error instanceof WorkerPreflightError || error instanceof AlreadyStartedError || error instanceof SandboxError || error instanceof CgroupError) {
      process.stderr.write(`cellblock: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`cellblock: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
