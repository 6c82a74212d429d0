// Queue drain: many jobs queued at once through POST /v1/jobs/batch, then waited for until the
// queue is empty; every accepted job is then read back and checked (none lost, every one right),
// and the worker's resident memory is sampled on the way (before, at half, at the end, peak).
import { presentResult } from '../../src/api/present.js';
import { BullJobClient } from '../../src/queue/client.js';
import { msToSeconds } from '../../src/units.js';
import type { JobSpec } from './scenarios.js';
import type { Stack } from './stack.js';

export interface DrainReport {
  jobs: number;
  submitMs: number;
  /** First submit → queue empty. */
  drainMs: number;
  throughputPerSecond: number;
  /** Accepted jobs that could not be read back, or not finished. */
  lost: number;
  /** Finished jobs whose result was wrong: the first few reasons. */
  wrong: number;
  problems: string[];
  workerRssBytes: { before: number; half: number; after: number; peak: number };
  apiRssBytes: { before: number; after: number };
}

const BATCH = 100;
const PARALLEL_BATCHES = 4;
const POLL_MS = 250;
const READ_PARALLEL = 50;

async function submitAll(url: string, job: JobSpec, count: number): Promise<string[]> {
  const ids: string[] = [];
  const batches = Math.ceil(count / BATCH);
  let next = 0;
  const sendBatches = async () => {
    while (next < batches) {
      const index = next++;
      const size = Math.min(BATCH, count - index * BATCH);
      const response = await fetch(`${url}/v1/jobs/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs: Array(size).fill(job.body) }),
      });
      const body = (await response.json()) as { jobs?: { id: string }[] };
      if (response.status !== 202 || !body.jobs) throw new Error(`batch ${index}: HTTP ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
      ids.push(...body.jobs.map((accepted) => accepted.id));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_BATCHES }, sendBatches));
  return ids;
}

export async function drain(stack: Stack, job: JobSpec, count: number): Promise<DrainReport> {
  const client = new BullJobClient({ redisUrl: stack.redisUrl, prefix: stack.queuePrefix, resultTtlSeconds: 3600, maxQueuedJobs: Infinity });
  try {
    await client.ready();
    const workerBefore = stack.rssBytes(stack.workerPid);
    const apiBefore = stack.rssBytes(stack.apiPid);
    let peak = workerBefore;
    let half = NaN;
    const started = performance.now();
    const ids = await submitAll(stack.url, job, count);
    const submitMs = performance.now() - started;
    for (;;) {
      const rss = stack.rssBytes(stack.workerPid);
      peak = Math.max(peak, rss);
      const counts = await client.counts();
      const left = counts.waiting + counts.active + counts.delayed + counts.prioritized;
      if (Number.isNaN(half) && left <= count / 2) half = rss;
      if (left === 0) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const drainMs = performance.now() - started;
    const workerAfter = stack.rssBytes(stack.workerPid);

    let lost = 0;
    let wrong = 0;
    const problems: string[] = [];
    for (let offset = 0; offset < ids.length; offset += READ_PARALLEL) {
      const records = await Promise.all(ids.slice(offset, offset + READ_PARALLEL).map((id) => client.get(id)));
      for (const record of records) {
        if (!record || record.status !== 'done' || !record.result) {
          lost++;
          if (problems.length < 5) problems.push(record ? `job ${record.id} ${record.status}` : 'job not found');
          continue;
        }
        const problem = job.check(presentResult(record.result, 'utf8'));
        if (problem) {
          wrong++;
          if (problems.length < 5) problems.push(`job ${record.id}: ${problem}`);
        }
      }
    }
    return {
      jobs: ids.length,
      submitMs,
      drainMs,
      throughputPerSecond: ids.length / msToSeconds(drainMs),
      lost: lost + (count - ids.length),
      wrong,
      problems,
      workerRssBytes: { before: workerBefore, half, after: workerAfter, peak },
      apiRssBytes: { before: apiBefore, after: stack.rssBytes(stack.apiPid) },
    };
  } finally {
    await client.close();
  }
}
