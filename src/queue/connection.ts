// ioredis connections, configured by what they are for. BullMQ needs `maxRetriesPerRequest: null`
// on connections that block (workers, queue events) so a Redis restart is waited out; the API's
// producer connection instead fails fast (`enableOfflineQueue: false`) so that an HTTP request
// answers 503 at once rather than hanging until Redis returns (BullMQ's "failing fast" pattern).
import { Redis, type RedisOptions } from 'ioredis';

export type ConnectionRole = 'producer' | 'blocking';

/** Longest a producer's command may go unanswered before it fails (the API then answers 503). */
export const PRODUCER_COMMAND_TIMEOUT_MS = 5000;

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
  const redis = new Redis(url, options);
  // Without a listener ioredis prints every failed reconnect; callers log state changes instead.
  redis.on('error', () => {});
  return redis;
}
