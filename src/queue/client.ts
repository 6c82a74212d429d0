// JobClient over BullMQ: the API's side of the queue. Job data is the JobRequest, the job id a
// nanoid, the return value the JobResult. Finished jobs stay readable for `resultTtlSeconds` after
// they finished: reads stop at it (readJobRecord, job-record.ts), and a cleaner removes them from
// Redis within an interval after it (result-cleaner.ts), both by this process's estimate of
// Redis's clock (redis-clock.ts), by which it also stamps the jobs it creates. Cancellation is a
// marker key (a queued job never runs) plus a pub/sub message (a running job is aborted by
// whichever worker holds it). A live job (submitLive) is a job whose session listens on its own
// pub/sub channels (live-session.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, type QueueEventsOptions, type RedisClient } from 'bullmq';
import { ReplyError, type Redis } from 'ioredis';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import { sha256Hex } from '../digest.js';
import { laterFieldsOf, type IdempotentSubmission, type JobClient, type JobRecord, type JobRequest, type LiveEvent, type LiveSession } from '../jobs/model.js';
import { API_CONNECTION_NAME, createRedis, createRedisTemplate, disconnectWithDuplicates, warnUntilReady, workerConnectionName } from './connection.js';
import { IdempotencyConflictError, QueueFullError, QueueUnavailableError, RedisRefusingWritesError, WorkersBehindError } from './errors.js';
import { evictionMessage, evicts, memoryFigures, policyFromInfo, writeRefusal } from './redis-health.js';
import { QUEUE_NAME, redisKeys, type RedisKeys } from './keys.js';
import { readJobStats, type JobStats } from './stats.js';
import { QueueAdmission } from './admission.js';
import type { StoredJobResult } from './codec.js';
import { canonicalJson } from '../digest.js';
import { idempotentJobId, readIdempotencySecret, removeExpiredJob } from './idempotency.js';
import { FINAL_STATUSES, isFinishedState, readJobRecord, recordFromCompletion, resultExpired, unexpiredRecord, type CancelMarker, type ResultExpiry } from './job-record.js';
import { READS_RESULTS_APART_OPTION, RESULT_TTL_OPTION } from './result-store.js';
import { CLOSE_REDIS_AWAY_MS, watchUnreachable } from './unreachable.js';
import { ChannelSubscriber } from './channel-subscriber.js';
import type { WorkerLiveness } from './heartbeat.js';
import { QueueLiveSession } from './live-session.js';
import { LiveSocketLedger, type LiveSocketClaim } from './live-socket-ledger.js';
import { NotificationQueue, SENT_NOTIFICATIONS_KEPT_MS, wantsNotification, type JobNotifications, type NotifiedJob } from './notification-queue.js';
import { RedisClock, REDIS_CLOCK_SYNC_INTERVAL_MS } from './redis-clock.js';
import { REPEATED_ERROR_LOG_INTERVAL_MS, repeatedErrorLogger } from './repeat-log.js';
import { startResultCleaner, type ResultCleaner } from './result-cleaner.js';

export interface BullJobClientOptions {
  redisUrl: string;
  prefix: string;
  resultTtlSeconds: number;
  maxQueuedJobs: number;
  /** A Redis call that takes longer than this is treated as Redis being unavailable. */
  redisTimeoutMs?: number;
  /** Which jobs send a notification when finished (src/api/notifications.ts): a cancel queues
   * theirs, since a job cancelled while queued never reaches a worker. None when absent. */
  notifications?: Pick<JobNotifications, 'wanted'>;
  /** Where the result cleaner's failures are told (result-cleaner.ts); nowhere when absent. */
  logger?: Logger;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  completed: number;
  failed: number;
}

/** Queue events that name a job's final state. */
type FinalEventState = 'completed' | 'failed';
/**
 * Takes a job out of every list BullMQ's workers take jobs from (KEYS: wait, paused, prioritized,
 * delayed, then the job's hash and its cancel marker; ARGV: the job id), atomically with respect
 * to their moveToActive: 1 if it was in one, and no worker can take it now; 0 if a worker has it
 * or it has ended. The hash, in no list now, expires when the marker does, should the remove that
 * follows never come (Redis lost in between): nothing of BullMQ's would remove it.
 */
const UNQUEUE_JOB_BODY = `
local id = ARGV[1]
if redis.call('LREM', KEYS[1], 0, id) > 0 or redis.call('LREM', KEYS[2], 0, id) > 0
  or redis.call('ZREM', KEYS[3], id) > 0 or redis.call('ZREM', KEYS[4], id) > 0 then
  local markerMs = redis.call('PTTL', KEYS[6])
  redis.call('PEXPIRE', KEYS[5], markerMs > 0 and markerMs or 1)
  return 1
end
`;
const UNQUEUE_JOB = `${UNQUEUE_JOB_BODY}return 0`;
/**
 * Withdraws a job whose add Redis did not answer in time (withdrawUnanswered), in one step: its
 * cancel marker (ARGV[2], for ARGV[3] s), then UNQUEUE_JOB's take out of the lists (same KEYS;
 * 1: no worker can take it now), else the cancel's message on ARGV[4], which stops a worker that
 * took it already, or remembers it for the take to come (cancel-watch.ts); 0 then, as for a job
 * never added (the marker then stands for it: it reads as cancelled).
 */
const WITHDRAW_JOB = `
redis.call('SET', KEYS[6], ARGV[2], 'EX', ARGV[3])
${UNQUEUE_JOB_BODY}
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 0`;
/** A withdrawal that failed (Redis away) is tried again after this, doubling up to the maximum,
 * for as long as this process runs: an add in the connection's pipe, or resent by ioredis after a
 * reconnect (autoResendUnfulfilledCommands), reaches Redis before any later command. */
const WITHDRAW_RETRY_MS = 250;
const WITHDRAW_RETRY_MAX_MS = 4000;
/** How often `wait` re-reads a job in case a queue event was missed (e.g. across a Redis restart). */
const WAIT_POLL_MS = 1000;
/** A wait's reads end by its deadline, Redis answering or not (a read that would not is given
 * up, and the wait answers with the job as last read): the last read starts this long before the
 * deadline, and no read is given less (a wait shorter than this ends this long after its start). */
const WAIT_LAST_READ_MS = 100;
/** A job this process submitted less than this long ago needs no first read in `wait`. */
const FRESH_SUBMISSION_MS = 2000;
/** How long the live workers read for a job with a later field (checkWorkersKnow) are trusted: a
 * heartbeat's period, so that a burst of such jobs reads them once. */
