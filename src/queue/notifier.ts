// The notifier: takes the notification queue's entries (notification-queue.ts) and sends each
// once its job has finished, in the terms of the front that accepted the job.
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ByteBudget, ByteBudgetAbortedError } from './byte-budget.js';
import { handBackJob } from './hand-back.js';
import { FINAL_STATUSES, readJobRecord } from './job-record.js';
import { REPEATED_ERROR_LOG_INTERVAL_MS, repeatedErrorLogger } from './repeat-log.js';
import { bytesKeptApart } from './result-store.js';
import { abandonConnection, startsSettled } from './unreachable.js';
import { QUEUE_NAME, type RedisKeys } from './keys.js';
import { NOTIFICATION_QUEUE_NAME, NOTIFICATION_RECHECK_MS, type JobNotifications, type NotificationData } from './notification-queue.js';
import { attemptDelivery, deliveryPlan, retryDelayMs, type WebhookPolicy } from './webhook.js';

/** Notifier deaths mid-attempt an entry outlives. */
const NOTIFIER_MAX_STALLED_COUNT = 5;

/** BullMQ's states of a job that has ended, or is in no list (removed by a cancel; or expired). */
const ENDED_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'unknown']);

export interface NotifierOptions {
  connection: Redis;
  prefix: string;
  keys: RedisKeys;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  notifications: JobNotifications;
  policy: WebhookPolicy;
  log: Logger;
  /** Aborted when the worker stops: deliveries under way end, their entries go back to the queue. */
  stop: AbortSignal;
}

/** Takes entries and sends them: a BullMQ Worker on the notification queue. */
export class Notifier {
  private readonly jobs: Queue;
  private readonly worker: Worker<NotificationData>;
  /** The stored bytes of the job records whose attempts are under way (policy.memoryBytes). */
  private readonly memory: ByteBudget;

