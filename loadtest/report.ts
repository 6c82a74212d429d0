// The load test and performance report (issue 7): every scenario through the real service (private
// redis-server, `cellblock api`, `cellblock worker`), each beside the same program run bare on the
// same cores in the same run, as a closed loop and at a fixed arrival rate with idle gaps; then a
// queue drain. Prints the tables and the targets, measured. Scenarios marked onlyWhenNamed
// (scenarios.ts: java hello) run only when --scenario names them.
//
//   npm run loadtest [-- --quick] [-- --scenario NAME] [-- --mode closed|sporadic] [-- --sporadic-jobs N]
//                    [-- --no-drain] [-- --json FILE] [-- --cpu-prof DIR]
//
// Needs root, the chosen scenarios' images built (the default report: gcc, python and base; java
// hello: java; cellblock images build ...), redis-server and gcc (scripts/setup.sh).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { defaultWorkerConcurrency } from '../src/config.js';
import { dataDirFromEnv } from '../src/images/paths.js';
import { loadRuntimeRegistry } from '../src/images/runtimes.js';
import { openImageStore } from '../src/images/store.js';
import { REDIS_APPEND_FSYNC_POLICIES } from '../src/queue/redis-server.js';
import { detectCgroupLayout } from '../src/sandbox/cgroups/detect.js';
import { bytesToMiB, msToSeconds, usToMs } from '../src/units.js';
import { createBareRunner, type BareRun, type BareRunner } from './service/bare.js';
import { cpuMsByTree, cpuMsDifference, machineBusyMs, reapedChildrenMs } from './service/cpu.js';
import { drain, type DrainReport } from './service/drain.js';
import { closedLoop, fixedRate, type JobSample, type ServiceRun } from './service/drive.js';
import { drainJob, scenarios, type Scenario } from './service/scenarios.js';
import { loadAverage, pageFaultNote } from './service/host.js';
import { runInterruptible } from './service/interrupt.js';
import { POOL_FIGURES_LAG_MS, poolTakes, startStack, type Stack, type StackOptions } from './service/stack.js';
import { bootstrapInterval, distribution, median, type Distribution, type Interval } from './service/stats.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    'no-drain': { type: 'boolean', default: false },
    'drain-jobs': { type: 'string' },
    /** Only this mode (closed or sporadic); both by default. */
    mode: { type: 'string', multiple: true },
    /** Jobs per sporadic run (default 20 with --quick, 200 without): with 80, a run's p99 was its
     * slowest job, so that one slow job of a run decided the hostile mix's p99 target. */
    'sporadic-jobs': { type: 'string' },
    json: { type: 'string' },
    /** Write V8 CPU profiles of the API and worker processes into this directory (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
    // Service settings to compare against the defaults (what a knob costs or buys).
    'worker-concurrency': { type: 'string' },
    'log-level': { type: 'string' },
    'redis-fsync': { type: 'string' },
  },
});

/** How much of each scenario to run; the full report stays under ~10 minutes on 2 cores. */
const SIZES = values.quick
  ? { closedJobs: { 'c true': 60, 'python hello': 120, 'python cpu 100ms': 30, 'hostile mix 10%': 60, 'java hello': 48 }, sporadicJobs: 20, drainJobs: 1000 }
  : { closedJobs: { 'c true': 300, 'python hello': 600, 'python cpu 100ms': 150, 'hostile mix 10%': 300, 'java hello': 120 }, sporadicJobs: 200, drainJobs: 10_000 };
if (values['sporadic-jobs']) SIZES.sporadicJobs = Number(values['sporadic-jobs']);
/** The worker's slots: the service's own default (CELLBLOCK_WORKER_CONCURRENCY) unless overridden. */
const WORKER_SLOTS = values['worker-concurrency'] ? Number(values['worker-concurrency']) : defaultWorkerConcurrency();
/** Connections of the closed loop: twice the worker's slots, so that a job is always queued. */
const CLOSED_CONNECTIONS = 2 * WORKER_SLOTS;
/** Bare loops of the closed loop: one per core, all the bare program can use. */
const BARE_LOOPS = Math.max(2, os.availableParallelism());
/** Sporadic arrivals per second: one every 250 ms, well apart from each other. */
const SPORADIC_RATE_PER_SECOND = 4;
const WARMUP_JOBS = 8;