const WORKERS_SEEN_MS = 1000;

/** A job just submitted by this process, and the event that ended it if one came already. */
interface FreshSubmission {
  /** Epoch ms by this process's clock: how fresh it is. */
  submittedAt: number;
  /** The job's BullMQ timestamp (its createdAt), by Redis's clock. */
  createdAtMs: number;
  /** Kept for a single submission (the one a synchronous request waits for), so that its
   * completion event alone makes its record. */
  request?: JobRequest;
  ended: boolean;
  finalState?: FinalEventState;
  /** The return value the completion event carried. */
  completion?: StoredJobResult;
}
// "Command timed out": ioredis's commandTimeout, where a frozen Redis outlasts it. Beside the
// connection's own failures, Redis's refusals of a write it cannot take now: OOM (used memory
// over maxmemory, which BullMQ's noeviction makes a refusal), READONLY (a replica: a failover
// left this connection on the former primary, until it reconnects), MISCONF (its last save
// failed), NOREPLICAS, MASTERDOWN, BUSY (a script running long). Each passes; none is a 500.
const CONNECTION_ERROR =
  /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries|MaxRetriesPerRequest|LOADING|Command timed out|^(OOM|MISCONF|NOREPLICAS|MASTERDOWN|BUSY)\b|\bREADONLY\b/i;
/** guard's own timeout's words. */
const NO_ANSWER = 'no answer from redis in';
/** Failures of a command that was sent and whose answer never came: it may have run, or may yet
 * (a command that timed out stays in the connection's pipe; one written before the connection
 * closed is resent after the reconnect). Not Redis's own refusal (a ReplyError: OOM, READONLY),
 * nor a command refused before it was written ("Stream isn't writeable"). */
const UNANSWERED = new RegExp(`Command timed out|${NO_ANSWER}|Connection is closed|Command aborted|max retries per request|ECONNRESET|ETIMEDOUT|EPIPE`, 'i');

/** A withdrawal (withdrawUnanswered) given up as its client closed. */
function logUnwithdrawn(logger: Logger | undefined, ids: string[]): void {
  logger?.error({ jobIds: ids }, 'jobs not withdrawn: this API stopped before Redis answered; they run if Redis took their add, though their submission was answered 503');
}

/** Whether an add that failed so may have reached Redis, or may reach it yet. */
function addMayYetLand(error: unknown): boolean {
  const cause = error instanceof QueueUnavailableError ? error.cause : error;
  return cause instanceof Error && !(cause instanceof ReplyError) && UNANSWERED.test(cause.message);
}

/** Redis as /readyz reports it (BullJobClient.redisHealth). */
export interface RedisHealth {
  redis: 'ok' | 'unreachable' | 'evicting' | 'full' | 'refusing_writes';
  reason?: string;
}

/** How long redisHealth's written key lives: it is written again by each readiness check. */
const READINESS_PROBE_TTL_MS = 10_000;