  constructor(private readonly options: NotifierOptions) {
    this.memory = new ByteBudget(options.policy.memoryBytes);
    this.jobs = new Queue(QUEUE_NAME, { connection: options.connection, prefix: options.prefix });
    this.worker = new Worker<NotificationData>(NOTIFICATION_QUEUE_NAME, (entry, token) => this.send(entry, token), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      // A notifier that dies mid-attempt leaves the entry to another; an entry outlives a few such
      // deaths more than a job does (its attempts are harmless to repeat), then is given up.
      maxStalledCount: NOTIFIER_MAX_STALLED_COUNT,
      autorun: false,
    });
    this.worker.on('error', repeatedErrorLogger(options.log, 'notifier error', REPEATED_ERROR_LOG_INTERVAL_MS));
    // Each failed try of the notifier's own (a Redis error) is reported; the last gives the entry up
    // until its job's end takes it again (NotificationQueue.sendNow).
    // (BullMQ fails an entry past its stall limit with an UnrecoverableError: no try follows.)
    this.worker.on('failed', (entry, error) => {
      const last = entry === undefined || error.name === 'UnrecoverableError' || entry.attemptsMade >= (entry.opts.attempts ?? 1);
      options.log.warn({ jobId: entry?.data.jobId, err: error, attempts: entry?.attemptsMade }, last ? 'notification given up' : 'notification failed; tried again');
    });
  }

  run(): void {
    this.worker.run().catch((error: unknown) => this.options.log.error({ err: error }, 'notifier stopped'));
  }

  waitUntilReady(): Promise<unknown> {
    return this.worker.waitUntilReady();
  }

  /** Resolves once its connections' starts have settled, or after `ms` (see startsSettled). */
  async startSettled(ms: number): Promise<void> {
    await Promise.all([startsSettled(this.worker, ms), startsSettled(this.jobs, ms)]);
  }

  /** Stops taking entries and waits for those under way (`stop` ends their deliveries). */
  async close(force = false): Promise<void> {
    await this.worker.close(force);
    await this.jobs.close();
  }

  /** Before its connection is disconnected while Redis is away (see abandonConnection). */
  abandonConnection(): Promise<boolean> {
    return abandonConnection(this.worker);
  }

  private async send(entry: Job<NotificationData>, token?: string): Promise<string> {
    const { jobId } = entry.data;
    const { stop } = this.options;
    // The state alone until the job has ended: a running job's data may be large.
    if (!ENDED_STATES.has(await this.jobs.getJobState(jobId))) return this.recheckLater(entry, token);
    // Each attempt holds its job's record and body, as large as the job's request and output.
    let release: () => void;
    try {
      release = await this.memory.claim(await this.storedBytes(jobId), stop);
    } catch (error) {
      if (!(error instanceof ByteBudgetAbortedError)) throw error;
      return handBackJob(entry, token);
    }
    // Granted as the stop came (another claim's abort let it through): hand it back unread.
    if (stop.aborted) {
      release();
      return handBackJob(entry, token);
    }
    try {
      return await this.sendEnded(entry, token);
    } finally {
      release();
    }
  }

  /** The job's request and result as Redis holds them (BullMQ's job hash, and its result's own key
   * where it was kept apart: result-store.ts), or its cancel marker, which holds the request of a
   * job cancelled while queued (readJobRecord reads either). */
  private async storedBytes(jobId: string): Promise<number> {
    const key = this.jobs.toKey(jobId);
    const { connection, keys } = this.options;
    const sizes = await Promise.all([
      connection.hstrlen(key, 'data'),
      connection.hstrlen(key, 'returnvalue'),
      bytesKeptApart(connection, key),
      connection.strlen(keys.cancelled(jobId)),
    ]);
    return sizes.reduce((sum, size) => sum + size, 0);
  }

  private async sendEnded(entry: Job<NotificationData>, token: string | undefined): Promise<string> {
    const { jobId, createdAtMs, deliveries = 0 } = entry.data;
    const { log, stop, policy } = this.options;
    // No TTL given (a worker's setting may not be the API's): a delivery retried past the job's
    // TTL still sends it until the API's result cleaner has removed it.
    const record = await readJobRecord(this.jobs, this.options.connection, this.options.keys, jobId);
    // Gone: its results expired, or the id is another job's now (an Idempotency-Key's, reused).
    if (!record || Date.parse(record.createdAt) !== createdAtMs) return 'job gone';
    if (!FINAL_STATUSES.has(record.status)) return this.recheckLater(entry, token);
    const notification = record.request && this.options.notifications.compose(record.request, record);
    if (!notification) return 'nothing to send';
    const plan = deliveryPlan(notification, policy);
    const attempt = await attemptDelivery(notification, plan.timeoutMs, policy.destinations, stop);
    const made = deliveries + 1;
    if (!attempt.delivered && stop.aborted) {
      // Stopped mid-attempt: another notifier makes it again (this one does not count).
      return handBackJob(entry, token);
    }
    if (!attempt.delivered && attempt.retryable && made < plan.attempts) {
      await entry.updateData({ ...entry.data, deliveries: made });
      return handBackJob(entry, token, retryDelayMs(plan, made + 1));
    }
    const outcome = { jobId, attempts: made, status: attempt.status, error: attempt.error };
    log[attempt.delivered ? 'info' : 'warn'](outcome, attempt.delivered ? 'webhook delivered' : 'webhook not delivered');
    return attempt.delivered ? 'delivered' : 'not delivered';
  }

  /** The job has not ended: the entry looks again in NOTIFICATION_RECHECK_MS. A job that ended
   * meanwhile found the entry here, not delayed (its sendNow did nothing): it is sent now. */
  private async recheckLater(entry: Job<NotificationData>, token: string | undefined): Promise<never> {
    await entry.moveToDelayed(Date.now() + NOTIFICATION_RECHECK_MS, token);
    if (ENDED_STATES.has(await this.jobs.getJobState(entry.data.jobId))) await entry.promote().catch(() => {});
    throw new DelayedError();
  }
}
