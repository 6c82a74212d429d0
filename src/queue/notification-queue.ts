// A finished job's notification (a /v1 webhook, a Judge0 callback) is kept in Redis, not in the
// memory of the worker that ran the job: a queue of its own, one entry per job (its id the job's id
// and creation time), taken by any worker's notifier (notifier.ts). The entry is queued when the
// job starts, delayed: so that a worker killed at any moment after that leaves it to the others,
// and sent once the job has finished (the worker that stores the result sends it at once; should
// that worker die first, the entry finds the job unfinished when its delay ends, and waits again
// until some worker has finished it). A notifier killed or stopped mid-attempt leaves its entry to
// another (its lock expires, as a job's does): delivery is at least once, and the job id is the
// receiver's idempotency key.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobRecord, JobRequest } from '../jobs/model.js';
import { startsSettled } from './unreachable.js';
import type { Notification } from './webhook.js';

/** The queue of notifications, beside the jobs' queue under the same prefix. */
export const NOTIFICATION_QUEUE_NAME = 'notifications';

/** How long an entry waits before it looks at an unfinished job again. A job's end promotes its
 * entry at once; this bounds the wait only where that promotion was lost with its worker. */
export const NOTIFICATION_RECHECK_MS = 5000;

/** Sent entries are kept this long, so that a late call to send one (a job's end that crossed its
 * recheck) finds it sent rather than queueing it again: removed past it by the API's cleaner
 * (result-cleaner.ts), by Redis's clock. Not by BullMQ's removeOnComplete age, which removes as an
 * entry finishes every entry older than that by the clock of the notifier finishing it: one whose
 * clock was an hour ahead removed them all. */
export const SENT_NOTIFICATIONS_KEPT_MS = 3600 * 1000;
/** At most this many sent entries are kept however young (a count, which no clock decides): the
 * newest, as BullMQ removes the oldest past it as an entry finishes. */
const SENT_KEPT = { count: 100_000 };

/** An entry whose notifier failed (Redis answered an error while it read the job) is taken
 * again after 1, 2, 4, 8 s; waiting for the job's end, and a delivery's own retries (their count
 * in the entry's data), count no attempt. An entry given up before its job ended is taken again,
 * its attempts afresh, at the job's end (sendNow). */
const ENTRY_OPTIONS = { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: SENT_KEPT, removeOnFail: SENT_KEPT };

/** What the front that accepted a job sends when it has finished (src/api/notifications.ts). */
export interface JobNotifications {
  /** Whether the job has anything to send: asked when it starts, before it has a record. */
  wanted(request: JobRequest): boolean;
  /** What to send, from the finished job's record (as GET shows it). */
  compose(request: JobRequest, record: JobRecord): Notification | undefined;
}

/** Whether a job's data asks for a notification: false for data that is no object (another
 * producer's job: null, say), which `wanted` could not read. */
export function wantsNotification(notifications: Pick<JobNotifications, 'wanted'> | undefined, data: unknown): boolean {
  return data !== null && typeof data === 'object' && notifications?.wanted(data as JobRequest) === true;
}

export interface NotificationData {
  jobId: string;
  /** The job's creation time (BullMQ's timestamp): an id an Idempotency-Key gives may come back
   * for a new job once the old one's results have expired, and each has an entry of its own. */
  createdAtMs: number;
  /** Delivery attempts made so far (absent: none). */
  deliveries?: number;
}

/** The job whose entry it is: its id and creation time. */
export interface NotifiedJob {
  id: string;
  timestamp: number;
}

const entryId = (job: NotifiedJob) => `${job.id}.${job.timestamp}`;

/** Queues entries and sends them early (the worker that runs a job; the API for a job it cancels,
 * which may never reach a worker). */
export class NotificationQueue {
  /** BullMQ's queue of the entries (the API's cleaner removes the sent ones from it). */
  readonly queue: Queue<NotificationData>;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue<NotificationData>(NOTIFICATION_QUEUE_NAME, { connection, prefix });
  }

  /** Queues the job's entry, delayed, unless it has one (BullMQ ignores an add of an id it holds):
   * called as the job starts, whichever attempt, and as it is cancelled. */
  async queueDelayed(job: NotifiedJob): Promise<void> {
    await this.add(job, NOTIFICATION_RECHECK_MS);
  }

  /** The job has finished: its entry is sent now, whether it waits (delayed), was given up
   * (failed: retried), or is missing (queued). One being sent, or sent, is left as it is. */
  async sendNow(job: NotifiedJob): Promise<void> {
    const entry = await this.queue.getJob(entryId(job));
    if (!entry) {
      await this.add(job, 0);
      return;
    }
    // Delayed also between a delivery's attempts: promoted, the next one comes at once. A state that
    // changes between these calls makes promote or retry fail, harmlessly (a notifier has it).
    const state = await entry.getState();
    if (state === 'delayed') await entry.promote().catch(() => {});
    else if (state === 'failed') await entry.retry('failed', { resetAttemptsMade: true }).catch(() => {});
  }

  private async add(job: NotifiedJob, delayMs: number): Promise<void> {
    await this.queue.add('notify', { jobId: job.id, createdAtMs: job.timestamp }, { ...ENTRY_OPTIONS, jobId: entryId(job), delay: delayMs });
  }

  /** Resolves once its connection's start has settled, or after `ms` (see startsSettled). */
  async startSettled(ms: number): Promise<void> {
    await startsSettled(this.queue, ms);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
