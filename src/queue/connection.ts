// ioredis connections, configured by what they are for. BullMQ needs `maxRetriesPerRequest: null`
// on connections that block (workers, queue events) so a Redis restart is waited out; the API's
// producer connection instead fails fast (`enableOfflineQueue: false`) so that an HTTP request
// answers 503 at once rather than hanging until Redis returns (BullMQ's "failing fast" pattern).
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { evicts, readMaxmemoryPolicy } from './redis-health.js';

export type ConnectionRole = 'producer' | 'blocking';

/** Longest a producer's command may go unanswered before it fails (the API then answers 503). */
export const PRODUCER_COMMAND_TIMEOUT_MS = 5000;

/** TCP keepalive on every connection: one idle this long is probed, and closed (then made
 * again, as after any break) when 10 probes a second apart go unanswered (Node's setKeepAlive
 * sets those two; ioredis's default, 0, leaves the kernel's idle time, 2 hours). So a connection that waits, with nothing of its own unanswered, on a Redis
 * cut off by the network (a blocked take of a job, a subscription, an idle pool connection) finds
 * out ~15 s into the cut, and is made again within seconds of the link's return, rather than
 * hearing Redis's own late retransmissions, up to as long again as the cut. A connection with a
 * command unanswered is not probed (TCP retransmits it instead): what waits on Redis bounds that
 * wait itself (the API's command timeout, a worker's lock fence and its close's watch). */
export const KEEPALIVE_IDLE_MS = 5000;

/** The API's producer connection. */
export const API_CONNECTION_NAME = 'cellblock-api';

/** A worker process's own connection, which writes its liveness key: while the process lives,
 * Redis lists a connection of this name (CLIENT LIST); once it dies, the kernel closes it. */
export function workerConnectionName(workerId: string): string {
  return `cellblock-worker-${workerId}`;
}

export function createRedis(url: string, role: ConnectionRole, name: string): Redis {
  return watched(new Redis(url, connectionOptions(role, name)));
}

/** A connection for a library that uses only duplicates of the connection it is handed (BullMQ's
 * QueueEvents: it needs a connection of its own to block on, and makes it with duplicate()): it
 * never connects itself (lazyConnect, and nothing is sent on it), where createRedis's would stay
 * connected and idle for the process's life; its duplicates, watched as createRedis's are, connect
 * at once. Ended by disconnectWithDuplicates. */
export function createRedisTemplate(url: string, role: ConnectionRole, name: string): Redis {
  return watched(new Redis(url, { ...connectionOptions(role, name), lazyConnect: true }));
}

function connectionOptions(role: ConnectionRole, name: string): RedisOptions {
  return {
    connectionName: name,
    keepAlive: KEEPALIVE_IDLE_MS,
    maxRetriesPerRequest: role === 'blocking' ? null : 1,
    enableOfflineQueue: role === 'blocking',
    // A Redis that holds the connection open but does not answer (frozen, or a partition without
    // a reset) must not hold an HTTP request forever. Blocking connections wait by design.
    ...(role === 'producer' ? { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    // Reconnect forever, backing off to 2 s: Redis restarts are expected and survivable.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    // A failover that left this connection on the former primary, now a replica, is answered
    // READONLY until it reconnects (to the name's new address): reconnect. The refused command
    // fails (not sent again: against a node that stays a replica, a blocking connection, with no
    // retry limit or timeout, would resend it for ever, silently); its caller says so or retries.
    // (Inside a script, Redis 6 wraps it: "ERR Error running script ...: READONLY ...".)
    reconnectOnError: (error) => error.message.includes('READONLY'),
  };
}

/** A setting Redis refused, in its own words (`answer`): `database`, the database the URL names
 * (SELECT: a number past its `databases`, any but 0 on a cluster); `login`, the URL's user and
 * password (WRONGPASS), or none where Redis wants one (NOAUTH), while this process has not run
 * (hasRun: no connection of it ready yet, and its service not run before it): a setting to change,
 * not an outage. (A login refused later, Redis restarted with other credentials, is retried as an
 * outage is.) Or a Redis unfit for the queue: `eviction`, its maxmemory-policy (`answer`) is not
 * noeviction, read once, as the first connection of this process is ready (a change while it runs
 * is said by /readyz and the workers' log: redis-health.ts). */
export interface RedisRefusal {
  kind: 'database' | 'login' | 'eviction';
  answer: string;
  /** The database refused (`database`). */
  database?: string;
}

/** Redis's answers to a SELECT of a database it does not have (or, in cluster mode, any but 0). */
const DATABASE_REFUSED = /^ERR (DB index is out of range|invalid DB index|SELECT is not allowed in cluster mode)/i;
/** Redis's answers to a login it does not take (Redis 6+; `ERR invalid password` before). */
const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH)\b|^ERR invalid (username-)?password/i;

let refusal: RedisRefusal | undefined;
const refusalListeners = new Set<(refusal: RedisRefusal) => void>();
/** Whether this process has run: any connection of it has been ready, or serviceRan. */
let everReady = false;
const runListeners = new Set<() => void>();

/** Tells this process that its service has run: a worker process is told so by its supervisor
 * once a worker of the service (or `start`'s API) has been ready. A login Redis refuses is then an
 * outage (waited out) from this process's start, as it is once a connection of the process itself
 * has been ready: that login was taken, and the password changed on the server meanwhile, or Redis
 * refused it for a moment; it is not the setting that is wrong. */
export function serviceRan(): void {
  if (everReady) return;
  everReady = true;
  for (const listener of runListeners) listener();
  runListeners.clear();
}

/** Whether this process has run: a connection of it has been ready, or serviceRan. */
export function hasRun(): boolean {
  return everReady;
}

/** Calls `listener` once this process has run (hasRun), or at once if it has. */
export function onRun(listener: () => void): void {
  if (everReady) listener();
  else runListeners.add(listener);
}

/** Whether the eviction policy's check (checkEvictionPolicy) is under way or made. */
let evictionCheckStarted = false;
let evictionChecked: () => void = () => {};
const evictionCheckMade = new Promise<void>((resolve) => (evictionChecked = resolve));

/** Resolves once this process has read Redis's eviction policy (an evicting one refused by then,
 * onRedisRefusal's listeners told), or after `timeoutMs`: the API listens once it has. */
export async function evictionPolicyRead(timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([evictionCheckMade, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs).unref()))]);
  clearTimeout(timer);
}

