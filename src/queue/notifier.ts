// The notifier: takes the notification queue's entries (notification-queue.ts) and sends each
// once its job has finished, in the terms of the front that accepted the job.
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobRecord } from '../jobs/model.js';
import { readJobRecord } from './client.js';
import { REPEATED_ERROR_LOG_INTERVAL_MS, repeatedErrorLogger } from './repeat-log.js';
import { QUEUE_NAME, type RedisKeys } from './keys.js';
import { NOTIFICATION_QUEUE_NAME, NOTIFICATION_RECHECK_MS, type JobNotifications, type NotificationData } from './notification-queue.js';
import { deliverNotification, type WebhookPolicy } from './webhook.js';

const FINAL_STATUSES: ReadonlySet<JobRecord['status']> = new Set(['done', 'failed', 'cancelled']);

export interface NotifierOptions {
  connection: Redis;
  prefix: string;
  keys: RedisKeys;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
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

  constructor(private readonly options: NotifierOptions) {
    this.jobs = new Queue(QUEUE_NAME, { connection: options.connection, prefix: options.prefix });
    this.worker = new Worker<NotificationData>(NOTIFICATION_QUEUE_NAME, (entry, token) => this.send(entry, token), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      autorun: false,
    });
    this.worker.on('error', repeatedErrorLogger(options.log, 'notifier error', REPEATED_ERROR_LOG_INTERVAL_MS));
    this.worker.on('failed', (entry, error) => options.log.warn({ jobId: entry?.data.jobId, err: error }, 'notification given up'));
  }

  run(): void {
    this.worker.run().catch((error: unknown) => this.options.log.error({ err: error }, 'notifier stopped'));
  }

  waitUntilReady(): Promise<unknown> {
    return this.worker.waitUntilReady();
  }

  /** Stops taking entries and waits for those under way (`stop` ends their deliveries). */
  async close(force = false): Promise<void> {
    await this.worker.close(force);
    await this.jobs.close();
  }

  private async send(entry: Job<NotificationData>, token?: string): Promise<string> {
    const { jobId } = entry.data;
    const { log, stop } = this.options;
    const record = await readJobRecord(this.jobs, this.options.connection, this.options.keys, jobId);
    if (!record) return 'job gone';
    if (!FINAL_STATUSES.has(record.status)) {
      await entry.moveToDelayed(Date.now() + NOTIFICATION_RECHECK_MS, token);
      throw new DelayedError();
    }
    const notification = record.request && this.options.notifications.compose(record.request, record);
    if (!notification) return 'nothing to send';
    const outcome = await deliverNotification(notification, this.options.policy, stop);
    if (!outcome.delivered && stop.aborted) {
      // Stopped mid-delivery: another notifier sends it (this one's attempts do not count).
      await entry.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    log[outcome.delivered ? 'info' : 'warn']({ jobId, ...outcome }, outcome.delivered ? 'webhook delivered' : 'webhook not delivered');
    return outcome.delivered ? 'delivered' : 'not delivered';
  }
}
