// ioredis connections, configured by what they are for. BullMQ needs `maxRetriesPerRequest: null`
// on connections that block (workers, queue events) so a Redis restart is waited out; the API's
// producer connection instead fails fast (`enableOfflineQueue: false`) so that an HTTP request
// answers 503 at once rather than hanging until Redis returns (BullMQ's "failing fast" pattern).
import { Redis, type RedisOptions } from 'ioredis';

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
  const options: RedisOptions = {
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
  return watched(new Redis(url, options));
}

/** A setting Redis refused, in its own words (`answer`): `database`, the database the URL names
 * (SELECT: a number past its `databases`, any but 0 on a cluster); `login`, the URL's user and
 * password (WRONGPASS), or none where Redis wants one (NOAUTH), while no connection of this process
 * has yet been ready: a setting to change, not an outage. (A login refused later, Redis restarted
 * with other credentials, is retried as an outage is.) */
export interface RedisRefusal {
  kind: 'database' | 'login';
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
/** Whether any connection of this process has been ready. */
let everReady = false;

/** Calls `listener` with the first refusal of any connection of this process (every createRedis
 * connection, and those BullMQ duplicates from them): synchronously, before the commands the
 * refusal fails are told of it, or at once if it came already. The commands stop on it (src/bin).
 * A connection whose database was refused is closed before it sends a command; one whose login was
 * refused goes on trying, as ioredis does. */
export function onRedisRefusal(listener: (refusal: RedisRefusal) => void): void {
  if (refusal) listener(refusal);
  else refusalListeners.add(listener);
}

function refused(what: RedisRefusal): void {
  if (refusal) return;
  refusal = what;
  for (const listener of refusalListeners) listener(what);
  refusalListeners.clear();
}

/** The connections duplicated from each (disconnectWithDuplicates). */
const duplicates = new WeakMap<Redis, Set<Redis>>();

/** Each connection's last failure (connectionFailure), until it is ready again. */
const failures = new WeakMap<Redis, string>();

/** Why the connection's attempts have failed since it was last ready (ECONNREFUSED, WRONGPASS or
 * NOAUTH from Redis, a TLS handshake's failure), for a log line; undefined when none has. Holds no
 * credential: the URL's password is blanked out of it. */
export function connectionFailure(redis: Redis): string | undefined {
  return failures.get(redis);
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
        refused({ kind: 'database', answer, database: String(command.args?.[0] ?? redis.options.db) });
        return;
      }
      // Any other answer to it says nothing of the setting (NOAUTH from a Redis restarted with a
      // password, a full server's max clients, BUSY under a long script): the connection is not in
      // its database, so it is closed and made again, as in an outage; a login refused at start is
      // still the login's refusal (below).
      redis.disconnect(true);
    }
    if (!everReady && LOGIN_REFUSED.test(answer)) {
      refused({ kind: 'login', answer });
    }
  });
  redis.on('ready', () => {
    everReady = true;
    failures.delete(redis);
  });
  const duplicate = redis.duplicate.bind(redis);
  const made = new Set<Redis>();
  duplicates.set(redis, made);
  redis.duplicate = (override) => {
    const copy = watched(duplicate(override));
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
