// A large result is kept apart from its BullMQ job. BullMQ stores a job's return value in the job's
// hash and again in the 'completed' entry of the queue's event stream, which it trims by count
// (~10,000 entries), not by age, so that copy outlived the result's TTL; and every API process
// parses every completion event, whether or not a request waits for the job. A result of 8 tests ×
// 16 MiB (what the defaults admit) took 400 MB of Redis, ~740 MB of the worker storing it, and
// ~720 MB of every API process as it heard the completion (loadtest/result-read-memory.ts).
//
// So a worker writes a result whose JSON would be longer than INLINE_RESULT_MAX_BYTES into a hash
// of its own (RedisKeys.result) before it completes the job, and the return value (in the job's
// hash, the event, every listener) is a stub that says where it is (StoredJobResult.storedIn),
// with the verdict, runtime and queue wait. Its outputs are kept as raw bytes, one field each (not
// base64 in JSON: a third less in Redis, and neither the worker nor a reader makes the text of
// the whole result). Every reader resolves the stub (readJobRecord, through which the API's reads
// and the notifier's go); one whose hash has expired reads as a job whose result has expired.
//
// The hash expires the result's TTL after the job's finish (the TTL the API gave the job:
// RESULT_TTL_OPTION) or a little later: never before the job's record stops being
// readable. It is written before the job is completed: a worker that dies in between leaves the
// job to the stall check, and the worker that runs it again writes a key of its own (per attempt:
// RedisKeys.result); the dead attempt's, never completed, is gone at its expiry. A job removed earlier (nothing removes a finished
// job before its TTL) leaves it until then.
import type { Redis } from 'ioredis';
import type { ExecuteResult } from '../executor/types.js';
import { toJobResult, type ResultAttempt, type StoredJobResult, type StoredResultPlace } from './codec.js';
import type { RedisKeys } from './keys.js';

/**
 * The longest result (its JSON, outputs base64) kept in BullMQ's return value. Small enough that
 * the event stream's ~10,000 completion entries hold at most ~160 MB whatever the jobs, and that
 * every API process's parse of every event stays cheap; large enough that the results of quick
 * jobs, where a Redis round trip shows (a hello world's is ~0.7 KB, twenty tests of short answers
 * ~6 KB), are answered from the completion event alone. A larger one costs the worker a write and
 * its reader a read (each ~0.1-0.3 ms) beside the job that made it.
 */
export const INLINE_RESULT_MAX_BYTES = 16 * 1024;

/** A BullMQ job option (jobOptions): the API that queued the job reads results kept apart. A
 * worker keeps apart only such jobs' results, so that an API of an earlier version, which takes
 * a stub for the whole result (its outputs empty), is never handed one for a job it queued. */
export const READS_RESULTS_APART_OPTION = 'cellblockReadsResultsApart';
/** A BullMQ job option (jobOptions): the job's result TTL in seconds. APIs before it (2026-12-07)
 * gave the TTL as BullMQ's removeOnComplete age, which APIs no longer set (that removal went by the
 * finishing worker's clock): read there for the jobs they queued. */
export const RESULT_TTL_OPTION = 'cellblockResultTtlSeconds';

/** The hash's fields: the result's JSON, its outputs referenced (OUTPUT_REFERENCE) rather than
 * written; its bytes in all (read by the notifier's memory budget); and each output's bytes under
 * its index. */
const RESULT_FIELD = 'result';
const BYTES_FIELD = 'bytes';
/** An output kept apart, in its `...Base64` field of the result's JSON: `*` is no base64 character. */
const OUTPUT_REFERENCE = /^\*(\d+)$/;

/** What a worker needs of the BullMQ job whose result it stores. */
export interface StoringJob {
  id?: string | undefined;
  timestamp: number;
  opts: object;
}

/** A job's BullMQ options say that the API that queued it reads results kept apart: an API of
 * this version or later (since 2026-12-07), not an earlier one or another producer. */
export function queuedByApiReadingResultsApart(opts: object): boolean {
  return (opts as Record<string, unknown>)[READS_RESULTS_APART_OPTION] === true;
}

/** How long a job's result may be read after it finished (ms), where the job's API reads results
 * kept apart; undefined where it does not (the result then stays in the return value). */
function keptApartTtlMs(opts: object): number | undefined {
  const { removeOnComplete, [RESULT_TTL_OPTION]: ttlSeconds } = opts as Record<string, unknown>;
  if (!queuedByApiReadingResultsApart(opts)) return undefined;
  const ageSeconds = ttlSeconds ?? (removeOnComplete !== null && typeof removeOnComplete === 'object' ? (removeOnComplete as { age?: unknown }).age : undefined);
  return typeof ageSeconds === 'number' && ageSeconds > 0 ? ageSeconds * 1000 : undefined;
}

const base64Length = (bytes: number) => Math.ceil(bytes / 3) * 4;

