// What Redis itself says of its fitness to hold the queue, beside being reachable: its eviction
// policy (BullMQ needs noeviction: an evicting Redis drops jobs, their lists and their locks once
// it is full), and whether it takes writes (a Redis over its maxmemory refuses them, OOM; one
// whose last write to disk failed, MISCONF). The processes refuse an evicting Redis at start
// (connection.ts), and say so while they run (/readyz, a worker's log); a full one is answered
// for what it is (RedisRefusingWritesError, /readyz) rather than as unreachable.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The only maxmemory-policy under which Redis never drops a key of the queue's. */
const REQUIRED_MAXMEMORY_POLICY = 'noeviction';

/** Redis's maxmemory-policy: CONFIG GET's, or INFO memory's where CONFIG is refused (managed
 * Redis services rename or forbid it); undefined where neither tells (a Redis-like server that
 * has none). Throws where Redis cannot be read at all. */
export async function readMaxmemoryPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (policy) return policy;
  } catch {
    // Refused (ERR unknown command, NOPERM): INFO says it too.
  }
  return policyFromInfo(await redis.info('memory'));
}

/** The maxmemory-policy INFO memory's answer states; undefined where it states none. */
export function policyFromInfo(info: string): string | undefined {
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
}

/** Whether a policy drops keys when Redis is full (callers skip an unknown one: it refuses nothing). */
export function evicts(policy: string): boolean {
  return policy !== REQUIRED_MAXMEMORY_POLICY;
}

/** What an evicting policy does to the queue, and what to do: one line (the refusal at start,
 * /readyz's reason, a worker's log). */
export function evictionMessage(policy: string): string {
  return `Redis's maxmemory-policy is ${policy}, under which a full Redis evicts keys, the queue's jobs among them: set it to ${REQUIRED_MAXMEMORY_POLICY} (CONFIG SET maxmemory-policy ${REQUIRED_MAXMEMORY_POLICY}, and in its configuration), as BullMQ requires`;
}

/** Logs changes of Redis's eviction policy as a running process reads it (a worker's periodic
 * read, the API's /readyz): an error once it evicts, info once it no longer does. The first read
 * that finds it fine says nothing (the start refused an evicting one). */
export function evictionPolicyLog(logger: Pick<Logger, 'error' | 'info'>): (policy: string | undefined) => void {
  let last: string = REQUIRED_MAXMEMORY_POLICY;
  return (policy) => {
    if (policy === undefined || policy === last) return;
    if (evicts(policy)) logger.error({ maxmemoryPolicy: policy }, evictionMessage(policy));
    else if (evicts(last)) logger.info({ maxmemoryPolicy: policy }, `Redis's maxmemory-policy is ${policy} again`);
    last = policy;
  };
}

/** Redis's answers to a write it refuses for want of memory (used memory over maxmemory, under
 * noeviction). A transaction refused so fails its EXEC with EXECABORT, the OOM among its
 * `previousErrors`. */
const OUT_OF_MEMORY = /^OOM\b/;
/** Redis refusing every write: its last write to disk (AOF, or an RDB save with
 * stop-writes-on-bgsave-error) failed. It refuses PING then too. */
const DISK_ERROR = /^MISCONF\b/;

/** Why Redis refused a write, where it refused it for a state of its own rather than for the
 * command: `full` (OOM), `disk_error` (MISCONF); undefined for anything else. */
export function writeRefusal(error: unknown): 'full' | 'disk_error' | undefined {
  const errors = [error, ...((error as { previousErrors?: unknown[] } | null)?.previousErrors ?? [])];
  for (const each of errors) {
    const message = each instanceof Error ? each.message : '';
    if (OUT_OF_MEMORY.test(message)) return 'full';
    if (DISK_ERROR.test(message)) return 'disk_error';
  }
  return undefined;
}

/** What `INFO memory` says of Redis's fill, for a message: `used 21.5M of maxmemory 20.00M`. */
export function memoryFigures(info: string): string | undefined {
  const used = /^used_memory_human:(\S+)/m.exec(info)?.[1];
  const maximum = /^maxmemory_human:(\S+)/m.exec(info)?.[1];
  return used && maximum ? `used ${used} of maxmemory ${maximum}` : undefined;
}
