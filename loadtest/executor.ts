// The sandbox's own ceiling for a closed loop: jobs through the executor alone (pool, engine,
// files, result; no HTTP, Redis or BullMQ), as many at once as a worker runs by default, against
// the same program run bare in one loop per core, in alternating rounds. Whatever the service
// around it costs, its closed-loop throughput cannot pass this one (issue 7's python hello
// target is 85% of bare). Prints each round's jobs/s and the CPU per job: the executor's process
// (Node and the engine's supervisor threads: cgroups, the containers' clones), the containers'
// processes it reaped (init, the program), its live descendants (the pool's mount agent), and the
// whole machine (kernel threads included: the namespaces' teardown). Not a test: figures only.
//
// With --gap-ms, sporadic instead: one job at a time after an idle gap, against the bare program
// one at a time after the same gap, in turns of three a gap apart (the first dropped), the two
// sides taking turns and each turn starting once the pool's upkeep of the last is done
// (loadtest/turns.ts), so that both sides see the same host: on these VMs its speed drifts by
// more than the difference under test within a minute, which rounds of a side each misread. Per
// round, p50 of the job's time in execute(), of its programs' own wall time (compile + run, from
// "go" to exit), and of the difference: the executor's own time on a job's path (pool take,
// files, starting and reading each stage); then the p50 of the programs' CPU time on either side
// (the runs' cgroups; the bare runner's wait4), which tells a program that worked longer in its
// container from one that waited longer there.
//
//   npm run bench:executor -- [--scenario 'python hello'|'c true'|'java hello' ...] [--rounds N] [--jobs N] [--gap-ms MS]
//
// CELLBLOCK_WORKER_CONCURRENCY sets how many jobs run at once, as for the worker.
//
// Needs root and the chosen scenarios' images built in the data dir (python and gcc; java for
// java hello; cellblock images build).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createExecutor } from '../src/executor/create.js';
import type { Executor } from '../src/executor/executor.js';
import type { ExecuteRequest, ExecuteResult } from '../src/executor/types.js';
import { loadRuntimes } from '../src/images/runtimes.js';
import { createBareRunner, type BareRunner } from './service/bare.js';
import { cpuMsByTree, cpuMsDifference, machineBusyMs } from './service/cpu.js';
import { hostNote, loadAverage } from './service/host.js';
import { runInterruptible } from './service/interrupt.js';
import { scenarios, type Scenario } from './service/scenarios.js';
import { distribution } from './service/stats.js';
import { bareTurn, RUNS_PER_TURN, SAMPLES_PER_TURN, SETTLE_MS, settled, timedTurn } from './turns.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '3' },
    /** Jobs per executor round (600; 100 with --gap-ms); the bare rounds run as many, spread
     * over one loop per core. */
    jobs: { type: 'string' },
    /** > 0: sporadic rounds, one job at a time after this long idle, the sides taking turns. */
    'gap-ms': { type: 'string', default: '0' },
  },
});
const rounds = Number(values.rounds);
const gapMs = Number(values['gap-ms']);
const jobsPerRound = values.jobs !== undefined ? Number(values.jobs) : gapMs > 0 ? 100 : 600;
const names = values.scenario ?? ['python hello', 'c true'];
/** The load test's scenarios whose jobs are all benign (the hostile mix has no single program). */
const benignScenarios = scenarios.filter((s) => s.jobs.every((job) => job.kind === 'benign'));
const chosen: Scenario[] = names.map((name) => {
  const scenario = benignScenarios.find((s) => s.name === name);
  if (!scenario) {
    console.error(`no benign scenario ${JSON.stringify(name)}: one of ${benignScenarios.map((s) => JSON.stringify(s.name)).join(', ')}`);
    process.exit(2);
  }
  return scenario;
});

const runtimes = new Map(loadRuntimes().map((runtime) => [runtime.id, runtime]));

/** The scenario's /v1 submission as the worker hands it to the executor. */
function executeRequest(scenario: Scenario): ExecuteRequest {
  const body = scenario.jobs[0]!.body as { language: string; source: string };
  const runtime = runtimes.get(body.language);
  if (!runtime) throw new Error(`no runtime ${body.language}`);
  return { runtimeId: runtime.id, files: [{ name: runtime.sourceFile, content: Buffer.from(body.source) }] };
}

interface Round {
  jobsPerSecond: number;
  cpuMsPerJob: { own: number; reaped: number; descendants: number; machine: number };
}

const perJob = (ms: number, jobs: number) => ms / jobs;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Check = Scenario['jobs'][0]['check'];