type Mode = 'closed' | 'sporadic';
const MODES: Mode[] = ['closed', 'sporadic'];
const chosenModes = MODES.filter((mode) => !values.mode || values.mode.includes(mode));

interface ScenarioResult {
  scenario: string;
  mode: Mode;
  bare: BareRun;
  service: ServiceRun;
  /** CPU ms per finished job, by process, during the service run; the last entry is the rest of
   * the machine's busy time (kernel threads, other processes), so that they sum to the whole. */
  cpuPerJobMs: Record<string, number>;
  /** CPU ms per bare job: the bare runner with its programs, and the whole machine's busy time. */
  bareCpuPerJobMs: { program: number; machine: number };
  /** Pool takes during the service runs, and how many of them prepared a container on the spot. */
  pool: { takes: number; misses: number };
}

/** The images the chosen scenarios and the drain run in. */
function imagesNeeded(chosen: Scenario[]): string[] {
  const registry = loadRuntimeRegistry();
  const jobImages = [...chosen.flatMap((scenario) => scenario.jobs), ...(values['no-drain'] ? [] : [drainJob])].map((job) => registry.resolve(String(job.body.language)).image);
  return [...new Set([...jobImages, ...chosen.map((scenario) => scenario.bare.image)])].filter((image): image is string => image !== undefined);
}

function preflight(chosen: Scenario[]): void {
  if (process.getuid?.() !== 0) throw new Error('the load test runs real sandboxes: run it as root');
  const store = openImageStore(dataDirFromEnv());
  const missing = imagesNeeded(chosen).filter((image) => !store.get(image));
  if (missing.length > 0) throw new Error(`images not built: ${missing.join(', ')} (cellblock images build ${missing.join(' ')})`);
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const pad = (text: string, width: number) => (text.length >= width ? text : text.padStart(width));

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : pad(cell, widths[column]!))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

function benign(samples: JobSample[]): JobSample[] {
  return samples.filter((sample) => sample.kind === 'benign');
}

function failures(samples: JobSample[]): JobSample[] {
  return samples.filter((sample) => sample.problem !== undefined);
}

function numbers(samples: JobSample[], pick: (sample: JobSample) => number | undefined): number[] {
  return samples.map(pick).filter((value): value is number => value !== undefined);
}

/** Runs the service side, measuring the CPU (ms) every process of the stack spent on it. */
async function measured(
  stack: Stack,
  run: () => Promise<ServiceRun>,
): Promise<{ service: ServiceRun; cpuMs: Record<string, number>; pool: { takes: number; misses: number } }> {
  const roots = { api: stack.apiPid, worker: stack.workerPid, redis: stack.redisPid };
  const poolBefore = await poolTakes(stack.url);
  const before = cpuMsByTree(roots);
  const loadBefore = process.cpuUsage();
  const machineBefore = machineBusyMs();
  const service = await run();
  const machineMs = machineBusyMs() - machineBefore;
  const load = process.cpuUsage(loadBefore);
  const used = cpuMsDifference(before, cpuMsByTree(roots));
  // After the CPU reading: the next heartbeat carries the run's last takes.
  await new Promise((resolve) => setTimeout(resolve, POOL_FIGURES_LAG_MS + 100));
  const poolAfter = await poolTakes(stack.url);
  const misses = poolAfter.misses - poolBefore.misses;
  const pool = { takes: poolAfter.hits - poolBefore.hits + misses, misses };
  const cpuMs: Record<string, number> = {
    'api': used.api!.ownMs,
    'worker (node)': used.worker!.ownMs,
    'sandboxes': used.worker!.reapedMs,
    'mount agent': used.worker!.liveDescendantsMs,
    'redis': used.redis!.ownMs,
    'load generator': usToMs(load.user + load.system),
  };
  cpuMs['kernel, other'] = machineMs - Object.values(cpuMs).reduce((sum, ms) => sum + ms, 0);
  return { service, cpuMs, pool };
}

