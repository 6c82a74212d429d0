// The queue-depth admission of one API process (CELLBLOCK_MAX_QUEUED_JOBS): a submission is
// admitted while the jobs waiting, with its own, stay within the maximum; else QueueFullError
// (429 queue_full). The jobs waiting are this process's last read of the queue's depth plus the
// jobs it added or is adding since, so that one process never admits past the maximum however many
// submissions arrive at once. The API's job client (client.ts) holds one and adds through it.
import { BatchAboveQueueMaximumError, QueueFullError } from './errors.js';

/**
 * How old a read of the queue's depth may grow before a submission starts the next one, for the
 * admission check (maxQueuedJobs). Across API processes the check is a cap against floods, not an
 * exact count (the others add in between): a submission is admitted on the last read (plus the
 * jobs this process added or is adding since) while the next read is under way, so that no request
 * waits for a round trip to Redis just for it; only a refusal waits, for a read of its own.
 */
const QUEUE_DEPTH_READ_MS = 250;

/** A read of the queue's depth under way, and the jobs added here since it started. */
interface DepthRead {
  read: Promise<number>;
  startedAt: number;
  addedSince: number;
}

export class QueueAdmission {
  /** The queue's depth as last read, when that read was started, and the jobs added here since. */
  private depth?: { jobs: number; readAt: number; addedSince: number };
  /** The read under way, shared by concurrent submissions. */
  private depthRead?: DepthRead;
  /** Jobs admitted by the queue's depth check and not yet added (their add under way). */
  private adding = 0;

  /** `countQueued` reads the queue's depth (BullMQ's Queue.count). */
  constructor(
    private readonly countQueued: () => Promise<number>,
    private readonly maxQueuedJobs: number,
  ) {}

  /** Runs `add` (which adds `admitting` jobs) if they are admitted, else throws QueueFullError (or
   * BatchAboveQueueMaximumError, for more jobs than the maximum);
   * their reservation (`adding`) ends in the turn they join addedSince (never counted twice), or
   * where the add failed. */
  async admit<T>(admitting: number, add: () => Promise<T>): Promise<T> {
    // More than may ever wait: refused whatever the queue holds (a full queue's 429 would have the
    // caller retry what can never pass).
    if (admitting > this.maxQueuedJobs) throw new BatchAboveQueueMaximumError(admitting, this.maxQueuedJobs);
    // Counted with the jobs this process admitted and is still adding: the check and the
    // reservation run in one turn of the event loop (no await between them), so that
    // concurrent submissions cannot all pass on one count while each one's add is under way.
    let queued = (await this.queuedJobs(false)) + this.adding;
    if (queued + admitting > this.maxQueuedJobs) queued = (await this.queuedJobs(true)) + this.adding;
    if (queued + admitting > this.maxQueuedJobs) {
      throw new QueueFullError(queued, this.maxQueuedJobs);
    }
    this.adding += admitting;
    try {
      const added = await add();
      if (this.depth) this.depth.addedSince += admitting;
      if (this.depthRead) this.depthRead.addedSince += admitting;
      return added;
    } finally {
      this.adding -= admitting;
    }
  }

  /** Waiting jobs: from the last read plus what this process added since (a new read starts in
   * the background once it is QUEUE_DEPTH_READ_MS old); `fresh`, or before any read, from a read
   * under way (started by this call if none is). */
  private async queuedJobs(fresh: boolean): Promise<number> {
    const last = this.depth;
    if (fresh || !last) return this.readQueuedJobs();
    if (Date.now() - last.readAt >= QUEUE_DEPTH_READ_MS) this.readQueuedJobs().catch(() => {});
    return last.jobs + last.addedSince;
  }

  private readQueuedJobs(): Promise<number> {
    const reading = (this.depthRead ??= this.startDepthRead());
    return reading.read.then((jobs) => jobs + reading.addedSince);
  }

  /** A read of the queue's depth; settled, it becomes the last read (a failed one is not kept:
   * the next submission reads again). */
  private startDepthRead(): DepthRead {
    const started: DepthRead = { read: this.countQueued(), startedAt: Date.now(), addedSince: 0 };
    started.read
      .then((jobs) => (this.depth = { jobs, readAt: started.startedAt, addedSince: started.addedSince }), () => {})
      .finally(() => {
        if (this.depthRead === started) this.depthRead = undefined;
      });
    return started;
  }
}