/** The result, once the scenario's check found it right; throws otherwise. */
function checked(result: ExecuteResult, check: Check): ExecuteResult {
  const wrong = check({
    verdict: result.verdict,
    stdout: (result.run?.stdout ?? Buffer.alloc(0)).toString(),
    metrics: { ...(result.run?.metrics ?? { cpuTimeMs: 0, wallTimeMs: 0, peakMemoryBytes: 0 }), queueWaitMs: 0 },
  });
  if (wrong) throw new Error(`wrong result: ${wrong}`);
  return result;
}

/** Both sides of a round, bare first in odd rounds and second in even ones. */
async function inTurn<B, E>(round: number, runBare: () => Promise<B>, runExecutor: () => Promise<E>): Promise<[B, E]> {
  if (round % 2 === 1) {
    const bareSide = await runBare();
    return [bareSide, await runExecutor()];
  }
  const executorSide = await runExecutor();
  return [await runBare(), executorSide];
}

async function executorRound(executor: Executor, request: ExecuteRequest, check: Check, concurrency: number): Promise<Round> {
  let started = 0;
  const before = cpuMsByTree({ self: process.pid }).self!;
  const machineBefore = machineBusyMs();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < jobsPerRound) {
        started++;
        checked(await executor.execute(request), check);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const used = cpuMsDifference({ self: before }, { self: cpuMsByTree({ self: process.pid }).self! }).self!;
  return {
    jobsPerSecond: jobsPerRound / seconds,
    cpuMsPerJob: {
      own: perJob(used.ownMs, jobsPerRound),
      reaped: perJob(used.reapedMs, jobsPerRound),
      descendants: perJob(used.liveDescendantsMs, jobsPerRound),
      machine: perJob(machineBusyMs() - machineBefore, jobsPerRound),
    },
  };
}

/** One job's figures on the executor's side of a sporadic round. */
interface ExecutorJob {
  executeMs: number;
  programsMs: number;
  programsCpuMs: number;
}

/** One turn of the executor's side: RUNS_PER_TURN jobs a gap apart, the first dropped. */
async function executorTurn(executor: Executor, request: ExecuteRequest, check: Check): Promise<ExecutorJob[]> {
  const jobs: ExecutorJob[] = [];
  await timedTurn(gapMs, async () => {
    const start = performance.now();
    const result = checked(await executor.execute(request), check);
    const executeMs = performance.now() - start;
    const stagesMs = (metric: 'wallTimeMs' | 'cpuTimeMs') => (result.compile?.metrics[metric] ?? 0) + (result.run?.metrics[metric] ?? 0);
    jobs.push({ executeMs, programsMs: stagesMs('wallTimeMs'), programsCpuMs: stagesMs('cpuTimeMs') });
    return executeMs;
  });
  return jobs.slice(1);
}