/** Rounds each side runs in turn, the side that goes first alternating (bare, service, service,
 * bare, ...), so that both see the same background load on a shared machine rather than one side
 * catching a busy minute. A sporadic round is about SPORADIC_JOBS_PER_ROUND jobs a side (~5 s):
 * on these VMs the host's speed drifts within a minute by more than the differences under test
 * (a bare c true 106.7 ms p50 in one half-minute, 83.9 ms in the next: bench:executor at 15:31 on
 * 2026-12-05), which longer rounds misread. */
const CLOSED_ROUNDS = 3;
const SPORADIC_JOBS_PER_ROUND = 20;

async function runScenario(stack: Stack, bareRunner: BareRunner, scenario: Scenario, mode: Mode): Promise<ScenarioResult> {
  const jobs = mode === 'closed' ? SIZES.closedJobs[scenario.name as keyof typeof SIZES.closedJobs] ?? 100 : SIZES.sporadicJobs;
  const rounds = mode === 'closed' ? CLOSED_ROUNDS : Math.max(2, Math.round(jobs / SPORADIC_JOBS_PER_ROUND));
  // autocannon refuses fewer requests than connections.
  const perRound = Math.max(mode === 'closed' ? CLOSED_CONNECTIONS : 1, Math.round(jobs / rounds));
  const gapMs = 1000 / SPORADIC_RATE_PER_SECOND;
  const bareRuns: BareRun[] = [];
  const serviceRuns: ServiceRun[] = [];
  const cpuMs: Record<string, number> = {};
  const bareCpuMs = { program: 0, machine: 0 };
  const pool = { takes: 0, misses: 0 };
  for (let round = 0; round < rounds; round++) {
    const bareSide = async () => {
      const [bareProgramBefore, bareMachineBefore] = [reapedChildrenMs(), machineBusyMs()];
      bareRuns.push(
        await bareRunner.run(scenario.bare, mode === 'closed' ? { runs: perRound, loops: BARE_LOOPS, gapMs: 0 } : { runs: perRound, loops: 1, gapMs }),
      );
      bareCpuMs.program += reapedChildrenMs() - bareProgramBefore;
      bareCpuMs.machine += machineBusyMs() - bareMachineBefore;
    };
    const serviceSide = () =>
      measured(stack, () =>
        mode === 'closed'
          ? closedLoop(stack.url, scenario, { connections: CLOSED_CONNECTIONS, amount: perRound })
          : fixedRate(stack.url, scenario, { ratePerSecond: SPORADIC_RATE_PER_SECOND, amount: perRound }),
      );
    if (round % 2 === 0) await bareSide();
    const { service, cpuMs: used, pool: takes } = await serviceSide();
    if (round % 2 === 1) await bareSide();
    serviceRuns.push(service);
    for (const [name, ms] of Object.entries(used)) cpuMs[name] = (cpuMs[name] ?? 0) + ms;
    pool.takes += takes.takes;
    pool.misses += takes.misses;
  }
  const bare = joinBareRuns(bareRuns);
  const service = joinServiceRuns(serviceRuns);
  const cpuPerJobMs = Object.fromEntries(Object.entries(cpuMs).map(([name, ms]) => [name, ms / Math.max(1, service.samples.length)]));
  const bareJobs = Math.max(1, bare.latenciesMs.length);
  const bareCpuPerJobMs = { program: bareCpuMs.program / bareJobs, machine: bareCpuMs.machine / bareJobs };
  return { scenario: scenario.name, mode, bare, service, cpuPerJobMs, bareCpuPerJobMs, pool };
}

const total = <T>(runs: T[], pick: (run: T) => number) => runs.reduce((sum, run) => sum + pick(run), 0);
const perSecond = (count: number, elapsedMs: number) => count / msToSeconds(elapsedMs);

function joinBareRuns(runs: BareRun[]): BareRun {
  const latenciesMs = runs.flatMap((run) => run.latenciesMs);
  const cpuMs = runs.flatMap((run) => run.cpuMs);
  const elapsedMs = total(runs, (run) => run.elapsedMs);
  return { latenciesMs, cpuMs, elapsedMs, failures: total(runs, (run) => run.failures), throughputPerSecond: perSecond(latenciesMs.length, elapsedMs) };
}