/** Reads Redis's eviction policy on a connection just ready, once per process: an evicting one is
 * refused (`eviction`). A read that fails (the connection lost meanwhile, a subscriber's) is made
 * again by the next connection that is ready. */
function checkEvictionPolicy(redis: Redis): void {
  if (evictionCheckStarted) return;
  evictionCheckStarted = true;
  readMaxmemoryPolicy(redis).then(
    (policy) => {
      if (policy !== undefined && evicts(policy)) refused(redis, { kind: 'eviction', answer: policy });
      evictionChecked();
    },
    () => {
      evictionCheckStarted = false;
    },
  );
}

/** Calls `listener` with the first refusal of any connection of this process (every createRedis
 * connection, and those BullMQ duplicates from them): synchronously, before the commands the
 * refusal fails are told of it, or at once if it came already. The commands stop on it (src/bin).
 * A connection whose database was refused is closed before it sends a command; one whose login was
 * refused goes on trying, as ioredis does. */
export function onRedisRefusal(listener: (refusal: RedisRefusal) => void): void {
  if (refusal) listener(refusal);
  else refusalListeners.add(listener);
}

/** Each connection's refusal (a setting Redis refused it), until it is ready. */
const connectionRefusals = new WeakMap<Redis, RedisRefusal>();

function refused(redis: Redis, what: RedisRefusal): void {
  connectionRefusals.set(redis, what);
  if (refusal) return;
  refusal = what;
  for (const listener of refusalListeners) listener(what);
  refusalListeners.clear();
}

/** A setting Redis refused (RedisRefusal), as the error of what waited on the connection. */
export class RedisRefusalError extends Error {
  override readonly name = 'RedisRefusalError';
  constructor(readonly refusal: RedisRefusal) {
    super(`Redis refused the ${refusal.kind} of CELLBLOCK_REDIS_URL (${refusal.answer})`);
  }
}

/** Resolves once `redis` is ready (at once if it is); rejects with RedisRefusalError if Redis
 * refuses it a setting first (onRedisRefusal's refusals, of this connection). A command sent then
 * goes out at once, where one queued before fails should Redis refuse the login (ioredis fails its
 * queue at a failed ready check), though, once the process has run (hasRun), that refusal is an
 * outage, waited out here as one. */
export function whenReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  const earlier = connectionRefusals.get(redis);
  if (earlier) return Promise.reject(new RedisRefusalError(earlier));
  return new Promise((resolve, reject) => {
    const ready = () => {
      redis.off('error', failed);
      resolve();
    };
    // After watched's own listener, which records the refusal.
    const failed = () => {
      const what = connectionRefusals.get(redis);
      if (!what) return;
      redis.off('ready', ready);
      redis.off('error', failed);
      reject(new RedisRefusalError(what));
    };
    redis.once('ready', ready);
    redis.on('error', failed);
  });
}

/** The connections duplicated from each (disconnectWithDuplicates). */
const duplicates = new WeakMap<Redis, Set<Redis>>();

/** Each connection's last failure (connectionFailure), until it is ready again. */
const failures = new WeakMap<Redis, string>();

