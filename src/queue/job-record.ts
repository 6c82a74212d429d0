// A job's record: what `GET /v1/jobs/:id` and every front show of it, in the vocabulary they share,
// read from BullMQ's job (its hash and its state), from the result kept apart for it
// (result-store.ts), or from its cancel marker once a cancel removed it. Finished jobs stay
// readable for `resultTtlSeconds` after they finished: reads stop at it, whether or not the result
// cleaner (result-cleaner.ts) has removed them yet. The API's job client (client.ts) and the
// notifier (notifier.ts) read records here.
//
// Times are Redis's clock, as the process that stamped it estimates it (redis-clock.ts): createdAt
// the API's; finishedAt the worker's (BullMQ's finishedOn, which the worker has BullMQ stamp so;
// for a completed job the attempt its result holds), and a completed job's startedAt (its
// attempt's). Not yet completed (running; failed), startedAt is BullMQ's processedOn, the take,
// by the worker's own clock: BullMQ's lock renewals count from it by that clock (worker.ts), so it
// is off by that machine's skew. The expiry compares finishedOn with the reader's estimate.
import type { Job, JobState, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobRecord, JobRequest, JobStatus } from '../jobs/model.js';
import { splitStoredResult, type StoredJobResult } from './codec.js';
import type { RedisKeys } from './keys.js';
import type { Clock } from './redis-clock.js';
import { withResultKeptApart } from './result-store.js';

/** What the cancel marker holds, so that a cancelled queued job (removed from BullMQ) still has a
 * record, its submission included. */
export interface CancelMarker {
  createdAt: string;
  cancelledAt: string;
  /** Absent in markers written before it was kept. */
  request?: JobRequest;
}

/** The BullMQ failure reason of a job whose worker died more than `maxStalledCount` times. */
const STALLED_REASON = 'job stalled more than allowable limit';
/** The failure reason a worker gives a job it took after it was cancelled (see worker.ts). */
export const CANCELLED_REASON = 'cancelled before it ran';
/** Why a live job fails rather than run again: its client's input went to the worker that had it.
 * Taken again after its worker died or shut down, or lost its lock (cut off from Redis longer than
 * the lock's duration: that worker may be alive and well), so the reason names each. */
export const LIVE_RETRY_REASON =
  "a live job is not run again: the worker running it stopped or lost the job (died, shut down, or was cut off from Redis past CELLBLOCK_LOCK_DURATION_MS), and its client's input went with it";
/** LIVE_RETRY_REASON as workers before 2026-12-07 wrote it: still read as a failure at a take,
 * since workers are upgraded before APIs and a job's record outlives the upgrade by its TTL. */
const LIVE_RETRY_REASON_BEFORE = "a live job is not run again: the worker running it stopped, and its client's input went with it";
/** The start of the failure reason a worker gives a job that ran but whose result Redis, full,
 * refused for as long as the worker kept trying (worker.ts): its failure is `result_not_stored`. */
const RESULT_NOT_STORED_REASON = 'result not stored:';

/** A `result_not_stored` failure's reason: the job ran, its verdict, and why its result is not
 * here. */
export function resultNotStoredReason(verdict: string, triedMs: number): string {
  return `${RESULT_NOT_STORED_REASON} the job ran (verdict ${verdict}), but Redis is full (its used memory is over its maxmemory) and refused its result for ${Math.round(triedMs / 1000)} s; submit it again once Redis has room`;
}
/** Failures made at a take, before anything ran: BullMQ's for a job stalled past its count, and a
 * worker's for a job cancelled before it ran or a live job taken again. The take counted an attempt
 * and set processedOn all the same. */
const FAILED_AT_TAKE = [STALLED_REASON, CANCELLED_REASON, LIVE_RETRY_REASON, LIVE_RETRY_REASON_BEFORE];
/** The statuses a job ends in. */
export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'cancelled']);

/** A job this process submitted, as recordFromCompletion needs it: when (its BullMQ timestamp, its
 * createdAt) and, for a single submission, its request. */