function joinServiceRuns(runs: ServiceRun[]): ServiceRun {
  const samples = runs.flatMap((run) => run.samples);
  const elapsedMs = total(runs, (run) => run.elapsedMs);
  return { samples, elapsedMs, errors: total(runs, (run) => run.errors), throughputPerSecond: perSecond(samples.length, elapsedMs) };
}

function latencyTable(results: ScenarioResult[]): string {
  const rows: string[][] = [];
  for (const result of results) {
    const service = benign(result.service.samples);
    const serviceLatency = distribution(numbers(service, (s) => s.latencyMs));
    const bareLatency = distribution(result.bare.latenciesMs);
    const row = (side: string, jobs: number, perSecond: number, d: Distribution, failed: number, programCpu: string, queue = '', sandbox = '') => [
      `${result.scenario} / ${result.mode}`,
      side,
      String(jobs),
      fmt(perSecond),
      fmt(d.p50, 2),
      fmt(d.p90, 2),
      fmt(d.p99, 2),
      queue,
      sandbox,
      programCpu,
      String(failed),
    ];
    const bareCpu = fmt(distribution(result.bare.cpuMs).p50, 1);
    rows.push(row('bare', result.bare.latenciesMs.length, result.bare.throughputPerSecond, bareLatency, result.bare.failures, bareCpu));
    rows.push(
      row(
        'service',
        result.service.samples.length,
        result.service.throughputPerSecond,
        serviceLatency,
        failures(service).length + result.service.errors,
        fmt(distribution(numbers(service, (s) => s.sandboxCpuMs)).p50, 1),
        fmt(distribution(numbers(service, (s) => s.queueWaitMs)).p50, 1),
        fmt(distribution(numbers(service, (s) => s.sandboxWallMs)).p50, 1),
      ),
    );
  }
  return table(['scenario / mode', 'side', 'jobs', 'jobs/s', 'p50 ms', 'p90 ms', 'p99 ms', 'queue p50', 'sandbox p50', 'CPU p50', 'failed'], rows);
}

const CPU_NOTE =
  '\n"CPU p50": the programs\' own user + system CPU time per job, compile included: the result\'s\n' +
  "metrics.cpuTimeMs (the runs' cgroups) on the service side, the bare runner's wait4 on the bare side.\n" +
  'Beside the wall times it tells a program that worked longer in its container from one that waited longer.';

const INTERVAL_NOTE =
  '\nThe 95% interval of p50 +ms (bootstrap, 2000 resamples of both sides): how far the figure could move\n' +
  "between runs of the same code from this run's sampling alone; a change smaller than it is not resolved.";

/** The p50 of the service's benign latencies against the bare p50 (their difference in ms, or
 * `relative`: the fraction above), with its 95% bootstrap interval. */
function p50Above(result: ScenarioResult, relative = false): { value: number; interval: Interval } {
  const service = numbers(benign(result.service.samples), (s) => s.latencyMs);
  const bare = result.bare.latenciesMs;
  const above = relative
    ? (s: ArrayLike<number>, b: ArrayLike<number>) => median(s) / median(b) - 1
    : (s: ArrayLike<number>, b: ArrayLike<number>) => median(s) - median(b);
  return { value: above(service, bare), interval: bootstrapInterval(service, bare, above) };
}

function intervalText({ low, high }: Interval, digits: number, scale = 1): string {
  return `${fmt(scale * low, digits)} to ${fmt(scale * high, digits)}`;
}

function ratioTable(results: ScenarioResult[]): string {
  const rows = results.map((result) => {
    const service = distribution(numbers(benign(result.service.samples), (s) => s.latencyMs));
    const bare = distribution(result.bare.latenciesMs);
    const above = p50Above(result);
    return [
      `${result.scenario} / ${result.mode}`,
      // At a fixed arrival rate both sides do what arrives: only the closed loop's ratio means anything.
      result.mode === 'closed' ? fmt((100 * result.service.throughputPerSecond) / result.bare.throughputPerSecond, 0) + '%' : '-',
      fmt(above.value, 2),
      intervalText(above.interval, 2),
      fmt(service.p50 / bare.p50, 2),
      fmt(service.p99 / bare.p99, 2),
    ];
  });
  return table(['scenario / mode', 'throughput service/bare', 'p50 +ms', 'p50 +ms, 95% interval', 'p50 ×', 'p99 ×'], rows);
}