async function sporadic(executor: Executor, bare: BareRunner, scenario: Scenario): Promise<void> {
  const request = executeRequest(scenario);
  const check = scenario.jobs[0]!.check;
  const turns = Math.ceil(jobsPerRound / SAMPLES_PER_TURN);
  console.log(`${turns * SAMPLES_PER_TURN} jobs a side per round, in turns of ${RUNS_PER_TURN} (the first dropped), the sides alternating`);
  console.log('round  bare p50 ms  executor p50 ms  executor - bare  | of the executor: programs p50  own p50 | CPU p50 ms: bare  programs');
  const owns: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const bareMs: number[] = [];
    const bareCpuMs: number[] = [];
    const jobs: ExecutorJob[] = [];
    const takeBareTurn = async () => {
      const turn = await bareTurn(bare, scenario.bare, gapMs);
      if (turn.failures > 0) throw new Error(`bare ${scenario.name}: ${turn.failures} runs failed`);
      bareMs.push(...turn.latenciesMs);
      bareCpuMs.push(...turn.cpuMs);
    };
    const takeExecutorTurn = async () => {
      jobs.push(...(await executorTurn(executor, request, check)));
    };
    for (let turn = 0; turn < turns; turn++) {
      for (const side of (round + turn) % 2 === 0 ? [takeBareTurn, takeExecutorTurn] : [takeExecutorTurn, takeBareTurn]) {
        await settled([executor]);
        await sleep(Math.max(gapMs, SETTLE_MS));
        await side();
      }
    }
    const p50 = (values: number[]) => distribution(values).p50;
    const [bareMsP50, executeMsP50] = [p50(bareMs), p50(jobs.map((j) => j.executeMs))];
    const ownMsP50 = p50(jobs.map((j) => j.executeMs - j.programsMs));
    owns.push(ownMsP50);
    console.log(
      `${String(round).padStart(5)}  ${bareMsP50.toFixed(2).padStart(11)}  ${executeMsP50.toFixed(2).padStart(15)}  ${(executeMsP50 - bareMsP50).toFixed(2).padStart(14)}  |  ${p50(jobs.map((j) => j.programsMs)).toFixed(2).padStart(28)}  ${ownMsP50.toFixed(3).padStart(7)} | ${p50(bareCpuMs).toFixed(2).padStart(15)}  ${p50(jobs.map((j) => j.programsCpuMs)).toFixed(2).padStart(8)}`,
    );
  }
  console.log(`median of the executor's own p50: ${distribution(owns).p50.toFixed(3)} ms`);
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const concurrency = config.workerConcurrency;
  const cores = os.cpus().length;
  const bare = await createBareRunner(config.dataDir);
  let executor: Executor | undefined;
  let closed = false;
  const close = async (): Promise<void> => {
    closed = true;
    await executor?.close();
    bare.close();
  };
  await runInterruptible('bench:executor', async () => {
    // The pool keeps its state where a worker's does (<data dir>/pool, an owner dir of its own),
    // so that whatever a run killed outright leaves there is reclaimed by the next executor's start.
    executor = await createExecutor({
      dataDir: config.dataDir,
      pool: {
        sizing: { minReady: Math.min(1, config.poolMaxReady), maxReady: config.poolMaxReady },
        refillConcurrency: config.poolRefillConcurrency,
      },
      backgroundAfterCpuMs: config.backgroundAfterCpuMs,
      onBackgroundError: (err, image) => console.error(`pool ${image}:`, err),
    });
    if (closed) await close(); // interrupted while it started
    if (gapMs > 0) {
      console.log(`# cellblock executor, sporadic: ${hostNote()}`);
      console.log(`# one job at a time after ${gapMs} ms idle, each side in turn; pool maxReady ${config.poolMaxReady}`);
    } else {
      console.log(`# cellblock executor closed loop: ${hostNote()}`);
      console.log(`# executor: ${concurrency} jobs at once (the worker's, CELLBLOCK_WORKER_CONCURRENCY${process.env.CELLBLOCK_WORKER_CONCURRENCY ? '' : ' unset: its default'}), pool maxReady ${config.poolMaxReady}; bare: one loop per core; ${jobsPerRound} jobs per round on either side`);
    }
    const running = executor;
    for (const scenario of chosen) {
      const request = executeRequest(scenario);
      const check = scenario.jobs[0]!.check;
      // Warm the pool and the caches: one executor round's worth at a tenth of the size.
      for (let i = 0; i < Math.max(20, jobsPerRound / 10); i++) await executor.execute(request);
      console.log(`\n## ${scenario.name}`);
      if (gapMs > 0) {
        await sporadic(executor, bare, scenario);
        continue;
      }
      console.log('round  bare jobs/s  executor jobs/s  executor/bare  | executor CPU per job, ms: process  reaped (init, program)  mount agent  machine | bare machine');
      const ratios: number[] = [];
      for (let round = 1; round <= rounds; round++) {
        const runBare = async () => {
          const machineBefore = machineBusyMs();
          const run = await bare.run(scenario.bare, { runs: jobsPerRound, loops: cores, gapMs: 0 });
          if (run.failures > 0) throw new Error(`bare ${scenario.name}: ${run.failures} runs failed`);
          return { jobsPerSecond: run.throughputPerSecond, machineMsPerJob: perJob(machineBusyMs() - machineBefore, run.latenciesMs.length) };
        };
        const [bareRound, executorResult] = await inTurn(round, runBare, () => executorRound(running, request, check, concurrency));
        const ratio = executorResult.jobsPerSecond / bareRound.jobsPerSecond;
        ratios.push(ratio);
        const c = executorResult.cpuMsPerJob;
        console.log(
          `${String(round).padStart(5)}  ${bareRound.jobsPerSecond.toFixed(1).padStart(11)}  ${executorResult.jobsPerSecond.toFixed(1).padStart(15)}  ${`${(ratio * 100).toFixed(0)}%`.padStart(13)}  |  ${c.own.toFixed(2).padStart(31)}  ${c.reaped.toFixed(2).padStart(22)}  ${c.descendants.toFixed(2).padStart(11)}  ${c.machine.toFixed(2).padStart(7)} | ${bareRound.machineMsPerJob.toFixed(2).padStart(12)}`,
        );
      }
      const sorted = [...ratios].sort((a, b) => a - b);
      console.log(`median executor/bare: ${(sorted[Math.floor(sorted.length / 2)]! * 100).toFixed(0)}%`);
    }
    console.log(`\n(load at the end ${loadAverage()})`);
  }, close);
}

await main();
