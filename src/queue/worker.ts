// A worker process's queue side: takes jobs from BullMQ, runs each through the executor, stores
// the JobResult as the job's return value. Several jobs at once (`concurrency`); liveness in
// Redis; cancel requests by pub/sub; stalled-job recovery by BullMQ's lock and stall check (a
// job whose worker died is retried once elsewhere, then failed), and a run stopped by its worker
// once its lock may have expired (lock-fence.ts); graceful close: stop taking jobs, let running
// ones finish, and after the grace hand unfinished ones back to the queue (or, Redis not
// answering for 5 s, leave them to the stall check and stop). A live job (live-channel.ts) is
// neither retried nor handed back once its session was told it started: its client's input went
// to the worker that had it, so it fails instead. A worker whose executor can run no more jobs
// (its pool's mount agent died) stops itself the same way, with no grace for its running jobs,
// failing none for it but a live job that had begun (stoppedByItself).
// Beside the jobs, a notifier sends finished jobs' webhooks and callbacks, whichever worker ran
// them (notifier.ts).
//
// Times that another host compares (a job's finish, BullMQ's finishedOn, against the expiry every
// reader and cleaner computes; the run's start and end, against its creation, for its queue wait,
// its latency and its record) are this process's estimate of Redis's clock (redis-clock.ts), as
// the API's creation stamp is (the finish to within 100 ms: where this process's clock agrees so
// far, BullMQ's own stamp and its fetch of the next job stand). The take (BullMQ's processedOn),
// which BullMQ's lock renewals and the lock fence count from, and a delayed hand-back's time stay
// this process's own clock, as BullMQ times its renewals, its delayed waits and their promotion
// (see hand-back.ts).
//
// The path from "taken" to "program started" makes no Redis round trip of its own: the cancel
// marker is read only when a cancel message could have been missed (see cancel-watch.ts), a
// notification is queued beside the run (awaited before the job ends), and the log lines are
// written once the program runs.
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import type { Executor } from '../executor/executor.js';
import type { CompileCacheStats } from '../executor/compile-cache.js';
import type { ExecuteRequest, ExecuteResult } from '../executor/types.js';
import { ExecutorError, type ExecutorErrorCode } from '../executor/errors.js';
import { cutShortByCancel } from '../executor/verdict.js';
import { LATER_JOB_FIELDS, variantJobField, type JobRequest, type JobResult } from '../jobs/model.js';
import { BackgroundLane, jobsAtOnce } from './background-lane.js';
import { startCancelWatch } from './cancel-watch.js';
import { handBackJob } from './hand-back.js';
import { CANCELLED_REASON, LIVE_RETRY_REASON, resultNotStoredReason } from './job-record.js';
import { JobDataError, toExecuteRequest } from './codec.js';
import { createRedis, disconnectWithDuplicates, warnUntilReady, whenReady, workerConnectionName } from './connection.js';
import { startHeartbeat, type WorkerLiveness } from './heartbeat.js';
import { evictionPolicyLog, readMaxmemoryPolicy, writeRefusal } from './redis-health.js';
import { QUEUE_NAME, redisKeys } from './keys.js';
import { RedisClock, REDIS_CLOCK_SYNC_INTERVAL_MS, stampByClock } from './redis-clock.js';
import { queuedByApiReadingResultsApart, storeJobResult } from './result-store.js';
import { REPEATED_ERROR_LOG_INTERVAL_MS, repeatedErrorLogger } from './repeat-log.js';
import { abandonConnection, CLOSE_REDIS_AWAY_MS, settledWithin, startsSettled, watchUnreachable } from './unreachable.js';
import { jobStatsRecorder } from './stats.js';
import { LockFence } from './lock-fence.js';
import { ChannelSubscriber } from './channel-subscriber.js';
import { openLiveChannel, type LiveChannel } from './live-channel.js';
import { NotificationQueue, wantsNotification, type JobNotifications } from './notification-queue.js';
import { Notifier } from './notifier.js';
import type { WebhookPolicy } from './webhook.js';

/** What the worker needs of the executor (src/executor's Executor satisfies it). */
export interface JobExecutor {
  execute(request: ExecuteRequest): Promise<ExecuteResult>;
  close(): Promise<void>;
  /** Pool figures by image, advertised with the heartbeat for /metrics. */
  stats?(): { images: Record<string, object> };
  /** Kept judge compiles' figures (entries, bytes, hits, ...), advertised with the heartbeat. */
  judgeCompileStats?(): CompileCacheStats | undefined;
  /** The cgroups the sandbox uses (which version, where), logged when the worker is ready. */
  readonly cgroups?: Executor['cgroups'];
  /** The runtime variants it runs, advertised with the heartbeat (variantJobField). */
  variants?(): { runtimeId: string; variant: string }[];
  /** Settles when it can run no more jobs (Executor.lost: its pool's mount agent died); the
   * worker then stops itself (QueueWorker.stoppedByItself). */
  readonly lost?: Promise<Error>;
  /** Set once `lost` has happened, read synchronously (before `lost`'s reactions have run): what
   * the worker goes by in deciding to hand a job back. */
  readonly unusable?: Error | undefined;
}

export interface QueueWorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  /** Jobs running longer than backgroundAfterMs stop counting against `concurrency`; this many
   * more may run at once (see background-lane.ts). 0: no lane. */
  backgroundSlots: number;
  /** Wall time after which a job is long. 0: no job is ever long. (The executor's
   * backgroundAfterCpuMs moves the CPU-hungry among them to the background CPU weight.) */
  backgroundAfterMs: number;
  executor: JobExecutor;
  logger: Logger;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  heartbeatTtlMs: number;
  shutdownGraceMs: number;
  webhook: WebhookPolicy;
  /** What a finished job sends, if anything: a /v1 webhook in the API's view of the job, a compat
   * front's callback (bin hands over src/api/notifications.ts's). Sent by this worker's notifier
   * or another's (notifier.ts). */
  notifications: JobNotifications;
  /** How often a job whose sandbox meets a host shortage (no sandbox uid, no file descriptor) goes
   * back to the queue before it fails, and after how long it is taken again the first time
   * (doubling each time): HOST_SHORTAGE_RETRY by default; tests shorten it. */
  hostShortageRetry?: HostShortageRetry;
  /** Aborted when the process is asked to stop while this start is under way: the start ends with
   * WorkerStartStopped, having closed what it had opened, the last first (a connection still
   * waiting for Redis, the liveness key's heartbeat, the Workers), rather than leave them to the
   * process's exit (the liveness key would count a worker gone for its TTL). Already aborted: the
   * start opens nothing and ends so. */
  stop?: AbortSignal;
  /** How long a finished job's result refused by a full Redis is kept here and tried again before
   * the job fails (`result_not_stored`); RESULT_STORE_FULL_RETRY_MS when absent. */
  resultStoreFullRetryMs?: number;
}