/** Where the benign jobs' end-to-end time went, in means (ms). */
function phaseTable(results: ScenarioResult[]): string {
  const mean = (values: number[]) => distribution(values).mean;
  const rows = results.map((result) => {
    const samples = benign(result.service.samples).filter((s) => s.phases);
    const worker = numbers(samples, (s) => s.phases!.workerMs);
    const sandbox = numbers(samples, (s) => s.sandboxWallMs);
    return [
      `${result.scenario} / ${result.mode}`,
      fmt(mean(numbers(samples, (s) => s.latencyMs)), 1),
      fmt(mean(numbers(samples, (s) => s.phases!.submitMs)), 1),
      fmt(mean(numbers(samples, (s) => s.phases!.queueMs)), 1),
      fmt(mean(worker), 1),
      fmt(mean(sandbox), 1),
      fmt(mean(worker) - mean(sandbox), 1),
      fmt(mean(numbers(samples, (s) => s.phases!.replyMs)), 1),
      `${result.pool.misses} of ${result.pool.takes}`,
    ];
  });
  return table(['scenario / mode', 'end-to-end', 'http→queued', 'queued→taken', 'taken→finished', 'of it sandbox', 'of it worker', 'finished→http', 'pool misses'], rows);
}

/** CPU per job by process; "total" is the machine's busy time per job (the processes and the
 * rest: kernel threads, anything else running), beside the same for a bare job: the bare runner
 * with its programs, and the machine. On cores kept busy, a closed loop's throughput is the
 * cores' time divided by the total. */
function cpuTable(results: ScenarioResult[]): string {
  const names = Object.keys(results[0]?.cpuPerJobMs ?? {});
  const rows = results.map((result) => {
    const total = Object.values(result.cpuPerJobMs).reduce((sum, ms) => sum + ms, 0);
    return [
      `${result.scenario} / ${result.mode}`,
      ...names.map((name) => fmt(result.cpuPerJobMs[name]!, 2)),
      fmt(total, 2),
      fmt(result.bareCpuPerJobMs.program, 2),
      fmt(result.bareCpuPerJobMs.machine, 2),
    ];
  });
  return table(['scenario / mode', ...names, 'total', 'bare program', 'bare total'], rows);
}

interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

