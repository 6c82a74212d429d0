// `cellblock api`: the HTTP API alone, against a Redis that workers elsewhere also use.
import { isIPv6, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApp } from '../api/app.js';
import { jobNotifications } from '../api/notifications.js';
import type { Config } from '../config.js';
import { loadRuntimes } from '../images/runtimes.js';
import type { Runtime } from '../images/types.js';
import { BullJobClient } from '../queue/client.js';
import { createRedis, evictionPolicyRead } from '../queue/connection.js';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

/** The API could not take its address (in use, not this machine's, not allowed): a setting to
 * change, said in one line. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** The longest the API waits for Redis's first answer before it listens (firstContact). */
const REDIS_FIRST_CONTACT_MS = 500;

/** The URL the API listens at, as CELLBLOCK_HOST names its address: fastify's own answer, for an
 * address of every interface (0.0.0.0, ::), names the first interface's (127.0.0.1), which says
 * the API is on loopback alone when it serves every machine. */
function listeningUrl(host: string, port: number): string {
  return `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** `runtimes`: this checkout's, as the command read them once to check its settings against them
 * (loadRuntimes, read here when not given). */
export async function runApi(config: Config, redisUrl: string, logger: Logger, runtimes: Runtime[] = loadRuntimes()): Promise<RunningApi> {
  const jobs = new BullJobClient({
    redisUrl,
    prefix: config.queuePrefix,
    resultTtlSeconds: config.resultTtlSeconds,
    maxQueuedJobs: config.maxQueuedJobs,
    notifications: jobNotifications(runtimes),
    logger,
  });
  // Per-key quotas are what a deployment sells, so they hold across API machines (a Redis round
  // trip per request). Without keys the limit only guards against one address flooding this
  // process: counted in memory, at no Redis cost.
  const rateLimitRedis = config.apiKeys.length > 0 ? createRedis(redisUrl, 'producer', 'cellblock-api-ratelimit') : undefined;
  const app = await buildApp({ jobs, runtimes, config, logger, ...(rateLimitRedis ? { rateLimitRedis } : {}) });
  // The API listens even while Redis is away, answering 503 until it is back; but not before Redis
  // has had its chance to answer (it usually has, while the app was built), so that a Redis that is
  // there is ready for the first request (its job's end heard as an event, not at a wait's poll),
  // and one that is not (a connection refused: at once) gets 503 from the start, not a closed port.
  const redisReady = await jobs.firstContact(REDIS_FIRST_CONTACT_MS);
  // Nor before it has read Redis's eviction policy (one round trip), which an evicting Redis fails
  // (the process stops: src/bin): no job is taken into a Redis that may drop it.
  if (redisReady) await evictionPolicyRead(REDIS_FIRST_CONTACT_MS);
  let url: string;
  try {
    await app.listen({ host: config.host, port: config.port });
    url = listeningUrl(config.host, (app.server.address() as AddressInfo).port);
  } catch (error) {
    await app.close();
    await jobs.close();
    rateLimitRedis?.disconnect();
    throw new ListenError(`cannot listen on ${config.host}:${config.port} (CELLBLOCK_HOST, CELLBLOCK_PORT): ${(error as Error).message}`);
  }
  logger.info({ url, runtimes: runtimes.map((runtime) => runtime.id) }, 'api listening');
  // Redis neither answered nor failed by now, or failed: said once, with why, unless it answers
  // first (warnUntilReady).
  if (!redisReady) jobs.warnUntilReady(logger, 'redis not reachable yet; answering 503 until it is');
  return {
    url,
    close: async () => {
      await app.close();
      await jobs.close();
      rateLimitRedis?.disconnect();
    },
  };
}