/** startQueueWorker's end when its `stop` was aborted before the worker was ready. */
export class WorkerStartStopped extends Error {
  override readonly name = 'WorkerStartStopped';
  constructor() {
    super('asked to stop before the worker was ready');
  }
}

export interface HostShortageRetry {
  handBacks: number;
  firstDelayMs: number;
}

export interface QueueWorker {
  readonly workerId: string;
  /** Jobs running now. */
  readonly running: number;
  /** Closes the worker (a second call waits for the same close). */
  close(): Promise<void>;
  /** Settles, with the cause, once the worker has stopped and closed by itself because its
   * executor can run no more jobs (JobExecutor.lost): it took no job since, and handed back those
   * it could not run and its running ones (a live one that had begun failed). Its process should
   * then exit non-zero, for its supervisor to start a new one. Never settles otherwise. */
  readonly stoppedByItself: Promise<Error>;
}

/** Notification attempts made at once: each waits on a receiver (at most its timeout) far more
 * than it uses this process, and one receiver that never answers holds a slot per attempt. Each
 * holds its job's record and body in memory, as large as the job's output: the policy's
 * memoryBytes bounds them together. */
const NOTIFIER_CONCURRENCY = 16;
/** How long a closing worker lets notifications under way go on (at most its shutdown grace). */
const NOTIFIER_GRACE_MS = 10_000;

const LIVE_SHUTDOWN_REASON = "a live job is not handed to another worker: this one shut down while it ran, and its client's input went with it";
const LIVE_NO_SESSION_REASON = 'a live job is not run without its client: no session listened to it when it started';
const LIVE_UNAVAILABLE_REASON = "a live job is not handed to another worker: this one could run it no further (its pool's mount agent died), and its client's input went to it";
/** Why a live job refused its first slot by a worker that can run no more goes back unrun (logged). */
const LIVE_UNSTARTED_UNAVAILABLE = 'this worker can run the live job no further, and its session was told nothing';
/** Why a live job stopped by the shutdown grace's end before its first stage goes back unrun (logged). */
const LIVE_UNSTARTED_SHUTDOWN = 'this worker shut down before the live job began, and its session was told nothing';
/** How long the count of a live job's takes handed back unrun (RedisKeys.liveUnrunTakes), or of a
 * job's takes that met a host shortage (RedisKeys.hostShortageTakes), is kept: it matters until
 * the job is taken again, normally within seconds. */
const HAND_BACK_COUNT_TTL_MS = 24 * 60 * 60 * 1000;
/** The host's shortages a job's sandbox may meet, none of them the job's fault, and what the
 * worker says as it hands such a job back: every sandbox uid of the machine leased
 * (no_sandbox_uid), held by slots serving jobs (this worker had no idle one to give up), which end
 * within their wall time, or by other workers' ready slots, whose refills pause at the shortage;
 * no file descriptor (no_descriptors: the worker process's open files limit, EMFILE, or the
 * machine's, ENFILE), held by this worker's other jobs and containers, which give theirs back as
 * they end. */
const HOST_SHORTAGES: Partial<Record<ExecutorErrorCode, string>> = {
  no_sandbox_uid: 'no sandbox uid is free for the job',
  no_descriptors: "no file descriptor for the job's sandbox",
};
/** A job that meets a host shortage (HOST_SHORTAGES) goes back to the queue, to be taken again 1,
 * 2, 4, 8 and 16 s later (by this worker or another), and fails at the sixth take that meets one,
 * ~31 s on, whichever shortage each was: one count per job, one rule for both. Bounded, so that a
 * host that stays short (too many workers for its 1024 uids, an open files limit too low for the
 * load) ends its jobs, saying so, instead of passing them round for ever. */
const HOST_SHORTAGE_RETRY: HostShortageRetry = { handBacks: 5, firstDelayMs: 1000 };
/** How long a result a full Redis refuses is tried again (QueueWorkerOptions.resultStoreFullRetryMs):
 * long enough for an operator paged by /readyz to free memory, short enough that a slot is not
 * held for long by a result that cannot be stored. The job's lock is kept meanwhile. */
const RESULT_STORE_FULL_RETRY_MS = 60_000;
/** Waits between tries, doubling from the first to the last. */
const RESULT_STORE_RETRY_FIRST_MS = 250;
const RESULT_STORE_RETRY_MAX_MS = 2000;
/**
 * Renews a job's lock (KEYS[1]) for ARGV[2] ms if ARGV[1] still holds it: by PEXPIRE, which a full
 * Redis takes (it needs no memory), where BullMQ's own renewal (a SET) is refused. 1 if renewed.
 */
const KEEP_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

/** Why a running job's signal was aborted: a cancel, this worker stopping, its lock lost or
 * possibly expired (the job is no longer this worker's: BullMQ's stall check hands it to another,
 * or already did, or may have), or, live, no session listening to it. */
type AbortReason = 'cancelled' | 'shutdown' | 'lock_lost' | 'no_session';

/** A run under way: its job, its signal, the slot (the BullMQ Worker) that took the job, and
 * what stops it once its lock may have expired. */
interface RunningJob {
  jobId: string;
  controller: AbortController;
  slot: number;
  fence: LockFence;
}

