// GET /metrics in Prometheus' text format. Job counts and latencies come from Redis (every
// worker adds to them), so any API machine reports the whole service; process metrics are this
// API process's own.
import type { FastifyPluginAsync } from 'fastify';
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import { Type } from 'typebox';
import type { LiveSockets } from '../live-socket.js';
import type { JobService } from '../service.js';
import { msToSeconds } from '../../units.js';

/** How long a scrape waits for Redis in all: a scrape is answered (`cellblock_redis_up 0` when
 * Redis has not answered by then: down, frozen, or cut off by the network), not timed out. */
export const METRICS_REDIS_MS = 2000;

/** How often the event loop's lag is sampled for the cellblock_api_nodejs_eventloop_lag_* figures. */
const EVENT_LOOP_SAMPLE_MS = 100;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export const metricsRoutes: FastifyPluginAsync<{ jobs: JobService; liveSockets: LiveSockets }> = async (app, { jobs, liveSockets }) => {
  const registry = new Registry();
  // What Redis says, read anew at each scrape: left out of a scrape that could not read it, so
  // that no graph shows the last figures read as if they held while Redis was away.
  const queueRegistry = new Registry();
  // The event-loop lag figures come from a timer of Node's that samples the loop; at prom-client's
  // default of every 10 ms it woke an idle API 100 times a second (~0.65% of a core here, always).
  collectDefaultMetrics({ register: registry, prefix: 'cellblock_api_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const redisUp = new Gauge({ name: 'cellblock_redis_up', help: '1 when Redis answered this scrape', registers: [registry] });
  new Gauge({
    name: 'cellblock_api_live_sockets',
    help: "Live job sockets open on this API process (/v1/live, Piston's /api/v2/connect)",
    registers: [registry],
    collect() {
      this.set(liveSockets.size);
    },
  });
  const queueJobs = new Gauge({ name: 'cellblock_queue_jobs', help: 'Jobs in the queue by state', labelNames: ['state'], registers: [queueRegistry] });
  const workersAlive = new Gauge({ name: 'cellblock_workers_alive', help: 'Worker processes with a live heartbeat (and, where Redis lists client names, an open connection)', registers: [queueRegistry] });
  const workerSlots = new Gauge({ name: 'cellblock_worker_slots', help: 'Jobs the live workers may run at once', registers: [queueRegistry] });
  const workerRunning = new Gauge({ name: 'cellblock_worker_running_jobs', help: 'Jobs the live workers are running', registers: [queueRegistry] });
  const pool = new Gauge({
    name: 'cellblock_pool',
    help: 'Executor pool figures (ready, inUse, preparing, retiring, hits, misses, ...) summed over live workers',
    labelNames: ['image', 'figure'],
    registers: [queueRegistry],
  });
  const judgeCompiles = new Gauge({
    name: 'cellblock_judge_compiles',
    help: "Judge programs' compiles kept for later jobs (entries, bytes, hits, misses, waits, notKept) summed over live workers",
    labelNames: ['figure'],
    registers: [queueRegistry],
  });

  /** Figures that are stored in Redis as counters and a histogram, written as text by hand. */
  async function jobStatsText(timeoutMs: number): Promise<string> {
    const stats = await jobs.stats(timeoutMs);
    const lines = ['# HELP cellblock_jobs_finished_total Finished jobs by verdict (failed: the service could not run it)', '# TYPE cellblock_jobs_finished_total counter'];
    for (const [verdict, count] of Object.entries(stats.verdicts)) {
      lines.push(`cellblock_jobs_finished_total{verdict="${escapeLabel(verdict)}"} ${count}`);
    }
    lines.push('# HELP cellblock_job_latency_seconds Accepted to finished', '# TYPE cellblock_job_latency_seconds histogram');
    stats.latency.bucketsMs.forEach((boundMs, index) => {
      lines.push(`cellblock_job_latency_seconds_bucket{le="${msToSeconds(boundMs)}"} ${stats.latency.cumulativeCounts[index]}`);
    });
    lines.push(`cellblock_job_latency_seconds_bucket{le="+Inf"} ${stats.latency.count}`);
    lines.push(`cellblock_job_latency_seconds_sum ${msToSeconds(stats.latency.sumMs)}`);
    lines.push(`cellblock_job_latency_seconds_count ${stats.latency.count}`);
    return `${lines.join('\n')}\n`;
  }

  const document = { responses: { 200: { description: "Prometheus' text format (README, GET /metrics)", mediaType: 'text/plain', schema: Type.String() } } };
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['service'] }, config: { openapi: document } }, async (_request, reply) => {
    let statsText = '';
    const deadline = Date.now() + METRICS_REDIS_MS;
    const leftMs = () => Math.max(1, deadline - Date.now());
    try {
      const [counts, workers] = await Promise.all([jobs.counts(leftMs()), jobs.liveWorkers(leftMs())]);
      for (const [state, count] of Object.entries(counts)) queueJobs.set({ state }, count);
      workersAlive.set(workers.length);
      workerSlots.set(workers.reduce((sum, worker) => sum + worker.concurrency, 0));
      workerRunning.set(workers.reduce((sum, worker) => sum + worker.running, 0));
      pool.reset();
      judgeCompiles.reset();
      for (const worker of workers) {
        for (const [image, figures] of Object.entries(worker.pool ?? {})) {
          for (const [figure, value] of Object.entries(figures)) pool.inc({ image, figure }, value);
        }
        for (const [figure, value] of Object.entries(worker.judgeCompiles ?? {})) judgeCompiles.inc({ figure }, value);
      }
      statsText = (await queueRegistry.metrics()) + (await jobStatsText(leftMs()));
      redisUp.set(1);
    } catch {
      redisUp.set(0);
    }
    reply.header('content-type', registry.contentType);
    return (await registry.metrics()) + statsText;
  });
};
