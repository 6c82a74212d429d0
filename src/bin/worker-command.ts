// `cellblock worker`: worker processes on this machine. One process runs in place; several are
// children of a small supervisor that restarts any that die and passes SIGTERM on.
import { fork, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { jobNotifications } from '../api/notifications.js';
import { ConfigError, type Config } from '../config.js';
import { KEEP_FAILURE_QUIET_MS } from '../executor/compile-cache.js';
import { createExecutor } from '../executor/create.js';
import type { Runtime } from '../images/types.js';
import { PoolError } from '../pool/index.js';
import { hasRun, onRun, serviceRan } from '../queue/connection.js';
import { startQueueWorker, WorkerStartStopped, type QueueWorker } from '../queue/worker.js';
import { openFilesPlan } from './host-limits.js';
import { EXIT_SETTING_REFUSED, SINGLE_WORKER_FLAG } from './process-control.js';

/** A worker that dies is restarted after this, doubled for each quick death in a row (one that
 * cannot start at all, say) up to the maximum, so that a broken machine does not spin. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that ran this long before dying starts its slot's back-off afresh. */
const HEALTHY_RUN_MS = 60_000;

/** What the command read of this process at its start, taken by its worker rather than read again. */
export interface WorkerProcessHost {
  /** This checkout's runtimes (loadRuntimes). */
  runtimes: Runtime[];
  /** The hard open files limit of this process (readProcessLimits). */
  openFilesLimit: number;
}

/** One worker in this process; undefined when `stop` aborted its start-up: what it had opened is
 * closed, the last first (the queue side's connections, heartbeat and Workers, then the executor:
 * the pool's roots and mount agent, the sandbox's cgroups), before it returns. */
export async function runWorkerProcess(
  config: Config,
  redisUrl: string,
  logger: Logger,
  stop: AbortSignal,
  { runtimes, openFilesLimit }: WorkerProcessHost,
): Promise<QueueWorker | undefined> {
  const executor = await createExecutor({
    dataDir: config.dataDir,
    runtimes,
    pool: {
      stateRoot: config.poolStateDir,
      sizing: { minReady: Math.min(1, config.poolMaxReady), maxReady: config.poolMaxReady },
      refillConcurrency: config.poolRefillConcurrency,
      // What the open files limit leaves beside the jobs (its process's check refused a limit that
      // leaves less than none, and warned where it holds fewer than the pools could keep).
      maxReadyContainers: openFilesPlan(config, openFilesLimit).readyContainers,
    },
    backgroundAfterCpuMs: config.backgroundAfterCpuMs,
    maxJobOutputBytes: config.maxJobOutputBytes,
    judgeCompileCacheBytes: config.judgeCompileCacheBytes,
    sandbox: { cgroupBase: config.cgroupBase },
    onBackgroundError: (error, image) => logger.warn({ err: error, image }, 'pool background work failed'),
    onJudgeCompileNotKept: (error) =>
      logger.warn(
        { err: error, dir: config.poolStateDir },
        `a judge program's compile could not be kept in CELLBLOCK_POOL_STATE_DIR: until there is room, each job sending such a program compiles it again (said again only after ${KEEP_FAILURE_QUIET_MS / 60_000} minutes without such a failure)`,
      ),
  }).catch((error: unknown) => {
    // A state dir with no room (what dead workers left there already reclaimed): one line naming
    // the setting, as for one that cannot be made, not a stack. Its supervisor tries again later.
    if (error instanceof PoolError && error.op === 'stateDir') throw new ConfigError('CELLBLOCK_POOL_STATE_DIR', error.message);
    throw error;
  });
  const closeExecutor = () => executor.close().catch((closeError: unknown) => logger.warn({ err: closeError }, 'cannot close the executor of a worker that did not start'));
  let worker: QueueWorker;
  try {
    worker = await startQueueWorker({
      redisUrl,
      prefix: config.queuePrefix,
      concurrency: config.workerConcurrency,
      backgroundSlots: config.backgroundSlots,
      backgroundAfterMs: config.backgroundAfterMs,
      executor,
      logger,
      lockDurationMs: config.lockDurationMs,
      stalledIntervalMs: config.stalledIntervalMs,
      maxStalledCount: config.maxStalledCount,
      heartbeatTtlMs: config.workerHeartbeatTtlMs,
      shutdownGraceMs: config.shutdownGraceMs,
      webhook: {
        attempts: config.webhookAttempts,
        timeoutMs: config.webhookTimeoutMs,
        backoffMs: config.webhookBackoffMs,
        destinations: config.webhookDestinations,
        memoryBytes: config.webhookMemoryBytes,
      },
      notifications: jobNotifications(runtimes),
      stop,
    });
  } catch (error) {
    // The queue side's start failed or was stopped (and closed what it had opened; asked to stop
    // while the executor was made, which does not stop midway, it opened nothing): the executor,
    // opened before it, goes after it (its pool's mount agent would keep the process alive).
    await closeExecutor();
    if (error instanceof WorkerStartStopped) return undefined;
    throw error;
  }
  return worker;
}

/** Set by superviseWorkers in each worker it forks: the worker knows its supervisor (see
 * isSupervisedWorker). */
const SUPERVISOR_PID_VARIABLE = 'CELLBLOCK_SUPERVISOR_PID';
/** Set (to 1) by superviseWorkers in a worker it forks after its service has run. */
const SERVICE_RAN_VARIABLE = 'CELLBLOCK_SERVICE_RAN';
/** Over IPC, from a supervised worker: it listens for SERVICE_RAN_MESSAGE (a message sent before
 * its listener was there would have been lost); then, once it is ready. */
const WORKER_LISTENS_MESSAGE = 'cellblock: worker listens';
const WORKER_READY_MESSAGE = 'cellblock: worker ready';
/** Over IPC, from the supervisor: its service has run. */
const SERVICE_RAN_MESSAGE = 'cellblock: service ran';

/** Whether this process is a worker forked by superviseWorkers: the variable names its parent, and
 * it has its IPC channel. Not any process with IPC (pm2's fork mode gives one) nor any `--single`.
 * The variables go, so that this process's own children do not inherit them.
 * Such a worker learns from its supervisor whether its service has run (connection.ts
 * serviceRan): at its fork (SERVICE_RAN_VARIABLE: it replaces a worker process that died), or
 * later while it starts (SERVICE_RAN_MESSAGE: a sibling, or `start`'s API, became ready). A login
 * Redis refuses it is then the outage it is for the service, waited out as its running siblings
 * wait it out, not a setting to stop for with EXIT_SETTING_REFUSED (its supervisor would stop
 * every worker with it): that login was taken, and the password changed on the server meanwhile,
 * or Redis refused it for a moment. */
export function isSupervisedWorker(): boolean {
  const supervisor = process.env[SUPERVISOR_PID_VARIABLE];
  const ranBefore = process.env[SERVICE_RAN_VARIABLE] === '1';
  delete process.env[SUPERVISOR_PID_VARIABLE];
  delete process.env[SERVICE_RAN_VARIABLE];
  const supervised = process.send !== undefined && supervisor === String(process.ppid);
  if (!supervised) return false;
  if (ranBefore) serviceRan();
  process.on('message', (message) => message === SERVICE_RAN_MESSAGE && serviceRan());
  tellSupervisor(WORKER_LISTENS_MESSAGE);
  return true;
}

/** A supervised worker is ready: its supervisor's service has run from now on. */
export function tellSupervisorReady(): void {
  tellSupervisor(WORKER_READY_MESSAGE);
}

function tellSupervisor(message: string): void {
  // The callback takes a failure (the channel closing: the supervisor gone, and this worker stops).
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
}

export interface WorkerSupervisor {
  /** SIGTERM to every child; resolves when all have exited. */
  stop(): Promise<void>;
  /** SIGKILL to every child, restarting none (a second signal to the supervisor: exit now). What
   * they leave (mounts, cgroups) is reclaimed by the next worker's start. */
  kill(): void;
}

/** Runs `count` worker processes (this same program with `worker --single`), restarting any that
 * die, but one that exits with EXIT_SETTING_REFUSED (Redis refused a setting: it would be refused
 * again, and so is every other): that is `onSettingRefused`, once. Once the service has run (a
 * worker process was ready, or a connection of this process was: `start`'s API), every worker
 * process starting, or started from then on, is told so (isSupervisedWorker): a login Redis
 * refuses it is then an outage it waits out; only a database Redis refuses still stops it so. */
export function superviseWorkers(count: number, redisUrl: string, logger: Logger, onSettingRefused: () => void = () => {}): WorkerSupervisor {
  let refused = false;
  const children = new Set<ChildProcess>();
  /** Workers listening for SERVICE_RAN_MESSAGE, until they are told. */
  const listening = new Set<ChildProcess>();
  const tellServiceRan = (child: ChildProcess) => {
    if (child.connected) child.send(SERVICE_RAN_MESSAGE, undefined, undefined, () => {});
  };
  onRun(() => {
    for (const child of listening) tellServiceRan(child);
    listening.clear();
  });
  let stopping = false;
  const quickDeaths = new Map<number, number>();
  const launch = (slot: number) => {
    const launchedAt = Date.now();
    const ranBefore = hasRun();
    const env: NodeJS.ProcessEnv = { ...process.env, CELLBLOCK_REDIS_URL: redisUrl, [SUPERVISOR_PID_VARIABLE]: String(process.pid) };
    // This supervisor's word only, not a variable it was started with.
    if (ranBefore) env[SERVICE_RAN_VARIABLE] = '1';
    else delete env[SERVICE_RAN_VARIABLE];
    const child = fork(process.argv[1]!, ['worker', SINGLE_WORKER_FLAG], { env, execArgv: process.execArgv, stdio: 'inherit' });
    children.add(child);
    child.on('message', (message) => {
      if (message === WORKER_READY_MESSAGE) serviceRan();
      else if (message === WORKER_LISTENS_MESSAGE && hasRun()) tellServiceRan(child);
      else if (message === WORKER_LISTENS_MESSAGE) listening.add(child);
    });
    logger.info({ slot, childPid: child.pid, serviceRan: ranBefore }, 'worker process started');
    child.once('exit', (code, signal) => {
      children.delete(child);
      listening.delete(child);
      if (stopping) return;
      if (code === EXIT_SETTING_REFUSED) {
        logger.error({ slot, childPid: child.pid, code }, 'worker process stopped: Redis refused a setting of CELLBLOCK_REDIS_URL, or evicts keys; not restarted');
        if (!refused) onSettingRefused();
        refused = true;
        return;
      }
      const deaths = Date.now() - launchedAt >= HEALTHY_RUN_MS ? 0 : (quickDeaths.get(slot) ?? 0) + 1;
      quickDeaths.set(slot, deaths);
      const delayMs = Math.min(RESTART_DELAY_MS * 2 ** Math.max(0, deaths - 1), MAX_RESTART_DELAY_MS);
      logger.error({ slot, childPid: child.pid, code, signal, restartInMs: delayMs }, 'worker process died; restarting');
      setTimeout(() => !stopping && launch(slot), delayMs);
    });
  };
  for (let slot = 0; slot < count; slot++) launch(slot);
  return {
    stop: async () => {
      stopping = true;
      const exits = [...children].map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(exits);
    },
    kill: () => {
      stopping = true;
      for (const child of children) child.kill('SIGKILL');
    },
  };
}
