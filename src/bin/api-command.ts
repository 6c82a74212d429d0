// `cellblock api`: the HTTP API alone, against a Redis that workers elsewhere also use.
import type { Logger } from 'pino';
import { buildApp } from '../api/app.js';
import { jobNotifications } from '../api/notifications.js';
import type { Config } from '../config.js';
import { loadRuntimes } from '../images/runtimes.js';
import { BullJobClient } from '../queue/client.js';
import { createRedis } from '../queue/connection.js';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

/** The API could not take its address (in use, not this machine's, not allowed): a setting to
 * change, said in one line. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

export async function runApi(config: Config, redisUrl: string, logger: Logger): Promise<RunningApi> {
  const runtimes = loadRuntimes();
  const jobs = new BullJobClient({
    redisUrl,
    prefix: config.queuePrefix,
    resultTtlSeconds: config.resultTtlSeconds,
    maxQueuedJobs: config.maxQueuedJobs,
    notifications: jobNotifications(runtimes),
    logger,
  });
  // The API starts even while Redis is away: it answers 503 until Redis is back.
  await jobs.ready().catch((error) => logger.warn({ err: error }, 'redis not reachable yet; answering 503 until it is'));
  // Per-key quotas are what a deployment sells, so they hold across API machines (a Redis round
  // trip per request). Without keys the limit only guards against one address flooding this
  // process: counted in memory, at no Redis cost.
  const rateLimitRedis = config.apiKeys.length > 0 ? createRedis(redisUrl, 'producer', 'cellblock-api-ratelimit') : undefined;
  const app = await buildApp({ jobs, runtimes, config, logger, ...(rateLimitRedis ? { rateLimitRedis } : {}) });
  let url: string;
  try {
    url = await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    await jobs.close();
    rateLimitRedis?.disconnect();
    throw new ListenError(`cannot listen on ${config.host}:${config.port} (CELLBLOCK_HOST, CELLBLOCK_PORT): ${(error as Error).message}`);
  }
  logger.info({ url, runtimes: runtimes.map((runtime) => runtime.id) }, 'api listening');
  return {
    url,
    close: async () => {
      await app.close();
      await jobs.close();
      rateLimitRedis?.disconnect();
    },
  };
}