interface SubmittedHere {
  createdAtMs: number;
  request?: JobRequest;
}

/** When finished jobs expire: `ttlMs` after their finish, by `clock` (the reader's estimate of
 * Redis's clock, so that a reader's own clock neither shortens nor lengthens a result's life). */
export interface ResultExpiry {
  ttlMs: number;
  clock: Clock;
}

/** What a record is made of: a BullMQ job's fields, read from Redis or known from a completion event
 * (which has no `stalledCounter`). */
type JobSnapshot = Pick<Job<JobRequest, StoredJobResult>, 'id' | 'timestamp' | 'data' | 'processedOn' | 'finishedOn' | 'attemptsStarted' | 'returnvalue' | 'failedReason'> &
  Partial<Pick<Job, 'stalledCounter'>>;

/** A `worker_lost` failure's message: how many times the job's worker died (BullMQ's stall count,
 * one more than CELLBLOCK_MAX_STALLED_COUNT when it fails the job; `takes` where the snapshot has
 * none), so how many times it was retried: with a count of 0, none. */
function workerLostMessage(stalls: number | undefined, takes: number): string {
  const retries = Math.max(0, (stalls || takes) - 1);
  if (retries === 0) return "the job's worker died while it ran, and the job was not retried (no retry after a worker's death is allowed here)";
  return `the job's worker died while it ran; it was retried ${retries === 1 ? 'once' : `${retries} times`}, and ${retries === 1 ? 'its worker died again' : 'each time its worker died again'}`;
}

/** The record of a job this process submitted, from its completion event's return value; undefined
 * when the event cannot tell it all (a result stored without its attempt, a batch submission). */
export function recordFromCompletion(id: string, fresh: SubmittedHere, completion: StoredJobResult): JobRecord | undefined {
  const attempt = completion.attempt;
  // A result kept apart (its stub in the event) is read with the job (readJobRecord).
  if (!fresh.request || !attempt || typeof completion.verdict !== 'string' || completion.storedIn !== undefined) return undefined;
  return toRecord(
    {
      id,
      timestamp: fresh.createdAtMs,
      data: fresh.request,
      processedOn: attempt.startedAtMs,
      finishedOn: attempt.finishedAtMs,
      attemptsStarted: attempt.number,
      returnvalue: completion,
      failedReason: '',
    },
    'completed',
  );
}

/** A job's record as `GET /v1/jobs/:id` shows it (the API's, and the worker's for a notification);
 * undefined when Redis holds nothing of it (never submitted, or its results expired) or, given
 * `expiry`, when it finished its TTL ago or more: exactly at its TTL, whether or not the result
 * cleaner has removed it yet. */
export async function readJobRecord(queue: Queue, redis: Redis, keys: RedisKeys, id: string, expiry?: ResultExpiry): Promise<JobRecord | undefined> {
  // State first: a job read before its state may have finished in between, and would show as
  // done without its result. Read after, the job's hash is at least as new as its state.
  const state = await queue.getJobState(id);
  // Its whole result where it was kept apart (not for a job whose result has expired: it reads as
  // gone below, and that result may be a hundred MB); a job whose result's key expired reads as
  // expired.
  const read = await queue.getJob(id);
  const expired = expiry !== undefined && resultExpired(read?.finishedOn, expiry);
  const job = expired ? read : await withResultKeptApart(redis, read);
  // The state again where the hash is newer than it: a hash without a state (a job added in
  // between, or one a cancel took out of every list), with a finish time while the state said
  // unfinished (it finished in between), or without one while the state said finished (an expired
  // job an Idempotency-Key's try removed and made anew under its id in between): shown as it is,
  // not as running with no result, nor done without one.
  const stale = state === 'unknown' || (job !== undefined && (job.finishedOn !== undefined) !== isFinishedState(state));
  const jobState = job && stale ? await job.getState() : state;
  // A job in no list of BullMQ's is one whose cancel took it out of the queue and then lost Redis
  // before removing it: its marker is its record, as for a job removed.
  if (job && jobState !== 'unknown') return unexpiredRecord(job, jobState, expiry);
  const marker = await redis.get(keys.cancelled(id));
  if (marker === null) return job ? toRecord(job, jobState) : undefined;
  const { createdAt, cancelledAt, request } = JSON.parse(marker) as CancelMarker;
  return { id, status: 'cancelled', createdAt, finishedAt: cancelledAt, ...(request ? { request } : {}) };
}

