// A finished job's notification (a /v1 webhook, a Judge0 callback) is kept in Redis, not in the
// memory of the worker that ran the job: a queue of its own, one entry per job (its id the job's),
// taken by any worker's notifier. The entry is queued when the job starts, delayed: so that a
// worker killed at any moment after that leaves it to the others, and sent once the job has
// finished (the worker that stores the result promotes it; should that worker die first, the
// entry finds the job unfinished when its delay ends, and waits again until some worker has
// finished it). A notifier killed or stopped mid-delivery leaves its entry to another (its lock
// expires, as a job's does): delivery is at least once, and the job id is the receiver's
// idempotency key.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobRecord, JobRequest } from '../jobs/model.js';
import type { Notification } from './webhook.js';

/** The queue of notifications, beside the jobs' queue under the same prefix. */
export const NOTIFICATION_QUEUE_NAME = 'notifications';

/** How long an entry waits before it looks at an unfinished job again. A job's end promotes its
 * entry at once; this bounds the wait only where that promotion was lost with its worker. */
export const NOTIFICATION_RECHECK_MS = 5000;

/** Sent entries are kept this long, so that a late promotion of one (a job's end that crossed its
 * recheck) finds it sent rather than queueing it again. */
const SENT_KEPT = { age: 3600, count: 100_000 };

/** An entry whose notifier failed (Redis answered an error while it read the job) is taken
 * again after 1, 2, 4, 8 s; a delivery that fails is the delivery's own retries' business
 * (webhook.ts), and waiting for the job's end counts no attempt. */
const ENTRY_OPTIONS = { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: SENT_KEPT, removeOnFail: SENT_KEPT };

/** What the front that accepted a job sends when it has finished (src/api/notifications.ts). */
export interface JobNotifications {
  /** Whether the job has anything to send: asked when it starts, before it has a record. */
  wanted(request: JobRequest): boolean;
  /** What to send, from the finished job's record (as GET shows it). */
  compose(request: JobRequest, record: JobRecord): Notification | undefined;
}

export interface NotificationData {
  jobId: string;
}

/** Queues and promotes entries (the worker that runs a job; the API for a job cancelled while
 * queued, which no worker takes). */
export class NotificationQueue {
  private readonly queue: Queue<NotificationData>;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue<NotificationData>(NOTIFICATION_QUEUE_NAME, { connection, prefix });
  }

  /** Queues the job's entry, delayed, unless it has one: called as the job starts, whichever
   * attempt. */
  async expect(jobId: string): Promise<void> {
    await this.queue.add('notify', { jobId }, { ...ENTRY_OPTIONS, jobId, delay: NOTIFICATION_RECHECK_MS });
  }

  /** The job has finished: its entry is sent now (queued now if it had none). */
  async due(jobId: string): Promise<void> {
    const entry = await this.queue.getJob(jobId);
    if (!entry) {
      await this.queue.add('notify', { jobId }, { ...ENTRY_OPTIONS, jobId });
      return;
    }
    // An entry that is not delayed is being sent, or was: nothing to do. One whose delay ends
    // between these two calls is too (promote then fails, harmlessly).
    if (await entry.isDelayed()) await entry.promote().catch(() => {});
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