/** Why the connection's attempts have failed since it was last ready (ECONNREFUSED, WRONGPASS or
 * NOAUTH from Redis, a TLS handshake's failure), for a log line; undefined when none has. Holds no
 * credential: the URL's password is blanked out of it. */
function connectionFailure(redis: Redis): string | undefined {
  return failures.get(redis);
}

/** How long warnUntilReady waits, when a connection has neither been ready nor failed, before it
 * says so: past ioredis's connect timeout (10 s), at which a connection that hangs (packets
 * dropped, a TLS handshake with no answer) fails. A Redis that takes the connection and never
 * answers (frozen) fails no attempt. */
const UNREACHABLE_REASON_WAIT_MS = 12_000;

/** Says once on `log`, as `message` (a warning, its `reason` connectionFailure's, else `no answer in
 * N ms`), that `redis` is not reachable yet: at once if an attempt of it has failed already, else at
 * the first that fails, or once `waitMs` pass with neither an answer nor a failure; nothing if it
 * is ready first, or ended (disconnected) meanwhile. The API and a worker starting while Redis is
 * away say it so. */
export function warnUntilReady(redis: Redis, log: Logger, message: string, waitMs = UNREACHABLE_REASON_WAIT_MS): void {
  if (redis.status === 'ready') return;
  const say = () => {
    stop();
    log.warn({ reason: connectionFailure(redis) ?? `no answer in ${waitMs} ms` }, message);
  };
  const stop = () => {
    clearTimeout(timer);
    redis.off('error', say);
    redis.off('ready', stop);
    redis.off('end', stop);
  };
  // Unref'd: a connection left waiting keeps no process alive for it.
  const timer = setTimeout(say, waitMs).unref();
  // After watched's own error listener, which records the failure.
  redis.on('error', say);
  redis.on('ready', stop);
  redis.on('end', stop);
  if (connectionFailure(redis) !== undefined) say();
}

/** createRedis's connection, and every one duplicated from it (BullMQ's Workers and QueueEvents
 * duplicate the connection they are given): records why attempts fail, hides AUTH's arguments, and
 * tells of a refused setting (onRedisRefusal). */
function watched(redis: Redis): Redis {
  const { password } = redis.options;
  // Also the listener ioredis needs so as not to print every failed reconnect; callers log state
  // changes instead. Added first, so that it runs before any other connection error listener.
  redis.on('error', (error: Error) => {
    const { command } = error as { command?: { name?: string; args?: unknown[] } };
    // ioredis hangs the refused command on the error, and AUTH's arguments are the URL's user and
    // password, which any logger of the error (BullMQ's 'error' events) would write out.
    if (command && /^(auth|hello)$/i.test(command.name ?? '')) command.args = ['(hidden)'];
    const answer = password ? error.message.split(password).join('***') : error.message;
    failures.set(redis, answer);
    if (command?.name?.toLowerCase() === 'select') {
      // ioredis sends SELECT first on each connection, and goes on without it, in database 0: the
      // reply comes in before the ready check's, and a connection closed now sends no other command.
      if (DATABASE_REFUSED.test(answer)) {
        redis.disconnect();
        refused(redis, { kind: 'database', answer, database: String(command.args?.[0] ?? redis.options.db) });
        return;
      }
      // Any other answer to it says nothing of the setting (NOAUTH from a Redis restarted with a
      // password, a full server's max clients, BUSY under a long script): the connection is not in
      // its database, so it is closed and made again, as in an outage; a login refused at start is
      // still the login's refusal (below).
      redis.disconnect(true);
    }
    if (!everReady && LOGIN_REFUSED.test(answer)) {
      refused(redis, { kind: 'login', answer });
    }
  });
  redis.on('ready', () => {
    serviceRan();
    failures.delete(redis);
    connectionRefusals.delete(redis);
    // Before the commands queued meanwhile (ioredis sends them after its 'ready'): a subscriber's
    // SUBSCRIBE would leave this read refused.
    checkEvictionPolicy(redis);
  });
  const duplicate = redis.duplicate.bind(redis);
  const made = new Set<Redis>();
  duplicates.set(redis, made);
  redis.duplicate = (override) => {
    // A template's duplicate connects (createRedisTemplate).
    const copy = watched(duplicate({ lazyConnect: false, ...override }));
    made.add(copy);
    copy.once('end', () => made.delete(copy));
    return copy;
  };
  return redis;
}

/** Disconnects a createRedis connection and those duplicated from it: BullMQ's QueueEvents uses a
 * duplicate of the connection it is given, which its close leaves reconnecting for ever when it
 * gave up waiting for an unreachable Redis. */
export function disconnectWithDuplicates(redis: Redis): void {
  for (const copy of duplicates.get(redis) ?? []) disconnectWithDuplicates(copy);
  redis.disconnect();
}