function targets(results: ScenarioResult[], drained: DrainReport | undefined): Target[] {
  const find = (scenario: string, mode: Mode) => results.find((r) => r.scenario === scenario && r.mode === mode);
  const list: Target[] = [];
  const wrong = results.flatMap((result) => failures(benign(result.service.samples)).map((sample) => `${result.scenario}: ${sample.problem}`));
  const benignJobs = results.reduce((sum, result) => sum + benign(result.service.samples).length, 0);
  list.push({
    name: 'every benign job of every scenario right (verdict, stdout)',
    goal: '0 wrong',
    measured: `${wrong.length} of ${benignJobs}${wrong.length ? ` (${wrong[0]})` : ''}`,
    met: wrong.length === 0,
  });
  const helloClosed = find('python hello', 'closed');
  if (helloClosed) {
    const ratio = helloClosed.service.throughputPerSecond / helloClosed.bare.throughputPerSecond;
    list.push({
      name: 'python hello, closed loop: throughput vs bare',
      goal: '>= 85%',
      measured: `${fmt(100 * ratio, 0)}% (${fmt(helloClosed.service.throughputPerSecond)} vs ${fmt(helloClosed.bare.throughputPerSecond)} jobs/s)`,
      met: ratio >= 0.85,
    });
  }
  // With the 95% bootstrap interval: how far the same code's figure could move from sampling alone.
  const cSporadic = find('c true', 'sporadic');
  if (cSporadic) {
    const { value: ms, interval } = p50Above(cSporadic);
    list.push({ name: 'c true, sporadic: p50 above bare', goal: '<= 5 ms', measured: `${fmt(ms, 2)} ms (${intervalText(interval, 2)})`, met: ms <= 5 });
  }
  const helloSporadic = find('python hello', 'sporadic');
  if (helloSporadic) {
    const { value: fraction, interval } = p50Above(helloSporadic, true);
    list.push({
      name: 'python hello, sporadic: p50 above bare',
      goal: '<= 10%',
      measured: `${fmt(100 * fraction, 0)}% (${intervalText(interval, 0, 100)}%)`,
      met: fraction <= 0.1,
    });
  }
  for (const mode of ['closed', 'sporadic'] as const) {
    const mix = find('hostile mix 10%', mode);
    const alone = find('python hello', mode);
    if (!mix) continue;
    const benignMix = benign(mix.service.samples);
    const failed = failures(benignMix).length;
    list.push({
      name: `hostile mix, ${mode}: benign jobs failed`,
      goal: '0',
      measured: `${failed} of ${benignMix.length}${failed ? ` (${failures(benignMix)[0]!.problem})` : ''}`,
      met: failed === 0,
    });
    const hostile = mix.service.samples.filter((s) => s.kind === 'hostile');
    const escaped = failures(hostile);
    list.push({
      name: `hostile mix, ${mode}: hostile jobs contained`,
      goal: 'all',
      measured: `${hostile.length - escaped.length} of ${hostile.length}${escaped.length ? ` (${escaped[0]!.label}: ${escaped[0]!.problem})` : ''}`,
      met: escaped.length === 0,
    });
    if (alone) {
      const ratio = distribution(numbers(benignMix, (s) => s.latencyMs)).p99 / distribution(numbers(alone.service.samples, (s) => s.latencyMs)).p99;
      list.push({ name: `hostile mix, ${mode}: benign p99 vs benign-only p99`, goal: '<= 2x', measured: `${fmt(ratio, 2)}x`, met: ratio <= 2 });
    }
  }
  if (drained) {
    list.push({
      name: `drain ${drained.jobs} queued jobs: none lost or wrong`,
      goal: '0',
      measured: `${drained.lost} lost, ${drained.wrong} wrong`,
      met: drained.lost === 0 && drained.wrong === 0,
    });
    const growth = drained.workerRssBytes.after - drained.workerRssBytes.half;
    list.push({
      name: 'drain: worker RSS flat (second half of the drain)',
      goal: '< +10%',
      measured: `${fmt(bytesToMiB(drained.workerRssBytes.half))} → ${fmt(bytesToMiB(drained.workerRssBytes.after))} MiB`,
      met: growth < 0.1 * drained.workerRssBytes.half,
    });
  }
  return list;
}

function drainText(report: DrainReport): string {
  const mib = (bytes: number) => `${fmt(bytesToMiB(bytes))} MiB`;
  return [
    `${report.jobs} jobs (${drainJob.label}) queued in ${fmt(msToSeconds(report.submitMs), 1)} s, drained in ${fmt(msToSeconds(report.drainMs), 1)} s: ${fmt(report.throughputPerSecond)} jobs/s`,
    `lost ${report.lost}, wrong ${report.wrong}${report.problems.length ? ` (${report.problems.join('; ')})` : ''}`,
    `worker RSS: before ${mib(report.workerRssBytes.before)}, at half ${mib(report.workerRssBytes.half)}, after ${mib(report.workerRssBytes.after)}, peak ${mib(report.workerRssBytes.peak)}`,
    `api RSS: before ${mib(report.apiRssBytes.before)}, after ${mib(report.apiRssBytes.after)}`,
  ].join('\n');
}

function machine(): string {
  const cgroups = detectCgroupLayout().version;
  return `${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}), kernel ${os.release()}, cgroup ${cgroups}, ${fmt(bytesToMiB(os.totalmem()) / 1024, 0)} GiB, load average at start ${loadAverage()}, ${pageFaultNote()}`;
}

