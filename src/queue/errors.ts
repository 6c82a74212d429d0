// Failures of the job service that an API front turns into an HTTP status.

/** Jobs whose add Redis did not answer in time (QueueUnavailableError.unanswered): the add may
 * reach Redis yet (it is still in the connection's pipe, or resent after a reconnect). */
export interface UnansweredSubmission {
  jobIds: string[];
  /** Withdrawn (client.ts, withdrawUnanswered): none of them ever runs, and the caller may submit
   * again. False for a submission under an Idempotency-Key, left for a retry under the key to find
   * (a withdrawal would be its cancel, which the key's retry answers rather than queue the job). */
  withdrawn: boolean;
  /** A batch's jobs (however many). */
  batch: boolean;
}

/** What a 503 for an unanswered submission says of its jobs. */
function unansweredMessage({ jobIds, withdrawn, batch }: UnansweredSubmission): string {
  const jobs = batch ? `the batch's jobs (${jobIds.join(', ')})` : `job ${jobIds[0]}`;
  if (withdrawn) return `the job queue (Redis) did not answer the submission in time; ${jobs} ${batch ? 'are' : 'is'} being withdrawn: read ${batch ? 'them' : 'it'} before sending ${batch ? 'them' : 'it'} again (cancelled, or not found: not run)`;
  return `the job queue (Redis) did not answer the submission in time, and ${jobs} may have been queued: send it again under the same Idempotency-Key, which answers that job if Redis took it, else queues it`;
}

/** Redis cannot be reached, or did not answer in time: the caller should retry later (503). */
export class QueueUnavailableError extends Error {
  override readonly name = 'QueueUnavailableError';
  readonly retryAfterSeconds = 5;
  constructor(
    cause?: unknown,
    /** Set where the submission's add was sent and not answered. */
    readonly unanswered?: UnansweredSubmission,
  ) {
    super(unanswered ? unansweredMessage(unanswered) : 'the job queue (Redis) is unavailable; retry later', { cause });
  }
}

/** Redis is reachable but refuses writes for a state of its own (redis-health.ts, writeRefusal):
 * `full`, its used memory over its maxmemory (OOM); `disk_error`, its last write to disk failed
 * (MISCONF). Nothing was written: the caller should retry once an operator has freed memory or
 * disk (503: redis_full, redis_refusing_writes). */
export class RedisRefusingWritesError extends Error {
  override readonly name = 'RedisRefusingWritesError';
  readonly statusCode = 503;
  readonly retryAfterSeconds = 10;
  constructor(
    readonly refusal: 'full' | 'disk_error',
    cause: Error,
  ) {
    super(
      refusal === 'full'
        ? `Redis, which holds the job queue, is full (its used memory is over its maxmemory) and refuses writes; retry later (${cause.message})`
        : `Redis, which holds the job queue, refuses writes: its last write to disk failed; retry later (${cause.message})`,
      { cause },
    );
  }
}

/** An idempotency key already names a job submitted with another request (422). */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  constructor(readonly jobId: string) {
    super(`this idempotency key was used for job ${jobId}, with another request; use a new key for a new job`);
  }
}

/** Some live workers run a version that does not know a field the job has (LATER_JOB_FIELDS: a
 * rolling upgrade under way), and would run it without it: the caller should retry once they are
 * upgraded (503). */
export class WorkersBehindError extends Error {
  override readonly name = 'WorkersBehindError';
  readonly statusCode = 503;
  readonly retryAfterSeconds = 10;
  constructor(readonly fields: string[], readonly workers: number) {
    super(
      `${workers} live worker${workers === 1 ? ' runs' : 's run'} a version that does not know ${fields.join(', ')} and would run the job without it; retry once every worker is upgraded`,
    );
  }
}

/** A batch of more jobs than may ever wait at once (maxQueuedJobs): no wait would let it in, so it
 * is a bad request (400), not a full queue to retry later. */
export class BatchAboveQueueMaximumError extends Error {
  override readonly name = 'BatchAboveQueueMaximumError';
  readonly statusCode = 400;
  constructor(readonly jobs: number, readonly maxQueuedJobs: number) {
    super(`${jobs} jobs in one batch can never be queued: at most ${maxQueuedJobs} jobs may wait at once; send at most ${maxQueuedJobs} per batch`);
  }
}

/** Too many jobs are waiting: the caller should back off (429). */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  readonly retryAfterSeconds = 10;
  constructor(readonly queuedJobs: number, readonly maxQueuedJobs: number) {
    super(`the queue is full (${queuedJobs} jobs waiting, at most ${maxQueuedJobs}); retry later`);
  }
}
