// The service side: a scenario's jobs sent with autocannon as POST /v1/jobs?wait=true (one HTTP
// request = submit → result), either as a closed loop (a fixed number of connections, each
// sending its next job as soon as the last one answered: the most the service sustains), or at a
// fixed arrival rate with idle gaps (sporadic traffic).
//
// autocannon's rate limit is per second and bursty (a connection sends its `connectionRate`
// requests back to back, then waits for the next second), so an evenly spaced arrival rate of R
// jobs/s is R autocannon instances, each one connection at 1 request/s, started 1000/R ms apart.
// Latencies are autocannon's per-request times (taken from its 'response' event, unrounded), with
// coordinated-omission correction off: every sample is a real request.
import autocannon from 'autocannon';
import { msToSeconds } from '../../src/units.js';
import type { JobSpec, ResultView, Scenario } from './scenarios.js';

export interface JobSample {
  label: string;
  kind: JobSpec['kind'];
  /** Request sent → response read, at the client. */
  latencyMs: number;
  /** Why the job's result was wrong (or the request failed), undefined when right. */
  problem?: string;
  verdict?: string;
  queueWaitMs?: number;
  /** metrics.wallTimeMs: the program's own time in the sandbox, compile included. */
  sandboxWallMs?: number;
  sandboxCpuMs?: number;
  /** Where the end-to-end time went, from the job's timestamps (1 ms resolution, same clock):
   * client → accepted, accepted → taken by a worker, taken → finished, finished → client. */
  phases?: { submitMs: number; queueMs: number; workerMs: number; replyMs: number };
}

export interface ServiceRun {
  samples: JobSample[];
  elapsedMs: number;
  /** Finished jobs per second over the run. */
  throughputPerSecond: number;
  /** Transport errors and timeouts seen by autocannon. */
  errors: number;
}

interface JobView {
  status: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  result?: ResultView;
}

const REQUEST_TIMEOUT_SECONDS = 120;

/** What onResponse learns from the body; the latency comes a moment later from the 'response' event. */
interface PendingSample extends Omit<JobSample, 'latencyMs' | 'phases'> {
  /** Epoch ms: accepted, taken, finished (from the job), and read (here). */
  times?: { createdAt: number; startedAt: number; finishedAt: number; receivedAt: number };
}

/** One request whose job is the scenario's next, across every connection of the instance, so
 * that a mix keeps its proportions however few jobs each connection sends. The job a connection
 * sent is kept in its autocannon context until the response comes back. */
function requests(scenario: Scenario, onPending: (sample: PendingSample) => void) {
  const bodies = scenario.jobs.map((job) => JSON.stringify(job.body));
  let next = 0;
  return [
    {
      method: 'POST' as const,
      path: '/v1/jobs?wait=true',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request: autocannon.Request, context: Record<string, unknown>) => {
        const index = next++ % scenario.jobs.length;
        context.jobIndex = index;
        return { ...request, body: bodies[index] };
      },
      onResponse: (status: number, body: string, context: Record<string, unknown>) => {
        onPending(pendingSample(scenario.jobs[context.jobIndex as number]!, status, body));
      },
    },
  ];
}

function pendingSample(job: JobSpec, status: number, body: string): PendingSample {
  const receivedAt = Date.now();
  const base = { label: job.label, kind: job.kind };
  if (status !== 200) return { ...base, problem: `HTTP ${status}: ${body.slice(0, 200)}` };
  const view = JSON.parse(body) as JobView;
  if (view.status !== 'done' || !view.result) return { ...base, problem: `job ${view.status}` };
  const result = view.result;
  const problem = job.check(result);
  const createdAt = Date.parse(view.createdAt);
  const startedAt = view.startedAt ? Date.parse(view.startedAt) : createdAt;
  const finishedAt = view.finishedAt ? Date.parse(view.finishedAt) : startedAt;
  return {
    ...base,
    ...(problem ? { problem } : {}),
    verdict: result.verdict,
    queueWaitMs: result.metrics.queueWaitMs,
    sandboxWallMs: result.metrics.wallTimeMs,
    sandboxCpuMs: result.metrics.cpuTimeMs,
    times: { createdAt, startedAt, finishedAt, receivedAt },
  };
}

function toSample({ times, ...pending }: PendingSample, latencyMs: number): JobSample {
  if (!times) return { ...pending, latencyMs };
  const sentAt = times.receivedAt - latencyMs;
  return {
    ...pending,
    latencyMs,
    phases: {
      submitMs: times.createdAt - sentAt,
      queueMs: times.startedAt - times.createdAt,
      workerMs: times.finishedAt - times.startedAt,
      replyMs: times.receivedAt - times.finishedAt,
    },
  };
}

interface InstanceRun {
  samples: JobSample[];
  errors: number;
  /** performance.now() at the start, and at the last response (autocannon itself reports up to
   * a sampling interval later). */
  startedAt: number;
  lastResponseAt: number;
}

/** One autocannon instance; resolves with its samples when `amount` requests have answered. */
function runInstance(
  url: string,
  scenario: Scenario,
  options: { connections: number; amount: number; connectionRate?: number },
): Promise<InstanceRun> {
  const samples: JobSample[] = [];
  let pending: PendingSample | undefined;
  const startedAt = performance.now();
  let lastResponseAt = startedAt;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: options.connections,
        amount: options.amount,
        timeout: REQUEST_TIMEOUT_SECONDS,
        ...(options.connectionRate ? { connectionRate: options.connectionRate, ignoreCoordinatedOmission: true } : {}),
        requests: requests(scenario, (sample) => {
          pending = sample;
        }),
      },
      (error, result) => {
        if (error) reject(error);
        else resolve({ samples, errors: result.errors + result.timeouts, startedAt, lastResponseAt });
      },
    );
    // autocannon calls the request's onResponse, then emits 'response' for the same response, in
    // one tick: the pending sample is this response's.
    instance.on('response', (_client: unknown, _status: number, _bytes: number, latencyMs: number) => {
      lastResponseAt = performance.now();
      if (!pending) return;
      samples.push(toSample(pending, latencyMs));
      pending = undefined;
    });
  });
}

function serviceRun(runs: InstanceRun[]): ServiceRun {
  const samples = runs.flatMap((run) => run.samples);
  const elapsedMs = Math.max(...runs.map((run) => run.lastResponseAt)) - Math.min(...runs.map((run) => run.startedAt));
  return {
    samples,
    elapsedMs,
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    throughputPerSecond: samples.length / msToSeconds(elapsedMs),
  };
}

export async function closedLoop(url: string, scenario: Scenario, options: { connections: number; amount: number }): Promise<ServiceRun> {
  return serviceRun([await runInstance(url, scenario, options)]);
}

export async function fixedRate(url: string, scenario: Scenario, options: { ratePerSecond: number; amount: number }): Promise<ServiceRun> {
  const instances = Math.max(1, Math.round(options.ratePerSecond));
  const perInstance = Math.max(1, Math.round(options.amount / instances));
  const runs = await Promise.all(
    Array.from({ length: instances }, async (_, index) => {
      await new Promise((resolve) => setTimeout(resolve, (index * 1000) / instances));
      // Each instance starts its job sequence at a different point, so the mix is spread evenly.
      const rotated = { ...scenario, jobs: rotate(scenario.jobs, Math.floor((index * scenario.jobs.length) / instances)) };
      return runInstance(url, rotated, { connections: 1, amount: perInstance, connectionRate: 1 });
    }),
  );
  return serviceRun(runs);
}

function rotate<T>(items: T[], by: number): T[] {
  return [...items.slice(by), ...items.slice(0, by)];
}