/** A failure as /readyz's reason says it: Redis's (or the connection's) own words. */
function reasonOf(error: unknown): string {
  const cause = error instanceof QueueUnavailableError && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

/** A live ticket's random bytes (256 bits: unguessable for its lifetime, as a key is), and the
 * shape they have in base64url. */
const LIVE_TICKET_BYTES = 32;
const LIVE_TICKET_SHAPE = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((LIVE_TICKET_BYTES * 4) / 3)}}$`);

const ticketDigest = sha256Hex;

/** The shapes of job ids: this client's (nanoid's default, and a UUID for a Judge0 submission:
 * newJobId) and BullMQ's own counter, which names jobs that another producer added without an id.
 * Anything else names no job, and may name one of BullMQ's own keys beside the jobs' ("meta",
 * "events", "wait"), which a read would take for a job's hash, or fail on with WRONGTYPE. */
const JOB_ID = /^(?:[A-Za-z0-9_-]{21}|[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|[1-9]\d{0,15})$/;

/** A new job's id: nanoid's 21 characters; for a Judge0 submission a UUID (v4), as Judge0 names
 * its tokens (SecureRandom.uuid), which its clients keep in uuid columns or parse as UUIDs. */
function newJobId(request: JobRequest): string {
  return request.front?.api === 'judge0' ? randomUUID() : nanoid();
}

export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

export class BullJobClient implements JobClient {
  readonly keys: RedisKeys;
  private readonly queue: Queue<JobRequest, StoredJobResult>;
  private readonly events: QueueEvents;
  private readonly redis: Redis;
  /** What QueueEvents duplicates its connection from (createRedisTemplate): never connected. */
  private readonly eventsRedis: Redis;
  /** startEvents: resolves once QueueEvents reads its stream (or the client closed first). */
  private readonly eventsStarted: Promise<void>;
  /** Listeners by job id, told the final state (and a completion's return value) when an event names it. */
  private readonly waiters = new Map<string, Set<(finalState?: FinalEventState, completion?: StoredJobResult) => void>>();
  private readonly redisTimeoutMs: number;
  /** The queue-depth check every add goes through (maxQueuedJobs). */
  private readonly admission: QueueAdmission;
  /** keys.idempotencySecret, once read. */
  private idempotencySecretValue?: string;
  /** Jobs submitted here, in submission order, until `wait` takes them or they grow old. */
  private readonly fresh = new Map<string, FreshSubmission>();
  private workersSeen: { atMs: number; workers: WorkerLiveness[] } | undefined;
  /** Live sessions' events, on a connection made at the first one. */
  private readonly liveEvents: ChannelSubscriber;
  private readonly liveSocketLedger: LiveSocketLedger;
  private readonly notificationQueue: NotificationQueue;
  /** This process's estimate of Redis's clock: its jobs' creation, and every expiry it reads. */
  private readonly clock: RedisClock;
  private readonly expiry: ResultExpiry;
  /** The finished jobs' cleaner, and the sent notifications'. */
  private readonly cleaners: ResultCleaner[];
  /** endWaits() was called (the API is stopping). */
  private waitsEndedFlag = false;
  /** What ends each wait under way that endWaits ends. */
  private readonly waitEnders = new Set<() => void>();
  /** Withdrawals waiting for their next try (withdrawUnanswered), by their jobs' ids. */
  private readonly withdrawals = new Map<string[], NodeJS.Timeout>();
  /** close() was called. */
  private closing = false;

  constructor(private readonly options: BullJobClientOptions) {
    this.keys = redisKeys(options.prefix);
    this.redisTimeoutMs = options.redisTimeoutMs ?? 5000;
    this.redis = createRedis(options.redisUrl, 'producer', API_CONNECTION_NAME);
    this.queue = new Queue<JobRequest, StoredJobResult>(QUEUE_NAME, { connection: this.redis, prefix: options.prefix });
    this.queue.on('error', () => {});
    // QueueEvents blocks on a duplicate of the connection it is handed, never on that connection
    // itself (BullMQ's Connections guide: the classes that block "create duplicated connections
    // internally"): handed a template, which never connects, its duplicate is the API's one events
    // connection. Started by startEvents.
    this.eventsRedis = createRedisTemplate(options.redisUrl, 'blocking', 'cellblock-api-events');
    this.events = new QueueEvents(QUEUE_NAME, {
      connection: this.eventsRedis,
      prefix: options.prefix,
      autorun: false,
    });
    this.events.on('error', () => {});
    // QueueEvents hands the return value over parsed (its typings say string).
    this.events.on('completed', ({ jobId, returnvalue }) => this.notify(jobId, 'completed', returnvalue as unknown as StoredJobResult));
    this.events.on('failed', ({ jobId }) => this.notify(jobId, 'failed'));
    this.events.on('removed', ({ jobId }) => this.notify(jobId));
    this.eventsStarted = this.startEvents();
    this.liveEvents = new ChannelSubscriber(options.redisUrl, 'cellblock-api-live');
    this.liveSocketLedger = new LiveSocketLedger(this.redis, this.keys);
    this.notificationQueue = new NotificationQueue(this.redis, options.prefix);
    this.admission = new QueueAdmission(() => this.queue.count(), options.maxQueuedJobs);
    this.clock = new RedisClock(this.redis);
    this.expiry = { ttlMs: options.resultTtlSeconds * 1000, clock: this.clock };
    const logClockError = options.logger ? repeatedErrorLogger(options.logger, "cannot read Redis's clock; the last reading's offset stands", REPEATED_ERROR_LOG_INTERVAL_MS) : undefined;
    const syncClock = () => void this.clock.sync().catch((error: unknown) => logClockError?.(error as Error));
    // Read as soon as Redis answers, and again after each reconnect.
    this.redis.on('ready', syncClock);
    this.clock.start(REDIS_CLOCK_SYNC_INTERVAL_MS, (error) => this.redis.status === 'ready' && logClockError?.(error as Error));
    const logCleanError = options.logger ? repeatedErrorLogger(options.logger, 'cannot remove expired results', REPEATED_ERROR_LOG_INTERVAL_MS) : undefined;
    const cleaner = (queue: Queue, guardKey: string, ttlMs: number) =>
      startResultCleaner({ queue, redis: this.redis, guardKey, ttlMs, clock: this.clock, ready: () => this.redis.status === 'ready', onError: (error) => logCleanError?.(error as Error) });
    this.cleaners = [
      cleaner(this.queue, this.keys.resultClean(options.resultTtlSeconds), this.expiry.ttlMs),
      cleaner(this.notificationQueue.queue, this.keys.sentNotificationsClean, SENT_NOTIFICATIONS_KEPT_MS),
    ];
  }

  /** Resolves once Redis has answered; rejects with QueueUnavailableError after `timeoutMs`. */
  async ready(timeoutMs = this.redisTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.redis.status !== 'ready') {
      if (Date.now() >= deadline) throw new QueueUnavailableError(new Error(`redis connection is ${this.redis.status}`));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.guard(() => Promise.all([this.queue.waitUntilReady(), this.eventsStarted]), deadline - Date.now());
  }

  /** Resolves once Redis has answered the API's producer connection and the job events are read
   * (startEvents: a job's end from then on is heard at once), or an attempt of the producer's has
   * failed (Redis refused it, or its login), or after `timeoutMs`, whichever comes first: true
   * when the producer's is ready. Never rejects. */
  async firstContact(timeoutMs: number): Promise<boolean> {
    let eventsStarted = false;
    await new Promise<void>((resolve) => {
      const check = () => this.redis.status === 'ready' && eventsStarted && done();
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', check);
        this.redis.off('error', done);
        resolve();
      };
      // Unref'd: a client closed meanwhile keeps no process alive for it.
      const timer = setTimeout(done, timeoutMs).unref();
      this.redis.on('ready', check);
      this.redis.on('error', done);
      void this.eventsStarted.then(() => {
        eventsStarted = true;
        check();
      });
      check();
    });
    return this.redis.status === 'ready';
  }

  /**
   * Starts QueueEvents reading the job events once its connection is ready, from the last event
   * its stream holds then. From "$", its default, it would hear only the events that come after
   * its first XREAD reaches Redis, a few round trips after its connection is ready: the end of a
   * job that came before (a `?wait=true` right after the API listened) would be heard by its
   * wait's next poll only (WAIT_POLL_MS), a second later. From an event id, each XREAD also goes on
   * from the last event heard, so none is lost between two (or while Redis was away, but those
   * trimmed meanwhile). Resolves once the reading is started, or when the client was closed before
   * the connection was ready; never rejects.
   */
  private async startEvents(): Promise<void> {
    let client: RedisClient;
    try {
      client = await this.events.waitUntilReady();
    } catch {
      return;
    }
    // No stream yet: from its first event. The read failed: from "$" (the polls cover the rest).
    const last = (await client.runCommand('xrevrange', [this.queue.keys.events, '+', '-', 'COUNT', 1]).catch(() => undefined)) as [string, string[]][] | undefined;
    // Read as it runs (its options': the position is known only now).
    if (last) (this.events.opts as QueueEventsOptions).lastEventId = last[0]?.[0] ?? '0-0';
    this.events.run().catch((error: unknown) => this.events.emit('error', error as Error));
  }

  /** Says once on `log` that Redis is not reachable yet, unless the producer's connection is ready
   * first (connection.ts's warnUntilReady: its reason, the connection's last failure, holds no
   * credential). */
  warnUntilReady(log: Logger, message: string): void {
    warnUntilReady(this.redis, log, message);
  }

  async submit(request: JobRequest): Promise<string> {
    const [id] = await this.add([request], [newJobId(request)]);
    return id!;
  }

  async submitOnce(request: JobRequest, idempotencyKey: string): Promise<IdempotentSubmission> {
    const id = idempotentJobId(await this.idempotencySecret(), idempotencyKey);
    const submitted = canonicalJson(request);
    const earlier = await this.guard(() => this.submittedUnder(id));
    if (earlier !== undefined) {
      if (earlier.submission !== submitted) throw new IdempotencyConflictError(id);
      return { id, replay: true };
    }
    // Tries under one key that overlap all get here. BullMQ adds a job id once, keeping the first
    // try's data; and a cancel of that first job in between would have removed it, which this add
    // would bring back. Both are seen in what the key names after the add, as is a first try's job
    // that filled the queue up to its cap before this add.
    // An add refused (a full queue; a live worker too old for the job) may have been another try's
    // to make: the key answers for it.
    let refused: QueueFullError | WorkersBehindError | undefined;
    try {
      await this.add([request], [id], { keyed: true });
    } catch (error) {
      if (!(error instanceof QueueFullError) && !(error instanceof WorkersBehindError)) throw error;
      refused = error;
    }
    const named = await this.guard(() => this.submittedUnder(id, { withdrawCancelled: true }));
    if (named === undefined && refused) throw refused;
    if (named !== undefined && named.submission !== submitted) throw new IdempotencyConflictError(id);
    // A refused add found another try's job; a cancel marker, a job that is no longer queued.
    return { id, replay: refused !== undefined || named?.cancelled === true };
  }

  /** The submission (canonical JSON) a job id names: its job's, or its cancel marker's (then
   * `cancelled`). With `withdrawCancelled`, a job that has a cancel marker (a cancel that came
   * before this add re-created it) is taken out of the queue again, as the cancel did. A job whose
   * result has expired names nothing: it is removed here (the clean may not have come yet), so
   * that an add under its id makes a new job rather than nothing (BullMQ adds no id it holds). */
  private async submittedUnder(id: string, options: { withdrawCancelled?: boolean } = {}): Promise<{ submission: string; cancelled: boolean } | undefined> {
    const marker = await this.redis.get(this.keys.cancelled(id));
    if (marker !== null) {
      if (options.withdrawCancelled) await this.withdraw(id);
      return { submission: canonicalJson((JSON.parse(marker) as CancelMarker).request ?? null), cancelled: true };
    }
    const job = await this.queue.getJob(id);
    if (!job) return undefined;
    if (resultExpired(job.finishedOn, this.expiry)) {
      // Expired by the check above, so by this cutoff too: the clock only moves on (a reading in
      // between may move it back by its error, a few ms, which leaves the job to the next try).
      await removeExpiredJob(this.queue, this.redis, id, this.clock.now() - this.expiry.ttlMs);
      return undefined;
    }
    return { submission: canonicalJson(job.data), cancelled: false };
  }

  /** keys.idempotencySecret (readIdempotencySecret), read once per process. */
  private async idempotencySecret(): Promise<string> {
    if (this.idempotencySecretValue) return this.idempotencySecretValue;
    const secret = await this.guard(() => readIdempotencySecret(this.redis, this.keys.idempotencySecret));
    this.idempotencySecretValue = secret;
    return secret;
  }

  async submitLive(request: JobRequest, onEvent: (event: LiveEvent) => void): Promise<LiveSession> {
    const id = nanoid();
    const channels = { events: this.keys.liveEvents(id), input: this.keys.liveInput(id) };
    const jobs = {
      // Not ended by endWaits: the session ends with its socket, which the stopping API closes.
      wait: (jobId: string, timeoutMs: number, pollMs: number) => this.waitFor(jobId, timeoutMs, pollMs, false),
      cancel: (jobId: string) => this.cancel(jobId),
      publish: (channel: string, message: string) => this.redis.publish(channel, message),
    };
    const session = new QueueLiveSession(id, channels, jobs, this.liveEvents, onEvent, request.terminal !== undefined);
    try {
      // Listening before the job is queued: a worker that takes it at once is heard from the start.
      await this.guard(() => this.liveEvents.listen(channels.events, (message) => session.heard(message)));
      // An add Redis did not answer is withdrawn there (add): a job no session listens to would
      // otherwise be taken, and wait for input until no session was found.
      await this.add([{ ...request, live: true }], [id]);
    } catch (error) {
      session.close();
      throw error;
    }
    // Events heard already (a worker quick to take the job) are told once the caller has the
    // session in hand: after the microtasks its await resumes in.
    setImmediate(() => session.open());
    // Its events go to the fronts' handlers, which do not throw; should one, the session ends
    // saying it cannot tell how the job ended.
    void session.watch().catch(() => {
      try {
        session.fail();
      } catch {
        session.close();
      }
    });
    return session;
  }

  async submitBatch(requests: JobRequest[]): Promise<string[]> {
    return this.add(requests, requests.map(newJobId), { batch: true });
  }

  /**
   * Adds the jobs, under `ids`. An add sent whose answer never came (Redis frozen past the timeout,
   * the connection lost) may reach Redis yet: its 503 would say nothing was accepted, and a
   * client's retry would run the job twice. So such jobs are withdrawn (withdrawUnanswered) and
   * the 503 names them (QueueUnavailableError.unanswered); `keyed` ones (an Idempotency-Key's) are
   * not: a retry under the key finds the job, or queues it, once. `batch`: a batch's, named so
   * however many jobs it has.
   */
  private async add(requests: JobRequest[], ids: string[], { keyed = false, batch = false } = {}): Promise<string[]> {
    /** Not sent yet; sent (answered or not); or given up by the guard before it was sent: it is
     * not sent then (the caller has its 503, nothing accepted). */
    const add: { state: 'pending' | 'sent' | 'abandoned' } = { state: 'pending' };
    try {
      return await this.guard(async () => {
        await this.checkWorkersKnow(requests);
        return this.admission.admit(requests.length, () => {
          if (add.state === 'abandoned') throw new QueueUnavailableError(new Error('the submission was answered 503 before its add could be sent'));
          add.state = 'sent';
          return this.addAdmitted(requests, ids);
        });
      });
    } catch (error) {
      const sent = add.state === 'sent';
      add.state = 'abandoned';
      if (!sent || !addMayYetLand(error)) throw error;
      if (!keyed) this.withdrawUnanswered(ids);
      throw new QueueUnavailableError(error, { jobIds: ids, withdrawn: !keyed, batch });
    }
  }

  /**
   * Withdraws jobs whose add Redis did not answer (add), so that none runs: WITHDRAW_JOB for each,
   * sent now, on the connection the add went on. Redis runs one connection's commands in the order
   * they came, and ioredis sends them in the order they were made, resending after a reconnect
   * the unanswered ones first (autoResendUnfulfilledCommands): so each withdrawal that Redis
   * answers came after its add, wherever that add is. The withdrawal itself may go unanswered:
   * tried again, until one is answered or this client closes (logged then: its jobs run if Redis
   * had their add). A job a worker took in between (its add ran, its answer lost on the way) is
   * stopped by the cancel's message, and ends cancelled.
   */
  private withdrawUnanswered(ids: string[]): void {
    const nowIso = new Date().toISOString();
    // No request in it (a batch's could be large): the caller has it, and was told nothing ran.
    const marker = JSON.stringify({ createdAt: nowIso, cancelledAt: nowIso } satisfies CancelMarker);
    const withdrawOne = (id: string) => this.unqueue(WITHDRAW_JOB, id, marker, this.options.resultTtlSeconds, this.keys.cancelChannel);
    const logger = this.options.logger;
    let retryMs = WITHDRAW_RETRY_MS;
    const attempt = () => {
      this.withdrawals.delete(ids);
      if (this.closing) {
        logUnwithdrawn(logger, ids);
        return;
      }
      // In this turn, each one's script written at once, behind the add.
      Promise.all(ids.map(withdrawOne)).then(
        () => logger?.warn({ jobIds: ids }, 'jobs withdrawn: Redis did not answer their add in time, and their submission was answered 503'),
        (error: unknown) => {
          if (this.closing) return logUnwithdrawn(logger, ids);
          // Sent and not answered (Redis frozen, or cut off): it waits in the connection's pipe
          // behind the add, and ioredis sends it again after a reconnect, as it does the add. Sent
          // again now, it would only pile up behind it for as long as Redis is frozen (one more
          // script for every submission every few seconds).
          if (this.redis.status === 'ready' && error instanceof Error && /Command timed out/.test(error.message)) {
            logger?.warn({ jobIds: ids }, 'withdrawal of jobs whose add Redis did not answer sent; Redis has not answered it yet, and takes it after their add');
            return;
          }
          logger?.warn({ jobIds: ids, err: error, retryInMs: retryMs }, 'cannot withdraw jobs whose add Redis did not answer; trying again');
          this.withdrawals.set(ids, setTimeout(attempt, retryMs).unref());
          retryMs = Math.min(retryMs * 2, WITHDRAW_RETRY_MAX_MS);
        },
      );
    };
    attempt();
  }

  /** Adds jobs the admission check let in (add). */
  private async addAdmitted(requests: JobRequest[], ids: string[]): Promise<string[]> {
    const submittedAt = Date.now();
    // Stamped by Redis's clock: a worker's queue wait, and the latency, subtract it from its own
    // reading of that clock, whatever the two machines' own clocks say.
    const createdAtMs = this.clock.now();
    const jobs = requests.map((data, i) => ({ name: data.runtimeId, data, opts: jobOptions(ids[i]!, createdAtMs, this.options.resultTtlSeconds) }));
    // Known as fresh before they are added, so that an end event however early is kept for `wait`.
    this.forgetOldSubmissions();
    const single = jobs.length === 1;
    // An id already fresh here is another try under one idempotency key: its entry stays.
    const created = jobs.filter((job) => !this.fresh.has(job.opts.jobId));
    for (const job of created) this.fresh.set(job.opts.jobId, { submittedAt, createdAtMs, ended: false, ...(single ? { request: job.data } : {}) });
    try {
      // One job: add, not a one-job transaction around the same script, which made a job
      // submitted after an idle gap ~0.2 ms later to be queued and taken (loadtest/redis-add.ts).
      const [first] = jobs;
      if (single && first) await this.queue.add(first.name, first.data, first.opts);
      else await addAllOrNone(this.queue, jobs);
    } catch (error) {
      for (const job of created) this.fresh.delete(job.opts.jobId);
      throw error;
    }
    return jobs.map((job) => job.opts.jobId);
  }

  private forgetOldSubmissions(): void {
    const oldest = Date.now() - FRESH_SUBMISSION_MS;
    for (const [id, submission] of this.fresh) {
      if (submission.submittedAt >= oldest) break;
      this.fresh.delete(id);
    }
  }

  async get(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    return this.read(id);
  }

  /** The job's record, read within `timeoutMs` (else QueueUnavailableError). */
  private async read(id: string, timeoutMs = this.redisTimeoutMs): Promise<JobRecord | undefined> {
    return this.guard(() => readJobRecord(this.queue, this.redis, this.keys, id, this.expiry), timeoutMs);
  }

  /** `pollMs`: how often the job is read again in case its end's event was missed. Ended at once
   * by endWaits (the API stopping). */
  async wait(id: string, timeoutMs: number, pollMs = WAIT_POLL_MS): Promise<JobRecord | undefined> {
    return this.waitFor(id, timeoutMs, pollMs, true);
  }

  get waitsEnded(): boolean {
    return this.waitsEndedFlag;
  }

  /** Ends every wait that endWaits ends, now and from now on: each reads its job once more (an
   * end that came meanwhile is answered as such) and answers as at its deadline. */
  endWaits(): void {
    this.waitsEndedFlag = true;
    for (const end of this.waitEnders) end();
  }

  private async waitFor(id: string, timeoutMs: number, pollMs: number, endsAtStop: boolean): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    const deadline = Date.now() + timeoutMs;
    /** An event came while no nap was under way (during a read): the next nap returns at once. */
    let woken = false;
    const wakeLater = () => {
      woken = true;
    };
    let wake = wakeLater;
    let finalState: FinalEventState | undefined;
    let completion: StoredJobResult | undefined;
    const listener = (state?: FinalEventState, returnvalue?: StoredJobResult) => {
      finalState ??= state;
      completion ??= returnvalue;
      wake();
    };
    const nap = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken || ms <= 0) {
          woken = false;
          resolve();
          return;
        }
        const done = () => {
          clearTimeout(timer);
          wake = wakeLater;
          resolve();
        };
        const timer = setTimeout(done, ms);
        wake = done;
      });
    let listeners = this.waiters.get(id);
    if (!listeners) this.waiters.set(id, (listeners = new Set()));
    listeners.add(listener);
    /** Ended by endWaits: its next read is its last, as at the deadline. */
    let ended = endsAtStop && this.waitsEndedFlag;
    const endNow = () => {
      ended = true;
      wake();
    };
    if (endsAtStop) this.waitEnders.add(endNow);
    let seen: JobRecord | undefined;
    let outage: QueueUnavailableError | undefined;
    try {
      // Submitted here an instant ago: it exists and has not ended unless its event said so, so
      // the first read would tell nothing; wait for the event (or the poll) instead.
      const fresh = this.fresh.get(id);
      this.fresh.delete(id);
      if (fresh?.ended) {
        finalState ??= fresh.finalState;
        completion ??= fresh.completion;
      } else if (fresh && !ended && Date.now() - fresh.submittedAt < FRESH_SUBMISSION_MS) {
        await nap(Math.min(deadline - WAIT_LAST_READ_MS - Date.now(), pollMs));
      }
      for (;;) {
        // Submitted here and completed: the event said all the job's hash would.
        const known = fresh && completion ? recordFromCompletion(id, fresh, completion) : undefined;
        if (known) return known;
        // Within the deadline: a Redis that does not answer (cut off, frozen) would otherwise hold
        // the wait a read's whole timeout past it.
        const readMs = Math.min(this.redisTimeoutMs, Math.max(deadline - Date.now(), WAIT_LAST_READ_MS));
        // Registered before reading, so that a finish between the read and the sleep still wakes us.
        try {
          // A result kept apart (its event carried the stub) is read by read(), which reads it too.
          const record = finalState && completion?.storedIn === undefined ? await this.getFinished(id, finalState, readMs) : await this.read(id, readMs);
          outage = undefined;
          if (!record || FINAL_STATUSES.has(record.status)) return record;
          seen = record;
        } catch (error) {
          // Redis away mid-wait (a restart): the job is safe in it; wait it out until the deadline.
          if (!(error instanceof QueueUnavailableError)) throw error;
          outage = error;
        }
        const leftMs = ended ? 0 : deadline - Date.now();
        if (leftMs <= WAIT_LAST_READ_MS) {
          // Still away at the end and never read: the caller cannot be told the job's state.
          if (outage && !seen) throw outage;
          return seen;
        }
        await nap(Math.min(leftMs - WAIT_LAST_READ_MS, pollMs));
      }
    } finally {
      this.waitEnders.delete(endNow);
      listeners.delete(listener);
      if (listeners.size === 0) this.waiters.delete(id);
    }
  }

  /** Claims one of `claim.client`'s `maximum` live socket places on every API process, held for
   * `leaseMs` unless renewed (live-socket-ledger.ts); false when they are all taken. */
  async claimLiveSocket(claim: LiveSocketClaim, maximum: number, leaseMs: number): Promise<boolean> {
    return this.guard(() => this.liveSocketLedger.claim(claim, maximum, leaseMs));
  }

  /** Gives a claim's place back (a socket that closed). */
  async releaseLiveSocket(claim: LiveSocketClaim): Promise<void> {
    await this.guard(() => this.liveSocketLedger.release(claim));
  }

  /** Holds the claims of the sockets still open one lease longer. */
  async renewLiveSockets(claims: LiveSocketClaim[], leaseMs: number): Promise<void> {
    await this.guard(() => this.liveSocketLedger.renew(claims, leaseMs));
  }

  /** A new live ticket for `holder` (the API's word for who asked: its API key's digest), kept
   * `ttlMs`: single use, by redeemLiveTicket. Stored under its digest, so that Redis holds no
   * usable ticket. */
  async issueLiveTicket(holder: string, ttlMs: number): Promise<string> {
    const ticket = randomBytes(LIVE_TICKET_BYTES).toString('base64url');
    await this.guard(() => this.redis.set(this.keys.liveTicket(ticketDigest(ticket)), holder, 'PX', ttlMs));
    return ticket;
  }

  /** The holder a live ticket was issued for, once: undefined for a ticket unknown, used or
   * expired, and without a Redis round trip for anything not shaped as a ticket. */
  async redeemLiveTicket(ticket: string): Promise<string | undefined> {
    if (!LIVE_TICKET_SHAPE.test(ticket)) return undefined;
    const key = this.keys.liveTicket(ticketDigest(ticket));
    // GET and DEL in one transaction: once, as GETDEL would (Redis 6.2+; BullMQ needs 5).
    const replies = await this.guard(() => this.redis.multi().get(key).del(key).exec());
    const [getError, holder] = replies?.[0] ?? [];
    if (getError) throw getError;
    return typeof holder === 'string' ? holder : undefined;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    const outcome = await this.guard(async () => {
      const job = await this.queue.getJob(id);
      if (!job) return 'unknown' as const;
      const state = await job.getState();
      if (isFinishedState(state)) return 'finished' as const;
      // The notification's entry, delayed, before anything changes, so that it is sent however
      // this ends: at once below if the job was removed, by its worker if one has it, else at its
      // recheck (this process killed in between).
      const notified = { id, timestamp: job.timestamp };
      const notifies = wantsNotification(this.options.notifications, job.data);
      // In no list: out of the queue by an earlier cancel that lost Redis before the remove (its
      // marker is its record: the remove is finished below), or, without a marker, long over.
      if (state === 'unknown' && (await this.redis.exists(this.keys.cancelled(id))) === 0) return 'finished' as const;
      if (notifies) await this.notificationQueue.queueDelayed(notified);
      if (state === 'unknown') {
        await this.queue.remove(id);
        if (notifies) await this.sendNotificationNow(notified);
        return 'removed' as const;
      }
      const marker: CancelMarker = {
        createdAt: new Date(job.timestamp).toISOString(),
        cancelledAt: new Date(this.clock.now()).toISOString(),
        request: job.data,
      };
      // The marker first: it is the cancelled job's record, and a retried job's worker reads it
      // before running. A first attempt is not read against it (a round trip on every job's
      // path): a job taken since we looked is stopped by the publish below, which every worker
      // hears or, if it has not yet registered the job, remembers (cancel-watch.ts).
      await this.redis.set(this.keys.cancelled(id), JSON.stringify(marker), 'EX', this.options.resultTtlSeconds);
      const withdrawn = await this.withdraw(id);
      if (withdrawn === 'removed' && notifies) await this.sendNotificationNow(notified);
      return withdrawn;
    });
    if (outcome === 'signalled') return this.wait(id, 5000);
    return this.get(id);
  }

  /** A cancelled job's notification, sent now. Its failure does not fail the cancel, which is made:
   * the entry, queued delayed before, is sent at its recheck. */
  private async sendNotificationNow(job: NotifiedJob): Promise<void> {
    await this.notificationQueue.sendNow(job).catch(() => {});
  }

  /** A cancelled job (its marker written) out of the queue: removed if no worker has it yet, else
   * aborted by whichever worker holds it. */
  private async withdraw(id: string): Promise<'removed' | 'signalled'> {
    // Out of the queue first, in one step, then removed: BullMQ's remove takes a job whatever its
    // state, so a job taken and finished since its state was read would lose its result. Tried
    // whatever that state was: a stalled or retried job goes back to waiting.
    if (await this.unqueue(UNQUEUE_JOB, id)) return 'removed';
    // Running (or taken by a worker since): whichever worker holds it aborts it.
    await this.redis.publish(this.keys.cancelChannel, id);
    return 'signalled';
  }

  /** Runs `script` (UNQUEUE_JOB, or WITHDRAW_JOB which embeds it) on the job's keys, with ARGV the
   * id and then `args`, and removes the job if the script took it out of the queue: true then.
   * Removed, as a cancel removes it (its hash expires with the marker anyway). */
  private async unqueue(script: string, id: string, ...args: (string | number)[]): Promise<boolean> {
    const { wait, paused, prioritized, delayed } = this.queue.keys;
    const keys = [wait!, paused!, prioritized!, delayed!, this.queue.toKey(id), this.keys.cancelled(id)];
    if ((await this.redis.eval(script, keys.length, ...keys, id, ...args)) !== 1) return false;
    await this.queue.remove(id);
    return true;
  }

  async counts(timeoutMs = this.redisTimeoutMs): Promise<QueueCounts> {
    return this.guard(async () => {
      const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      return {
        waiting: counts.waiting ?? 0,
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        prioritized: counts.prioritized ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
      };
    }, timeoutMs);
  }

  /** Refuses jobs with a field that a live worker does not know (LATER_JOB_FIELDS). The live
   * workers are read at most once per WORKERS_SEEN_MS, and only for such jobs. */
  private async checkWorkersKnow(requests: JobRequest[]): Promise<void> {
    const fields = [...new Set(requests.flatMap(laterFieldsOf))];
    if (fields.length === 0) return;
    const nowMs = Date.now();
    if (this.workersSeen === undefined || nowMs - this.workersSeen.atMs > WORKERS_SEEN_MS) {
      this.workersSeen = { atMs: nowMs, workers: await this.liveWorkers() };
    }
    const unknownTo = (worker: WorkerLiveness) => fields.filter((field) => !(worker.jobFields ?? []).includes(field));
    const behind = this.workersSeen.workers.filter((worker) => unknownTo(worker).length > 0);
    // Named: the fields some live worker lacks, not every later field the job has.
    if (behind.length > 0) throw new WorkersBehindError([...new Set(behind.flatMap(unknownTo))], behind.length);
  }

  /** Workers whose liveness key has not expired and, where Redis lists its clients' names, whose
   * own connection is still open, wherever they run. The key alone would count a killed worker
   * alive until it expires (the heartbeat TTL); its connection goes as the process dies. A worker
   * whose host vanished without closing its connections is caught by the expiry.
   * The SCAN stops at the next page once `signal` aborts or `timeoutMs` passes: a count given up on
   * (a keyspace of many millions) would otherwise go on beside the next one. */
  async liveWorkers(timeoutMs = this.redisTimeoutMs, signal?: AbortSignal): Promise<WorkerLiveness[]> {
    return this.guard(async () => {
      // A timer of its own (guard's has no signal: no other operation has pages to stop between),
      // started after guard's, so that guard's 503 is what a timed-out count answers.
      const stopped = signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
      const keys: string[] = [];
      let cursor = '0';
      do {
        stopped.throwIfAborted();
        const [next, batch] = await this.redis.scan(cursor, 'MATCH', this.keys.workerPattern, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      if (keys.length === 0) return [];
      const values = await this.redis.mget(keys);
      const workers = values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as WorkerLiveness);
      const connected = await this.connectionNames();
      return connected ? workers.filter((worker) => connected.has(workerConnectionName(worker.workerId))) : workers;
    }, timeoutMs);
  }

  /** The names of the connections Redis holds now; undefined where it does not tell: CLIENT LIST
   * refused (some hosted Redis rename or disable it), or the names are not ours to see (a proxy
   * between us and Redis: this client's own connection is not among them). */
  private async connectionNames(): Promise<Set<string> | undefined> {
    let list: string;
    try {
      list = (await this.redis.client('LIST')) as string;
    } catch (error) {
      if (CONNECTION_ERROR.test((error as Error).message)) throw error;
      return undefined;
    }
    const names = new Set<string>();
    for (const line of list.split('\n')) {
      const name = / name=(\S+)/.exec(line)?.[1];
      if (name) names.add(name);
    }
    return names.has(API_CONNECTION_NAME) ? names : undefined;
  }

  async stats(timeoutMs = this.redisTimeoutMs): Promise<JobStats> {
    return this.guard(() => readJobStats(this.redis, this.keys), timeoutMs);
  }

  /**
   * Whether Redis can hold the queue now (/readyz): it answers (INFO memory: not PING, which a
   * Redis refusing writes for a failed disk write refuses too), its eviction policy is noeviction,
   * and it takes a write (a key of its own, expiring: a full Redis refuses it, OOM; one whose disk
   * failed, MISCONF; a replica, READONLY), each within what is left of `timeoutMs` (unreachable
   * past it). `reason` says what is wrong, in Redis's words where it has some. `onPolicy` is told
   * the eviction policy read (a process's log of its changes).
   */
  async redisHealth(timeoutMs = this.redisTimeoutMs, onPolicy?: (policy: string | undefined) => void): Promise<RedisHealth> {
    // Both reads within `timeoutMs` in all (the bound /readyz answers within).
    const deadline = Date.now() + timeoutMs;
    let info: string | undefined;
    try {
      info = await this.guard(() => this.redis.info('memory'), timeoutMs);
    } catch (error) {
      if (error instanceof QueueUnavailableError) return { redis: 'unreachable', reason: reasonOf(error) };
      // INFO refused (a managed Redis's own rules): the write below still tells.
    }
    const policy = info === undefined ? undefined : policyFromInfo(info);
    onPolicy?.(policy);
    if (policy !== undefined && evicts(policy)) return { redis: 'evicting', reason: evictionMessage(policy) };
    try {
      await this.guard(
        () => this.redis.set(this.keys.readinessProbe, String(Date.now()), 'PX', READINESS_PROBE_TTL_MS),
        Math.max(1, deadline - Date.now()),
      );
    } catch (error) {
      // A replica (a failover left this connection on the former primary, until it reconnects).
      if (/\bREADONLY\b/.test(reasonOf(error))) return { redis: 'refusing_writes', reason: reasonOf(error) };
      if (!(error instanceof RedisRefusingWritesError)) return { redis: 'unreachable', reason: reasonOf(error) };
      const figures = error.refusal === 'full' && info !== undefined ? memoryFigures(info) : undefined;
      return { redis: error.refusal === 'full' ? 'full' : 'refusing_writes', reason: `${(error.cause as Error).message}${figures ? ` (${figures})` : ''}` };
    }
    return { redis: 'ok' };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const [ids, timer] of this.withdrawals) {
      clearTimeout(timer);
      logUnwithdrawn(this.options.logger, ids);
    }
    this.withdrawals.clear();
    // BullMQ's close waits for Redis (its QUIT is queued while Redis is away): an API stopped
    // while Redis is unreachable would wait for ever. Nothing of ours is in flight to lose (the
    // live sockets' places were given back at the app's close; a later repeat of it may be).
    const redisAway = watchUnreachable(this.redis, CLOSE_REDIS_AWAY_MS);
    this.clock.stop();
    // The cleaners first: a clean under way would fail on the queue closed under it.
    const closed = Promise.all(this.cleaners.map((cleaner) => cleaner.stop())).then(() =>
      Promise.allSettled([this.events.close(), this.queue.close(), this.notificationQueue.close()]),
    );
    await Promise.race([closed, redisAway.reached]);
    redisAway.cancel();
    // BullMQ leaves connections it was handed open, and its QueueEvents' own (a duplicate) too
    // when Redis was away.
    this.redis.disconnect();
    disconnectWithDuplicates(this.eventsRedis);
    this.liveEvents.close();
  }

  /** A job whose final state an event named: one read of the job, no state query (jobs are added
   * with attempts: 1, so completed and failed are final). Saves a Redis round trip per wait. Within
   * `timeoutMs` in all. */
  private async getFinished(id: string, state: FinalEventState, timeoutMs: number): Promise<JobRecord | undefined> {
    return this.guard(async () => {
      const job = await this.queue.getJob(id);
      return job ? unexpiredRecord(job, state, this.expiry) : readJobRecord(this.queue, this.redis, this.keys, id, this.expiry);
    }, timeoutMs);
  }

  private notify(jobId: string, finalState?: FinalEventState, completion?: StoredJobResult): void {
    const fresh = this.fresh.get(jobId);
    if (fresh && !fresh.ended) {
      fresh.ended = true;
      if (finalState) fresh.finalState = finalState;
      if (completion) fresh.completion = completion;
    }
    // Submissions nobody waited for (no ?wait) go here too, not only when the next one comes.
    this.forgetOldSubmissions();
    for (const listener of this.waiters.get(jobId) ?? []) listener(finalState, completion);
  }

  /** Runs a Redis operation; a dead or slow Redis becomes QueueUnavailableError (503), not a hang or a 500. */
  private async guard<T>(operation: () => Promise<T>, timeoutMs = this.redisTimeoutMs): Promise<T> {
    // Not connected (Redis down or reconnecting): answer now rather than queue the call.
    if (this.redis.status !== 'ready') {
      throw new QueueUnavailableError(new Error(`redis connection is ${this.redis.status}`));
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError(new Error(`${NO_ANSWER} ${timeoutMs} ms`))), timeoutMs);
    });
    try {
      return await Promise.race([operation(), timeout]);
    } catch (error) {
      if (error instanceof QueueUnavailableError || error instanceof QueueFullError || error instanceof RedisRefusingWritesError) throw error;
      // Reachable, and refusing every write until an operator acts: said as such, not as an outage.
      const refusal = writeRefusal(error);
      if (refusal) throw new RedisRefusingWritesError(refusal, error as Error);
      if (this.redis.status !== 'ready' || (error instanceof Error && CONNECTION_ERROR.test(error.message))) {
        throw new QueueUnavailableError(error);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Queues a batch's jobs in one MULTI/EXEC: all of them or none. BullMQ's addBulk pipelines its
 * scripts without a transaction, so that a failure part-way (Redis out of memory, a connection
 * lost or timed out) left the first jobs queued, to run twice when the client sent the whole batch
 * again. Each job is added as addBulk adds it (Job.addJob, which queues its script at once). */
async function addAllOrNone(queue: Queue, jobs: { name: string; data: JobRequest; opts: ReturnType<typeof jobOptions> }[]): Promise<void> {
  const client = await queue.client;
  const transaction = client.multi();
  for (const job of jobs) void new Job(queue, job.name, job.data, job.opts, job.opts.jobId).addJob(transaction as never);
  let results: Awaited<ReturnType<typeof transaction.exec>>;
  try {
    results = await transaction.exec();
  } catch (error) {
    // EXECABORT: Redis refused a command as it was queued (out of memory, a replica), which says
    // why (and is what tells a refusal from a failure: guard's CONNECTION_ERROR).
    throw (error as { previousErrors?: Error[] }).previousErrors?.[0] ?? error;
  }
  if (!results) throw new Error('the batch was not queued: its transaction was aborted');
  for (const [error] of results) if (error) throw error;
}

/** A new job's BullMQ options: its own id, its creation time (`createdAtMs`, by Redis's clock),
 * one attempt (a job whose worker died is retried by BullMQ's stalled-job check, not a second
 * attempt), kept once it ends: the result cleaner removes it `resultTtlSeconds` after, by Redis's
 * clock. Not BullMQ's removeOnComplete/removeOnFail age: that removes, as any job finishes, every
 * finished job older than the age by the clock of the worker finishing it, so that a worker whose
 * clock is ahead by d removed every other worker's results d early (all of them, once d passed
 * the TTL). The TTL travels in the job for its worker, which expires a result kept apart by it. */
export function jobOptions(jobId: string, createdAtMs: number, resultTtlSeconds: number) {
  // This API reads a large result kept apart, so its worker may keep it so (result-store.ts).
  return {
    jobId,
    timestamp: createdAtMs,
    attempts: 1,
    removeOnComplete: false,
    removeOnFail: false,
    [RESULT_TTL_OPTION]: resultTtlSeconds,
    [READS_RESULTS_APART_OPTION]: true as const,
  };
}