function stackOptions(): StackOptions {
  const options: StackOptions = {};
  if (values['cpu-prof']) options.nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`];
  if (values['worker-concurrency']) options.workerConcurrency = Number(values['worker-concurrency']);
  if (values['log-level']) options.logLevel = values['log-level'];
  const fsync = values['redis-fsync'];
  if (fsync !== undefined) {
    const policy = REDIS_APPEND_FSYNC_POLICIES.find((known) => known === fsync);
    if (!policy) throw new Error(`--redis-fsync is ${REDIS_APPEND_FSYNC_POLICIES.join(' or ')}`);
    options.redisAppendFsync = policy;
  }
  return options;
}

async function main(): Promise<void> {
  const reportStartedAt = performance.now();
  const chosen = values.scenario ? scenarios.filter((s) => values.scenario!.includes(s.name)) : scenarios.filter((s) => !s.onlyWhenNamed);
  const unknown = (values.scenario ?? []).filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`no scenario named ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  if (chosenModes.length === 0) throw new Error(`--mode is ${MODES.join(' or ')}`);
  preflight(chosen);
  console.log(`cellblock load test${values.quick ? ' (quick)' : ''} — ${new Date().toISOString()}`);
  console.log(machine());
  const settings = stackOptions();
  if (Object.keys(settings).length > 0) console.log(`service settings changed for this run: ${JSON.stringify(settings)}`);
  const bareRunner = await createBareRunner();
  const stack = await startStack(settings).catch((error: unknown) => {
    bareRunner.close();
    throw error;
  });
  const results: ScenarioResult[] = [];
  let drained: DrainReport | undefined;
  // Stopping the service stops its worker, which tears its pool down; on an interrupt too.
  const close = async (): Promise<void> => {
    await stack.stop();
    bareRunner.close();
  };
  await runInterruptible('loadtest', async () => {
    console.log(`service: ${stack.url}, worker pid ${stack.workerPid}, logs in ${stack.scratchDir}`);
    for (const scenario of chosen) {
      await closedLoop(stack.url, scenario, { connections: 2, amount: WARMUP_JOBS });
      for (const mode of chosenModes.filter((m) => !scenario.modes || scenario.modes.includes(m))) {
        const result = await runScenario(stack, bareRunner, scenario, mode);
        results.push(result);
        const service = distribution(numbers(benign(result.service.samples), (s) => s.latencyMs));
        console.log(
          `  ${scenario.name} / ${mode}: service ${fmt(result.service.throughputPerSecond)} jobs/s p50 ${fmt(service.p50, 2)} ms; bare ${fmt(result.bare.throughputPerSecond)} jobs/s p50 ${fmt(distribution(result.bare.latenciesMs).p50, 2)} ms`,
        );
      }
    }
    if (!values['no-drain']) {
      const jobs = values['drain-jobs'] ? Number(values['drain-jobs']) : SIZES.drainJobs;
      drained = await drain(stack, drainJob, jobs);
    }
  }, close);

  console.log('\n## Latency and throughput (benign jobs; end-to-end = POST ?wait=true → result)\n');
  console.log(latencyTable(results));
  console.log(CPU_NOTE);
  console.log('\n## Service vs bare (same run, same cores)\n');
  console.log(ratioTable(results));
  console.log(INTERVAL_NOTE);
  console.log('\n## Where the service time goes (means, ms)\n');
  console.log(phaseTable(results));
  console.log('\n## CPU per job by process (ms; "total" and "bare total" are the whole machine\'s busy time per job)\n');
  console.log(cpuTable(results));
  if (drained) {
    console.log('\n## Queue drain\n');
    console.log(drainText(drained));
  }
  const measured = targets(results, drained);
  console.log('\n## Targets\n');
  console.log(table(['target', 'goal', 'measured', 'met'], measured.map((t) => [t.name, t.goal, t.measured, t.met === undefined ? '-' : t.met ? 'yes' : 'NO'])));
  console.log('\nIn brackets: the 95% interval of a p50 figure, as under "Service vs bare".');
  console.log(`\nreport took ${fmt(msToSeconds(performance.now() - reportStartedAt), 0)} s`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ machine: machine(), results, drained, targets: measured }, null, 2));
}

main().catch((error: unknown) => {
  console.error(`loadtest: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