function poolFigures(executor: JobExecutor): Record<string, Record<string, number>> | undefined {
  const stats = executor.stats?.();
  if (!stats) return undefined;
  const figures: Record<string, Record<string, number>> = {};
  for (const [image, imageStats] of Object.entries(stats.images)) {
    figures[image] = {};
    for (const [figure, value] of Object.entries(imageStats)) {
      if (typeof value === 'number') figures[image][figure] = value;
    }
  }
  return figures;
}

/** Logs Redis's refusals of the heartbeat's write for want of memory as they start and end: an
 * error once it is full, info once it takes writes again. */
function redisFullLog(log: Logger): (full: boolean) => void {
  let wasFull = false;
  return (full) => {
    if (full === wasFull) return;
    wasFull = full;
    if (full) log.error("Redis is full (its used memory is over its maxmemory) and refuses writes: no job can be taken, and large results wait to be stored; this worker's liveness is kept by renewing its key's expiry");
    else log.info('Redis takes writes again');
  };
}

/** What a job failed by the worker's own side tells its submitter. The executor's refusals and
 * the job data's checks are written for the submitter; any other error (a file system call's, the
 * pool's mount agent's, a cgroup's) may name the host's paths (the pool's state dir, a slot's),
 * which are the log's: said by what failed and its code alone. */
function failureMessage(error: unknown): string {
  if (error instanceof ExecutorError || error instanceof JobDataError) return error.message;
  const { step, syscall, op, code, name } = error as { step?: string; syscall?: string; op?: string; code?: string; name?: string };
  const what = step !== undefined ? `the sandbox's setup step ${step}` : (syscall ?? op ?? name ?? 'the worker');
  return `${what} failed (${code ?? 'no code'}); the worker's log has the details, under this job's id`;
}

/** What a start sequence has opened so far, each with its close. */
class OpenedSoFar {
  private readonly closes: (() => unknown)[] = [];
  private closed = false;

  /** Once closeAll has begun (a stop while the steps go on), what a step opens is closed at once
   * and the steps end there (WorkerStartStopped). */
  add(close: () => unknown): void {
    if (this.closed) {
      void settledWithin(Promise.resolve().then(close), CLOSE_REDIS_AWAY_MS);
      throw new WorkerStartStopped();
    }
    this.closes.push(close);
  }

  /** Closes it all, the last opened first, each close waited for no longer than a Redis away is
   * waited for when closing. */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const close of this.closes.splice(0).reverse()) await settledWithin(Promise.resolve().then(close), CLOSE_REDIS_AWAY_MS);
  }
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const opened = new OpenedSoFar();
  const { stop } = options;
  // Stopped before it began (its caller's own start took a while): nothing to open.
  if (stop?.aborted) throw new WorkerStartStopped();
  let onStop = () => {};
  // Never settles unless `stop` is aborted first.
  const stopped = new Promise<never>((_resolve, reject) => (onStop = () => reject(new WorkerStartStopped())));
  stopped.catch(() => {});
  stop?.addEventListener('abort', onStop, { once: true });
  const opening = openQueueWorker(options, opened);
  try {
    return await Promise.race([opening, stopped]);
  } catch (error) {
    // A start that failed at any step (a refused setting, Redis refusing a command BullMQ sends
    // as it starts, a step that throws), or was stopped, leaves nothing open: its connections
    // would go on trying, keeping the process alive, subscribed, and its liveness key saying it
    // runs.
    // Stopped: the steps under way end at their next opening, on the connections closed under
    // them, or at the check after the last one (openQueueWorker), so that none finishes.
    await opened.closeAll();
    throw error;
  } finally {
    stop?.removeEventListener('abort', onStop);
  }
}