export function isFinishedState(state: JobState | 'unknown'): boolean {
  return state === 'completed' || state === 'failed';
}

/** Whether a result has outlived its TTL: `finishedOn` is BullMQ's, which the clean compares too
 * (the finished sets' score) by the same clock, so that a result read as gone is one the clean
 * removes. */
export function resultExpired(finishedOn: number | undefined, expiry: ResultExpiry): boolean {
  return finishedOn !== undefined && expiry.clock.now() - finishedOn >= expiry.ttlMs;
}

/** The job's record, or undefined for a finished job whose result has expired (`expiry`; none
 * when undefined), read as a job Redis no longer holds. */
export function unexpiredRecord(job: JobSnapshot, state: JobState | 'unknown', expiry: ResultExpiry | undefined): JobRecord | undefined {
  if (expiry !== undefined && isFinishedState(state) && resultExpired(job.finishedOn, expiry)) return undefined;
  return toRecord(job, state);
}

/** BullMQ's view of a job, in the vocabulary every front shares. */
export function toRecord(job: JobSnapshot, state: JobState | 'unknown'): JobRecord {
  const record: JobRecord = { id: job.id!, status: 'queued', createdAt: new Date(job.timestamp).toISOString() };
  // The job's data is the JobRequest: read with the job, so showing it costs no Redis round trip.
  if (job.data) record.request = job.data;
  // A job failed at a take (FAILED_AT_TAKE: stalled past maxStalledCount, cancelled before it ran,
  // a live job taken again) ran nothing there; but BullMQ's take counts an attempt started and sets
  // processedOn all the same. So its workers are one fewer than its takes, and its processedOn is
  // its failure's time, not when its last run started, which Redis no longer holds (if it ran at
  // all): it has no startedAt.
  const failedAtTake = state === 'failed' && FAILED_AT_TAKE.includes(job.failedReason);
  // A completed job started and finished when its result's attempt says (its worker's readings as
  // it started the job and as it had the result: BullMQ's processedOn is the take, an instant
  // before, and finishedOn an instant later, when Redis stored the result), so that the record
  // reads the same from the job and from its event.
  const stored = state === 'completed' && job.returnvalue ? splitStoredResult(job.returnvalue) : undefined;
  const startedOn = stored?.attempt?.startedAtMs ?? job.processedOn;
  if (startedOn && !failedAtTake) record.startedAt = new Date(startedOn).toISOString();
  const finishedOn = isFinishedState(state) ? (stored?.attempt?.finishedAtMs ?? job.finishedOn) : undefined;
  if (finishedOn) record.finishedAt = new Date(finishedOn).toISOString();
  const attempts = failedAtTake ? job.attemptsStarted - 1 : job.attemptsStarted;
  if (attempts > 0) record.attempts = attempts;
  if (state === 'active') {
    record.status = 'running';
  } else if (state === 'completed') {
    if (stored) record.result = stored.result;
    record.status = stored?.result.verdict === 'cancelled' ? 'cancelled' : 'done';
  } else if (state === 'failed' && job.failedReason === CANCELLED_REASON) {
    record.status = 'cancelled';
  } else if (state === 'failed') {
    record.status = 'failed';
    record.failure =
      job.failedReason === STALLED_REASON
        ? { code: 'worker_lost', message: workerLostMessage(job.stalledCounter, attempts) }
        : job.failedReason?.startsWith(RESULT_NOT_STORED_REASON)
          ? { code: 'result_not_stored', message: job.failedReason }
          : { code: 'internal_error', message: job.failedReason || 'the worker failed to run the job' };
  }
  return record;
}
