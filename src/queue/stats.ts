// Job counters kept in Redis, so that /metrics on any API machine reports every worker's jobs:
// workers add to them when a job ends, the API reads them when scraped.
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';

/** Upper bounds (ms) of the job latency histogram: accepted → finished. */
export const LATENCY_BUCKETS_MS = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000];

export interface JobStats {
  /** Finished jobs by job verdict, plus `failed` for jobs the service could not run. */
  verdicts: Record<string, number>;
  latency: { bucketsMs: number[]; cumulativeCounts: number[]; sumMs: number; count: number };
}

export async function recordJobEnd(redis: Redis, keys: RedisKeys, outcome: string, latencyMs: number): Promise<void> {
  const multi = redis.multi().hincrby(keys.verdictCounts, outcome, 1);
  // Stored per bucket (not cumulative); the reader accumulates.
  const bucket = LATENCY_BUCKETS_MS.find((bound) => latencyMs <= bound);
  multi.hincrby(keys.latencyHistogram, bucket === undefined ? '+Inf' : String(bucket), 1);
  multi.hincrbyfloat(keys.latencyHistogram, 'sum', latencyMs);
  multi.hincrby(keys.latencyHistogram, 'count', 1);
  await multi.exec();
}

export async function readJobStats(redis: Redis, keys: RedisKeys): Promise<JobStats> {
  const [verdictsRaw, latencyRaw] = await Promise.all([redis.hgetall(keys.verdictCounts), redis.hgetall(keys.latencyHistogram)]);
  const verdicts: Record<string, number> = {};
  for (const [verdict, count] of Object.entries(verdictsRaw)) verdicts[verdict] = Number(count);
  let running = 0;
  const cumulativeCounts = LATENCY_BUCKETS_MS.map((bound) => (running += Number(latencyRaw[String(bound)] ?? 0)));
  return {
    verdicts,
    latency: {
      bucketsMs: LATENCY_BUCKETS_MS,
      cumulativeCounts,
      sumMs: Number(latencyRaw.sum ?? 0),
      count: Number(latencyRaw.count ?? 0),
    },
  };
}
