// Idempotency-Key's pieces: the job id a key names (idempotentJobId, under the deployment's secret),
// so that a retried submission finds its first job rather than adding another; a submission's one
// spelling whatever order its fields came in (canonicalJson), to tell a retry from another request
// under the key; and the removal of a job whose result expired (removeExpiredJob), so that its key
// makes a new job. The API's job client (client.ts, submitOnce) adds the job and reads what the id
// names before and after the add.
import { createHash, randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueUnavailableError } from './errors.js';

/**
 * Removes a finished job whose result has expired (KEYS: the completed and failed sets, then the
 * job's keys as BullMQ's removeJobKeys deletes them; ARGV: the job id, the newest finish time
 * that has expired, epoch ms): 1 if it did. The sets' scores are the jobs' finishedOn; a job in
 * neither (queued, running: a job added under the id since, say) or finished later is left as it
 * is, so that tries racing on one Idempotency-Key remove the expired job once and never the new.
 */
const REMOVE_EXPIRED_JOB = `
for i = 1, 2 do
  local finishedOn = redis.call('ZSCORE', KEYS[i], ARGV[1])
  if finishedOn and tonumber(finishedOn) <= tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[i], ARGV[1])
    redis.call('DEL', unpack(KEYS, 3))
    return 1
  end
end
return 0`;
/** The keys of a job BullMQ's removeJobKeys deletes with its hash. */
const JOB_KEY_SUFFIXES = ['', ':logs', ':dependencies', ':processed', ':failed', ':unsuccessful'];

/** The job id an idempotency key names: 21 characters of the SHA-256 of the deployment's secret
 * and the key in base64url, a nanoid's shape (isJobId, client.ts), so that every read of the job
 * is one of any other. */
export function idempotentJobId(secret: string, idempotencyKey: string): string {
  return createHash('sha256').update(secret).update('\0').update(idempotencyKey).digest('base64url').slice(0, 21);
}

/** The secret mixed into every idempotency key's job id, the same for every API process of the
 * deployment (kept in Redis under `key`, made by the first that needs it): without it anyone who
 * guessed a key on a server without API keys could compute its job's id and read the job. */
export async function readIdempotencySecret(redis: Redis, key: string): Promise<string> {
  await redis.set(key, randomBytes(32).toString('base64url'), 'NX');
  const secret = await redis.get(key);
  if (!secret) throw new QueueUnavailableError(new Error(`${key} vanished as it was read`));
  return secret;
}

/** Removes the job `id` if it finished at `expiredBy` (epoch ms) or before (REMOVE_EXPIRED_JOB). */
export async function removeExpiredJob(queue: Queue, redis: Redis, id: string, expiredBy: number): Promise<void> {
  const { completed, failed } = queue.keys;
  const jobKey = queue.toKey(id);
  await redis.eval(REMOVE_EXPIRED_JOB, 2 + JOB_KEY_SUFFIXES.length, completed!, failed!, ...JOB_KEY_SUFFIXES.map((suffix) => jobKey + suffix), id, expiredBy);
}