/** startQueueWorker's steps; each thing opened is added to `opened` as it is. */
async function openQueueWorker(options: QueueWorkerOptions, opened: OpenedSoFar): Promise<QueueWorker> {
  const { executor, logger } = options;
  const keys = redisKeys(options.prefix);
  const workerId = `${os.hostname()}-${process.pid}-${nanoid(6)}`;
  const log = logger.child({ workerId });
  const redis = createRedis(options.redisUrl, 'blocking', workerConnectionName(workerId));
  // With its duplicates: the notifier's BullMQ Worker blocks on one.
  opened.add(() => disconnectWithDuplicates(redis));
  // Redis away at start-up: said once, as the API says it (ioredis keeps trying quietly, and the
  // start waits for it); `worker ready` follows once it is back.
  warnUntilReady(redis, log, 'redis not reachable yet; the worker starts once it is');
  const clock = new RedisClock(redis);
  const subscriber = createRedis(options.redisUrl, 'blocking', `cellblock-worker-cancel-${workerId}`);
  opened.add(() => subscriber.disconnect());
  const liveInputs = new ChannelSubscriber(options.redisUrl, `cellblock-worker-live-${workerId}`);
  opened.add(() => liveInputs.close());
  /** The runs under way. Usually one per job; but a job stalled here (its lock lost) can be taken
   * again by another slot of this process while its first run ends, and each slot's BullMQ
   * Worker speaks for its own run only. */
  const runs = new Set<RunningJob>();
  const notificationQueue = new NotificationQueue(redis, options.prefix);
  opened.add(async () => {
    await notificationQueue.startSettled(CLOSE_REDIS_AWAY_MS);
    await notificationQueue.close();
  });
  /** Finished jobs' notifications being sent now (NotificationQueue.sendNow; awaited when closing). */
  const notificationsSentNow = new Set<Promise<void>>();
  const stopNotifier = new AbortController();
  // Each attempt under way, or waiting for the notifier's memory budget, listens for the stop.
  setMaxListeners(NOTIFIER_CONCURRENCY * 2, stopNotifier.signal);
  // Listening before any job can be taken: a cancel heard from now on reaches its job.
  const cancelRunning = (jobId: string): boolean => {
    const cancelled = [...runs].filter((run) => run.jobId === jobId);
    if (cancelled.length === 0) return false;
    log.info({ jobId }, 'cancelling running job');
    for (const run of cancelled) run.controller.abort('cancelled' satisfies AbortReason);
    return true;
  };
  /** After a break in the cancel subscription: a cancel published during it was heard by no one,
   * but its marker stays. Every job running here is looked up. */
  async function cancelMarkedRunningJobs(): Promise<void> {
    const ids = [...new Set([...runs].map((run) => run.jobId))];
    if (ids.length === 0) return;
    const lookups = redis.pipeline();
    for (const id of ids) lookups.exists(keys.cancelled(id));
    const answers = (await lookups.exec()) ?? [];
    ids.forEach((id, i) => {
      const [error, exists] = answers[i] ?? [];
      if (!error && exists === 1) cancelRunning(id);
    });
  }
  // Subscribed once its connection is ready: a SUBSCRIBE queued before fails at a login Redis
  // refuses (ioredis fails its queue then), which, in a process whose service has run (a worker
  // process started again by its supervisor, Redis's password changed meanwhile), is an outage to
  // wait out. A refusal of a setting ends the wait (whenReady).
  await whenReady(subscriber);
  const cancels = await startCancelWatch(
    subscriber,
    keys.cancelChannel,
    cancelRunning,
    () => void cancelMarkedRunningJobs().catch((error: unknown) => log.warn({ err: error }, 'cannot look up cancels after a break in their subscription')),
  );
  // Read before any job is taken (Redis answers by now: the subscription above went through).
  const logClockError = repeatedErrorLogger(log, "cannot read Redis's clock; the last reading's offset stands", REPEATED_ERROR_LOG_INTERVAL_MS);
  await clock.sync().catch((error: unknown) => logClockError(error as Error));
  clock.start(REDIS_CLOCK_SYNC_INTERVAL_MS, (error) => logClockError(error as Error));
  // Its timer would go on reading (and failing, logged) on the connection closed before it.
  opened.add(() => clock.stop());

  /** Whether the job was cancelled before it could run: marked cancelled while queued, and taken
   * before the API could remove it. Asked after the job is registered in `runs`, so that a
   * cancel message from now on aborts it instead. */
  async function cancelledBeforeRun(job: Job<JobRequest, JobResult>): Promise<boolean> {
    if (cancels.heard(job.id!)) return true;
    // A first attempt whose cancel came after it was taken (the API removes a job it finds
    // queued, and publishes only when it could not): the message cannot have been missed if the
    // subscription held since the take. A retried job may have been cancelled while no worker
    // held it, which only the marker tells.
    if (job.attemptsStarted <= 1 && job.processedOn !== undefined && cancels.listeningSince(job.processedOn)) return false;
    return (await redis.exists(keys.cancelled(job.id!))) === 1;
  }

  /** Why this worker can run no more jobs (JobExecutor.unusable), if it cannot: a job taken from
   * then on goes back to the queue unrun, and the worker is stopping itself. */
  const cannotRun = (): Error | undefined => executor.unusable;

  /** A live job's take that goes back to the queue before its session was told `started`: the
   * worker taking it next is told (liveUnrunTakes) that this take does not count as a run its
   * client's input went to. Nothing for a job that is not live. */
  async function countUnrunLiveTake(job: Job<JobRequest, JobResult>): Promise<void> {
    if ((job.data as JobRequest | null)?.live !== true) return;
    const key = keys.liveUnrunTakes(job.id!);
    await redis.multi().incr(key).pexpire(key, HAND_BACK_COUNT_TTL_MS).exec();
  }

  /** A job this worker cannot run, back to the queue before anything of it ran: taken after the
   * executor became unusable (a take racing the worker's stop), or, live, refused its first slot
   * before its session was told `started` (LiveChannel.started), so that its client's input,
   * held by its session until then, still goes to the worker that runs it. That worker is told
   * (liveUnrunTakes) that this take does not count as a run the input went to. */
  async function handBackUnrun(job: Job<JobRequest, JobResult>, token: string | undefined, why = 'job taken after this worker became unable to run jobs'): Promise<never> {
    log.warn({ jobId: job.id, err: cannotRun() }, `${why}; returning it to the queue unrun`);
    await countUnrunLiveTake(job);
    return handBackJob(job, token);
  }

  const hostShortageRetry = options.hostShortageRetry ?? HOST_SHORTAGE_RETRY;
  /** A job whose sandbox met a host shortage (HOST_SHORTAGES), back to the queue to be taken
   * again later, by this worker or another (HOST_SHORTAGE_RETRY), as long as its takes that met
   * one, of either kind, went back fewer than `handBacks` times; a live one only while its
   * session was told nothing (its first slot's shortage; counted unrun). Resolves with the
   * failure's message where it may go back no more: this shortage's own, and how long it was
   * tried. */
  async function handBackAtHostShortage(job: Job<JobRequest, JobResult>, token: string | undefined, error: ExecutorError, live: LiveChannel | undefined): Promise<string> {
    if (live?.started === true) return `executor: ${error.message}`;
    const key = keys.hostShortageTakes(job.id!, job.timestamp);
    const [incrError, counted] = (await redis.multi().incr(key).pexpire(key, HAND_BACK_COUNT_TTL_MS).exec())?.[0] ?? [new Error('the count of its host shortages was discarded')];
    if (incrError) throw incrError;
    const shortages = Number(counted);
    const { handBacks, firstDelayMs } = hostShortageRetry;
    if (shortages > handBacks) {
      const waitedMs = firstDelayMs * (2 ** handBacks - 1);
      const tried = handBacks > 0 ? `; it was taken again ${handBacks} times over ${Math.round(waitedMs / 1000)} s, each time short of a sandbox uid or a file descriptor` : '';
      return `executor: ${error.message}${tried}`;
    }
    const delayMs = firstDelayMs * 2 ** (shortages - 1);
    log.warn({ jobId: job.id, err: error, handBack: shortages, of: handBacks, delayMs }, `${HOST_SHORTAGES[error.code]}; returning it to the queue, to be taken again later`);
    await countUnrunLiveTake(job);
    return handBackJob(job, token, delayMs);
  }

  /** Whether a live job taken again was run before, its client's input going to that run: not
   * when every earlier take was handed back unrun (handBackUnrun). */
  async function liveJobRanBefore(job: Job<JobRequest, JobResult>): Promise<boolean> {
    if (job.attemptsStarted <= 1) return false;
    const unrunTakes = Number((await redis.get(keys.liveUnrunTakes(job.id!))) ?? 0);
    return job.attemptsStarted - 1 > unrunTakes;
  }

  /**
   * Stores a finished job's result (`store`, which leaves nothing of it behind when refused),
   * trying again while Redis refuses it for want of memory, the result kept in memory and the
   * job's lock kept (KEEP_LOCK), for up to resultStoreFullRetryMs; then the job fails, saying
   * so (`result_not_stored`), and the worker logs it. A job's completion itself is taken by a
   * full Redis (BullMQ's script deletes the lock first, and a script that has written may go on),
   * so only a result kept apart (result-store.ts) meets this.
   */
  async function storeWhileFull<T>(job: Job<JobRequest, JobResult>, token: string | undefined, verdict: string, store: () => Promise<T>): Promise<T> {
    const startedMs = Date.now();
    const retryMs = options.resultStoreFullRetryMs ?? RESULT_STORE_FULL_RETRY_MS;
    let waitMs = RESULT_STORE_RETRY_FIRST_MS;
    for (let tries = 1; ; tries++) {
      try {
        return await store();
      } catch (error) {
        if (writeRefusal(error) !== 'full') throw error;
        const triedMs = Date.now() - startedMs;
        if (triedMs + waitMs > retryMs) {
          log.error({ jobId: job.id, verdict, tries, triedMs, err: error }, "the job's result is not stored: Redis is full and refused it for as long as it was tried; the job fails (result_not_stored)");
          throw new UnrecoverableError(resultNotStoredReason(verdict, triedMs));
        }
        if (tries === 1) log.warn({ jobId: job.id, verdict, retryMs }, "Redis is full and refuses the job's result: kept here, and tried again");
        // Held past this wait and the next try by a lock's duration, as BullMQ's renewal would.
        if (token !== undefined) {
          await redis.eval(KEEP_LOCK, 1, `${job.queueQualifiedName}:${job.id}:lock`, token, options.lockDurationMs + waitMs).catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, waitMs));
        waitMs = Math.min(waitMs * 2, RESULT_STORE_RETRY_MAX_MS);
      }
    }
  }

  async function processJob(slot: number, job: Job<JobRequest, JobResult>, token?: string, bullSignal?: AbortSignal): Promise<JobResult> {
    if (cannotRun()) return handBackUnrun(job, token);
    const jobId = job.id!;
    // Both by Redis's clock (the API's stamp and this worker's reading): the difference of two
    // machines' clocks is not in it. (Clamped: two estimates may cross by their errors, ~1 ms.)
    const startedAtMs = clock.now();
    const queueWaitMs = Math.max(0, startedAtMs - job.timestamp);
    const controller = new AbortController();
    // From the take's own timestamp (processedOn: this process's Date.now(), read before the take
    // was sent, as BullMQ's lock manager counts from it too), renewed as the slot's renewals are
    // answered (extendJobLocks below).
    const fence = new LockFence(options.lockDurationMs, job.processedOn ?? Date.now(), () => {
      log.warn({ jobId, lockDurationMs: options.lockDurationMs }, "job's lock not renewed for its duration (Redis not answering): stopping its run, since another worker may take the job now");
      controller.abort('lock_lost' satisfies AbortReason);
    });
    const run: RunningJob = { jobId, controller, slot, fence };
    runs.add(run);
    // `lane` is made below, from the Workers this function is handed to; none of them runs a job
    // before it exists (they start after it).
    const untrack = lane.track();
    bullSignal?.addEventListener('abort', () => controller.abort('cancelled' satisfies AbortReason), { once: true });
    // Queued beside the run, awaited before the job can finish: from then on the job's
    // notification is Redis's, whatever becomes of this worker.
    const notificationQueued = wantsNotification(options.notifications, job.data)
      ? notificationQueue
          .queueDelayed({ id: jobId, timestamp: job.timestamp })
          .catch((error: unknown) => log.warn({ err: error, jobId }, "cannot queue the job's notification; it is queued when the job ends"))
      : undefined;
    let live: LiveChannel | undefined;
    try {
      if (await cancelledBeforeRun(job)) {
        log.info({ jobId }, 'job was cancelled before it ran');
        throw new UnrecoverableError(CANCELLED_REASON);
      }
      if ((job.data as JobRequest | null)?.live === true) {
        if (await liveJobRanBefore(job)) throw new UnrecoverableError(LIVE_RETRY_REASON);
        // Checked again after the awaits above, sparing the channel's subscription.
        if (cannotRun()) return await handBackUnrun(job, token);
        live = await openLiveChannel(liveInputs, redis, keys, jobId, { terminal: job.data.terminal, stopped: controller.signal });
        // Beside the run: a job whose client has gone would wait for input until its wall time.
        // (A run already aborted keeps its reason: a second abort does nothing.)
        void live
          .sessionListens()
          .then((listens) => listens || controller.abort('no_session' satisfies AbortReason))
          .catch(() => undefined);
      }
      let result: ExecuteResult;
      try {
        const request = toExecuteRequest(job.data, controller.signal, { readsResultsApart: queuedByApiReadingResultsApart(job.opts) });
        const running = executor.execute(live ? { ...request, live } : request);
        // After the program has been started (the executor gets there without a macrotask). At
        // debug: each line costs the worker a write (~0.3 ms of CPU here); 'job finished' says it all.
        if (log.isLevelEnabled('debug')) setImmediate(() => log.debug({ jobId, runtimeId: job.data.runtimeId }, 'job started'));
        result = await running;
        // Nothing left to stop: a result stored without the lock is refused by Redis.
        fence.stop();
      } catch (error) {
        if (error instanceof ExecutorError && error.code === 'unavailable') {
          // Not the job's fault: this worker can run no more jobs (it is stopping itself). A stage
          // may have run here already: another worker runs the job from its start. A live job
          // whose session was told `started` sent its client's input here, so it is failed, as at
          // a shutdown; one refused its first slot was told nothing, and goes back unrun.
          if (live?.started === false) return await handBackUnrun(job, token, LIVE_UNSTARTED_UNAVAILABLE);
          if (live) throw new UnrecoverableError(LIVE_UNAVAILABLE_REASON);
          log.warn({ jobId, err: error }, 'this worker can run the job no further; returning it to the queue');
          return await handBackJob(job, token);
        }
        if (error instanceof ExecutorError && HOST_SHORTAGES[error.code] !== undefined) {
          // The host's shortage, not the job's fault: taken again later, a few times. A stage may
          // have run here already (a compile): the job runs again from its start. A live job
          // told `started` (its compile ran) fails at once: its client's input came here.
          const failure = await handBackAtHostShortage(job, token, error, live);
          log.error({ err: error, jobId }, 'executor failed the job');
          throw new UnrecoverableError(failure);
        }
        // The executor refused the job (unknown runtime, bad request, closed): retrying cannot help.
        log.error({ err: error, jobId }, 'executor failed the job');
        throw new UnrecoverableError(`executor: ${failureMessage(error)}`);
      }
      // A job whose stages had all ended by themselves just before this worker began to stop keeps
      // its result; one the stop cut short is handed on, or, live, failed (its session is this
      // worker's).
      const abortedFor = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
      if (abortedFor === 'lock_lost' && cutShortByCancel(result)) {
        // Its result could not be stored (Redis refuses a finish without the lock); the stall
        // check returns it to the queue, or fails it past maxStalledCount (a live job is failed
        // when taken again). DelayedError: BullMQ leaves the job as it is and takes the next one.
        log.warn({ jobId }, 'run stopped: the job\'s lock was lost, so it is no longer this worker\'s');
        throw new DelayedError();
      }
      if (abortedFor === 'no_session' && cutShortByCancel(result)) {
        log.warn({ jobId }, 'live job stopped: no session listens to it');
        throw new UnrecoverableError(LIVE_NO_SESSION_REASON);
      }
      if (abortedFor === 'shutdown' && cutShortByCancel(result)) {
        // Stopped before its first stage (its slot being had) by a worker that can run no more, or
        // whose shutdown grace ran out: its session was told nothing (the channel says nothing
        // once the run is stopped), so its client's input is still the session's, as above.
        if (live?.started === false) return await handBackUnrun(job, token, cannotRun() ? LIVE_UNSTARTED_UNAVAILABLE : LIVE_UNSTARTED_SHUTDOWN);
        if (live) throw new UnrecoverableError(cannotRun() ? LIVE_UNAVAILABLE_REASON : LIVE_SHUTDOWN_REASON);
        // Killed only because this worker is stopping: hand the job back for another worker.
        log.warn({ jobId }, 'job interrupted by shutdown; returning it to the queue');
        return await handBackJob(job, token);
      }
      const attempt = { number: job.attemptsStarted, startedAtMs, finishedAtMs: clock.now() };
      // A large result goes into a key of its own first, the return value its stub (result-store.ts).
      // The job's finish follows within the lock's duration (else Redis refuses it): the key's
      // expiry is that much later than the result's TTL from now.
      return await storeWhileFull(job, token, result.verdict, () => storeJobResult(redis, keys, job, result, queueWaitMs, attempt, options.lockDurationMs));
    } finally {
      // Before BullMQ completes the job (a large result's own key is written by then): the session
      // hears `end` before the job's completion.
      if (live) await live.close();
      await notificationQueued;
      fence.stop();
      untrack();
      runs.delete(run);
    }
  }

  const bullRedis = createRedis(options.redisUrl, 'blocking', `cellblock-worker-bull-${workerId}`);
  // With its duplicates: each BullMQ Worker blocks on one.
  opened.add(() => disconnectWithDuplicates(bullRedis));
  // One BullMQ Worker per slot, each taking one job at a time: a Worker with concurrency > 1,
  // having taken a job, first asks Redis for another (a round trip that finds none when traffic
  // is sporadic) and only then starts the one it has. Each Worker blocks on its own connection
  // (BullMQ duplicates ours); one stall checker is enough for the process.
  // The background lane's Workers come after the slots' and take jobs only while long jobs run.
  const bullWorkerCount = jobsAtOnce(options.concurrency, options.backgroundSlots, options.backgroundAfterMs);
  const workers = Array.from(
    { length: bullWorkerCount },
    (_, slot) =>
      new Worker<JobRequest, JobResult>(QUEUE_NAME, (job, token, signal) => processJob(slot, job, token, signal), {
        connection: bullRedis,
        prefix: options.prefix,
        concurrency: 1,
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledIntervalMs,
        maxStalledCount: options.maxStalledCount,
        skipStalledCheck: slot > 0,
        autorun: false,
      }),
  );
  // Their finishes stamped by Redis's clock where this process's is off it; their takes by this
  // process's (stampByClock).
  const unknownLayouts = new Set<string>();
  for (const worker of workers) {
    stampByClock(worker.scripts, clock, (command) => {
      if (unknownLayouts.has(command)) return;
      unknownLayouts.add(command);
      log.warn({ command }, "BullMQ's script has no time where this version's had one: its jobs are stamped by this machine's clock");
    });
  }
  // BullMQ's resume() restarts a stopped Worker by calling run() and dropping its promise, so a
  // failure there would be an unhandled rejection: every Worker's run() logs its failure instead.
  // Each slot's lock renewals (its LockManager calls extendJobLocks) tell its runs' fences when
  // they were sent, once answered: BullMQ's own 'locksRenewed' event says which, not when.
  workers.forEach((worker, slot) => {
    const run = worker.run.bind(worker);
    worker.run = () => run().catch((error: unknown) => log.error({ err: error }, 'worker stopped'));
    const extendJobLocks = worker.extendJobLocks.bind(worker);
    worker.extendJobLocks = async (jobIds, tokens, durationMs) => {
      const sentAtMs = performance.now();
      const refused = await extendJobLocks(jobIds, tokens, durationMs);
      for (const running of runs) {
        if (running.slot === slot && jobIds.includes(running.jobId) && !refused.includes(running.jobId)) running.fence.renewed(sentAtMs);
      }
      return refused;
    };
  });
  opened.add(async () => {
    await Promise.all(workers.map((worker) => startsSettled(worker, CLOSE_REDIS_AWAY_MS)));
    await Promise.all(workers.map((worker) => worker.close(true)));
  });
  const lane = new BackgroundLane(workers.slice(options.concurrency), options.backgroundAfterMs, (error) =>
    log.warn({ err: error }, 'cannot pause a background lane worker'),
  );

  const stats = jobStatsRecorder(redis, keys, (error, lostJobs) => log.warn({ err: error, lostJobs }, 'cannot record job stats'));

  function finished(job: Job<JobRequest, JobResult>, outcome: string): void {
    // Now, as BullMQ has just stored the end, by Redis's clock: the one the job's creation is in.
    const latencyMs = Math.max(0, clock.now() - job.timestamp);
    stats.record(outcome, latencyMs);
    // The data is another producer's where it failed as not a JobRequest: null, say.
    if (!wantsNotification(options.notifications, job.data)) return;
    // Lost with this worker, the promotion is made by the entry's own recheck (notifier.ts).
    const sending = notificationQueue
      .sendNow({ id: job.id!, timestamp: job.timestamp })
      .catch((error: unknown) => log.warn({ jobId: job.id, err: error }, "cannot send the job's notification now; its entry, if queued as the job started, is sent at its recheck"));
    notificationsSentNow.add(sending);
    void sending.finally(() => notificationsSentNow.delete(sending));
  }

  const logWorkerError = repeatedErrorLogger(log, 'worker error', REPEATED_ERROR_LOG_INTERVAL_MS);
  workers.forEach((worker, slot) => {
    worker.on('completed', (job, result) => {
      finished(job, result.verdict);
      // Here, not as the run ends: Redis has taken the result (a worker cut off from Redis, or
      // paused past its lock, has its result refused, which its 'error' says). On the next turn,
      // while the slot's next take is in flight to Redis: the line costs the worker a write (~0.3
      // ms of CPU here).
      setImmediate(() =>
        log.info(
          { jobId: job.id, runtimeId: job.data.runtimeId, verdict: result.verdict, queueWaitMs: result.queueWaitMs, attempt: job.attemptsStarted, stalls: job.stalledCounter },
          'job finished',
        ),
      );
    });
    worker.on('failed', (job, error) => {
      if (!job || error instanceof DelayedError || error.name === 'DelayedError') return;
      finished(job, job.failedReason === CANCELLED_REASON ? 'cancelled' : 'failed');
    });
    // A job that stalls more often than maxStalledCount goes back to wait marked for failure; the
    // worker that next takes it fails it without running it, and that 'failed' event counts it.
    worker.on('stalled', (jobId) => log.warn({ jobId }, 'job stalled: its worker stopped renewing the lock'));
    // The lock had expired or was another worker's when renewed (this process cut off from Redis,
    // or its event loop stalled, for longer than lockDurationMs): the job will run again
    // elsewhere, and this run's result would be refused. Stopping it frees the slot now, and a
    // live job's session hears its end instead of a program no one can store.
    worker.on('lockRenewalFailed', (jobIds) => {
      for (const run of runs) {
        if (run.slot === slot && jobIds.includes(run.jobId)) run.controller.abort('lock_lost' satisfies AbortReason);
      }
    });
    worker.on('error', logWorkerError);
  });

  const policyLog = evictionPolicyLog(log);
  // The later fields this worker knows, and the runtime variants its runtime files define.
  const jobFields = [...LATER_JOB_FIELDS, ...(executor.variants?.() ?? []).map(({ runtimeId, variant }) => variantJobField(runtimeId, variant))];
  const heartbeat = startHeartbeat(
    redis,
    keys,
    options.heartbeatTtlMs,
    (): WorkerLiveness => {
      const liveness: WorkerLiveness = {
        workerId,
        host: os.hostname(),
        pid: process.pid,
        concurrency: options.concurrency,
        running: runs.size,
        jobFields: [...jobFields],
      };
      const pool = poolFigures(executor);
      if (pool) liveness.pool = pool;
      const judgeCompiles = executor.judgeCompileStats?.();
      if (judgeCompiles) liveness.judgeCompiles = { ...judgeCompiles };
      return liveness;
    },
    (error) => log.warn({ err: error }, 'heartbeat failed'),
    redisFullLog(log),
    () => {
      // Redis's eviction policy, read at each beat: a change while the worker runs is logged (its
      // start refused an evicting Redis: connection.ts). Not queued while Redis is away.
      if (redis.status === 'ready') readMaxmemoryPolicy(redis).then(policyLog, () => {});
    },
  );
  opened.add(() => heartbeat.stop());

  const notifier = new Notifier({
    connection: redis,
    prefix: options.prefix,
    keys,
    concurrency: NOTIFIER_CONCURRENCY,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    notifications: options.notifications,
    policy: options.webhook,
    log,
    stop: stopNotifier.signal,
  });

  opened.add(async () => {
    await notifier.startSettled(CLOSE_REDIS_AWAY_MS);
    await notifier.close(true);
  });

  // Taking jobs (and notifications) once every part is ready: a start that fails has taken none.
  await Promise.all([...workers.map((worker) => worker.waitUntilReady()), notifier.waitUntilReady()]);
  // A stop while they got ready has closed them (startQueueWorker): none is run, and the start
  // ends as stopped. From here to the return nothing is awaited, so that a start that returns
  // was not stopped first.
  if (options.stop?.aborted) throw new WorkerStartStopped();
  for (const worker of workers.slice(0, options.concurrency)) void worker.run();
  notifier.run();
  log.info(
    {
      concurrency: options.concurrency,
      backgroundSlots: bullWorkerCount - options.concurrency,
      backgroundAfterMs: options.backgroundAfterMs,
      prefix: options.prefix,
      cgroups: executor.cgroups,
    },
    'worker ready',
  );
  if (executor.cgroups?.oomScoreAdjRaisedFrom !== undefined) {
    log.warn(
      { from: executor.cgroups.oomScoreAdjRaisedFrom, to: -999 },
      "the worker's oom_score_adj was raised: at -1000 the OOM killer spares a process, and the programs inherit it, so that a memory bomb would not be killed at its memory limit",
    );
  }
  if (executor.cgroups?.delegation && executor.cgroups.delegation.mark === undefined) {
    const { base, parents } = executor.cgroups.delegation;
    // v1: each controller's parent too, which need not all be in one unit's cgroup.
    log.warn(
      { base, ...(parents ? { parents } : {}) },
      'CELLBLOCK_CGROUP_BASE=delegated: nothing marks this cgroup (or its parent) as delegated (systemd 251+ sets trusted.delegate with Delegate=yes); where its manager did not delegate it, cellblock is writing in a cgroup it does not own',
    );
  }
  if (executor.cgroups?.hostProcessesMovedTo) {
    log.info(
      { leaf: executor.cgroups.hostProcessesMovedTo },
      "cgroup v2: the processes of the cgroup the sandboxes' parent is under (a container's own cgroup namespace, or a cgroup delegated to cellblock) were moved to a leaf so that cpu, memory and pids could be enabled for the sandboxes",
    );
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      let abandoned = false;
      const abandonBullConnections = async () => {
        if (abandoned) return;
        abandoned = true;
        const marked = await Promise.all([...workers.map(abandonConnection), notifier.abandonConnection()]);
        if (marked.includes(false)) log.warn("BullMQ's Worker has no connection field to mark closing: a job ending now may keep this process busy");
      };
      lane.close();
      log.info({ running: runs.size, graceMs: options.shutdownGraceMs }, 'worker closing: no new jobs');
      const grace = setTimeout(() => {
        log.warn({ running: runs.size }, 'shutdown grace over: interrupting running jobs');
        for (const { controller } of runs) controller.abort('shutdown' satisfies AbortReason);
      }, options.shutdownGraceMs);
      // BullMQ's close waits for Redis (its QUIT is queued while Redis is away). When Redis stays
      // away, the running jobs' results could not be stored anyway: their locks expire and
      // another worker retries them. So stop waiting, and close what is ours: from now to the end
      // of the close, whenever Redis has not answered for CLOSE_REDIS_AWAY_MS (down, loading its
      // data, or cut off by the network, where the connection still says it is ready).
      const redisAway = watchUnreachable(bullRedis, CLOSE_REDIS_AWAY_MS);
      let redisGone = false;
      const gaveUp = redisAway.reached.then(async () => {
        redisGone = true;
        clearTimeout(grace);
        log.warn({ running: runs.size, awayMs: CLOSE_REDIS_AWAY_MS }, 'redis unreachable while closing: leaving running jobs to another worker');
        for (const { controller } of runs) controller.abort('shutdown' satisfies AbortReason);
        // Without Redis nothing can be handed back or taken: the notifications' entries' locks
        // expire, as the jobs' do.
        stopNotifier.abort();
        // The jobs' ends are not stored (abandonConnection says why); pending commands (the
        // heartbeat's delete among them) fail now instead of waiting.
        await abandonBullConnections();
        for (const connection of [subscriber, redis, bullRedis]) connection.disconnect();
      });
      const closed = Promise.all(workers.map((worker) => worker.close()));
      await Promise.race([closed, gaveUp]);
      clearTimeout(grace);
      await settledWithin(stats.flush(), CLOSE_REDIS_AWAY_MS);
      clock.stop();
      await heartbeat.stop();
      await settledWithin(Promise.allSettled([...notificationsSentNow]), CLOSE_REDIS_AWAY_MS);
      // Notifications under way get a short while more; then they are handed back to the queue,
      // for another worker's notifier (or this one's next start).
      const notifierGrace = setTimeout(() => stopNotifier.abort(), Math.min(options.shutdownGraceMs, NOTIFIER_GRACE_MS));
      await settledWithin(notifier.close(redisGone), NOTIFIER_GRACE_MS + CLOSE_REDIS_AWAY_MS);
      clearTimeout(notifierGrace);
      await settledWithin(notificationQueue.close(), CLOSE_REDIS_AWAY_MS);
      await executor.close();
      redisAway.cancel();
      // BullMQ leaves the connection it was handed open. A notifier whose close gave up above
      // (Redis gone meanwhile) may still have an entry's end to store: abandoned first.
      await abandonBullConnections();
      for (const connection of [subscriber, redis, bullRedis]) connection.disconnect();
      liveInputs.close();
      log.info('worker closed');
    })());

  // The executor can run no more jobs: this worker stops taking them at once, gives up counting
  // as alive (its liveness key goes now: /readyz must not count a worker that takes nothing),
  // hands back what it takes meanwhile, stops its running jobs (below) and closes; its process
  // then exits non-zero (bin), and its supervisor starts a new worker, whose pool starts afresh.
  const stoppedByItself = (executor.lost ?? new Promise<never>(() => {})).then(async (cause) => {
    log.error({ err: cause }, "this worker can run no more jobs (its pool's mount agent died): it takes no more, stops its running jobs and returns them and those it took to the queue, and stops");
    // The close first: it stops the BullMQ Workers taking jobs in this very turn.
    const closed = close();
    // Its running jobs are stopped now, not given the shutdown grace: the agent held their uids'
    // leases and the owner dir's lock, which the kernel dropped with it, so another worker may
    // lease a uid one of them runs as (jobs sharing a uid share its kernel limits) or, starting
    // on the same state dir, reclaim the dir under them. Stopped this way, each goes back to the
    // queue as at a shutdown (a live one fails: its session is this worker's); one that ended by
    // itself meanwhile keeps its result.
    for (const { controller } of runs) controller.abort('shutdown' satisfies AbortReason);
    await heartbeat.stop();
    await closed.catch((error: unknown) => log.error({ err: error }, 'worker close failed'));
    return cause;
  });

  return {
    workerId,
    get running() {
      return runs.size;
    },
    close,
    stoppedByItself,
  };
}