/** Puts each output a stored result references back, base64; false where one is missing. */
function fillOutputs(value: unknown, output: (index: number) => Buffer | undefined): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every((element) => fillOutputs(element, output));
  const fields = value as Record<string, unknown>;
  for (const [name, field] of Object.entries(fields)) {
    const reference = name.endsWith('Base64') && typeof field === 'string' ? OUTPUT_REFERENCE.exec(field) : null;
    if (reference) {
      const bytes = output(Number(reference[1]));
      if (bytes === undefined) return false;
      fields[name] = bytes.toString('base64');
    } else if (!fillOutputs(field, output)) {
      return false;
    }
  }
  return true;
}

/**
 * A finished job's return value: its StoredJobResult, or, where that is longer than
 * INLINE_RESULT_MAX_BYTES and the job's API reads results kept apart, the stub of the result
 * written into its own hash first (expiring `extraTtlMs` after the result's TTL from now: the
 * job's finish, which comes after this write, must come within it).
 */
export async function storeJobResult(
  redis: Redis,
  keys: RedisKeys,
  job: StoringJob,
  result: ExecuteResult,
  queueWaitMs: number,
  attempt: ResultAttempt,
  extraTtlMs: number,
): Promise<StoredJobResult> {
  const ttlMs = keptApartTtlMs(job.opts);
  if (ttlMs === undefined || job.id === undefined) return toJobResult(result, queueWaitMs, attempt);
  const outputs: Buffer[] = [];
  const stored = toJobResult(result, queueWaitMs, attempt, (bytes) => (bytes.length === 0 ? '' : `*${outputs.push(bytes) - 1}`));
  const json = JSON.stringify(stored);
  const outputBytes = outputs.reduce((sum, bytes) => sum + bytes.length, 0);
  if (json.length + base64Length(outputBytes) <= INLINE_RESULT_MAX_BYTES) {
    fillOutputs(stored, (index) => outputs[index]);
    return stored;
  }
  // A key of this attempt's own: a worker that lost the job's lock after its run (another worker
  // runs it again) still stores its result, and two attempts writing one key could mix their
  // fields, or the later write replace the result of the attempt that completed the job.
  const place: StoredResultPlace = { key: keys.result(job.id, job.timestamp, attempt.number), bytes: Buffer.byteLength(json) + outputBytes };
  // The hash is made with its expiry, in one transaction (never without it, nor with another
  // attempt's fields), then given each output by a command of its own, sent at once: ioredis
  // copies a command's arguments into one buffer, and a transaction's commands into one more.
  // One of them refused (Redis out of memory) fails the store, and what was written of it is
  // deleted (sent behind the writes, on their connection: after them; DEL takes no memory, so a
  // full Redis takes it): no part of a result is left to read, and the worker may try again.
  try {
    const made = redis.multi().hset(place.key, RESULT_FIELD, json, BYTES_FIELD, String(place.bytes)).pexpire(place.key, ttlMs + extraTtlMs).exec();
    const writes = outputs.map((bytes, index) => redis.hset(place.key, String(index), bytes));
    const [replies] = await Promise.all([made, ...writes]);
    if (!replies) throw new Error(`the result of job ${job.id} was not stored: its transaction was aborted`);
    for (const [error] of replies) if (error) throw error;
  } catch (error) {
    await redis.del(place.key).catch(() => {});
    throw error;
  }
  const stub: StoredJobResult = { verdict: stored.verdict, runtime: stored.runtime, queueWaitMs, attempt, storedIn: place };
  if (stored.skippedTests !== undefined) stub.skippedTests = stored.skippedTests;
  return stub;
}

/** A result kept apart, as its worker stored it; undefined once its hash has expired. */
export async function readResultKeptApart(redis: Redis, place: StoredResultPlace): Promise<StoredJobResult | undefined> {
  const fields = await redis.hgetallBuffer(place.key);
  const json = fields[RESULT_FIELD];
  if (json === undefined) return undefined;
  const stored = JSON.parse(json.toString('utf8')) as StoredJobResult;
  return fillOutputs(stored, (index) => fields[String(index)]) ? stored : undefined;
}

/** The job with its whole result where its return value is a stub (read from the result's hash);
 * undefined where that hash has expired: the job reads as one whose result has expired. Any other
 * job as it is, without a Redis call. */
export async function withResultKeptApart<J extends { returnvalue?: unknown }>(redis: Redis, job: J | undefined): Promise<J | undefined> {
  const place = (job?.returnvalue as StoredJobResult | undefined | null)?.storedIn;
  if (job === undefined || place === undefined) return job;
  const result = await readResultKeptApart(redis, place);
  if (result === undefined) return undefined;
  job.returnvalue = result;
  return job;
}

/** The bytes a job's result kept apart holds in Redis, as its stub says (`jobKey`: the job's
 * hash); 0 where it has none. */
export async function bytesKeptApart(redis: Redis, jobKey: string): Promise<number> {
  const stored = await redis.hget(jobKey, 'returnvalue');
  if (stored === null) return 0;
  try {
    return (JSON.parse(stored) as StoredJobResult | null)?.storedIn?.bytes ?? 0;
  } catch {
    return 0;
  }
}
