// What the load test submits, as data: each scenario's jobs (the /v1 submission body), how a
// result is checked, and the same program's bare equivalent (the same argv, run from the same
// image's files with no service and no sandbox: bare.ts).
//
// The C scenario is "run a tiny C program" as a user submits it: source in, compiled by the
// service's gcc runtime, run. The API has no "precompiled binary" path (every c job compiles), so
// the job is compile + run, and so is its bare equivalent (gcc with the runtime's flags, then ./main).
import { compileArgv, runArgv, stageEnv } from '../../src/executor/argv.js';
import { defaultStageLimits } from '../../src/executor/limits.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { Runtime } from '../../src/images/types.js';

export interface JobSpec {
  /** Benign jobs count towards the scenario's latency; hostile ones only have to be contained. */
  kind: 'benign' | 'hostile';
  label: string;
  body: Record<string, unknown>;
  /** Why the result is wrong, or undefined when it is right. */
  check(result: ResultView): string | undefined;
}

/** The fields of the /v1 result the load test reads. */
export interface ResultView {
  verdict: string;
  stdout: string;
  metrics: { cpuTimeMs: number; wallTimeMs: number; peakMemoryBytes: number; queueWaitMs: number };
  compile?: StageView;
  run?: StageView;
}

/** A stage's sandbox failure, present when its verdict is internal_error. */
interface StageView {
  error?: { step: string; code: string; message: string };
}

/** "compile: <step> <code> <message>" for each stage that failed in the sandbox. */
function stageErrors(result: ResultView): string {
  const errors = (['compile', 'run'] as const).flatMap((name) => {
    const error = result[name]?.error;
    return error ? [`${name}: ${error.step} ${error.code} ${error.message}`] : [];
  });
  return errors.length ? ` (${errors.join('; ')})` : '';
}

export interface BareProgram {
  /** The image whose files the commands are (run chrooted in its layers); absent: the host's. */
  image?: string;
  /** Files written into each bare loop's work dir. */
  files: Record<string, string>;
  /** Commands run in order per iteration; absolute paths (no PATH lookup). */
  commands: string[][];
  env: Record<string, string>;
}

export interface Scenario {
  name: string;
  /** The job sequence, cycled by each connection. */
  jobs: JobSpec[];
  bare: BareProgram;
  /** Left out of the default report and run only when named (--scenario): too slow for the
   * report's ten minutes. */
  onlyWhenNamed?: boolean;
  /** The modes it runs in, when not both: sporadic arrivals come every 250 ms, and a job that
   * takes longer than that leaves no idle gap to measure. */
  modes?: ('closed' | 'sporadic')[];
}

const runtimes = new Map(loadRuntimes().map((runtime) => [runtime.id, runtime]));

function runtime(id: string): Runtime {
  const found = runtimes.get(id);
  if (!found) throw new Error(`no runtime "${id}" in images/runtimes`);
  return found;
}

const expectOk = (stdout?: string) => (result: ResultView) => {
  if (result.verdict !== 'ok') return `verdict ${result.verdict}${stageErrors(result)}`;
  if (stdout !== undefined && result.stdout !== stdout) return `stdout ${JSON.stringify(result.stdout.slice(0, 80))}`;
  return undefined;
};

/** A hostile job passes when it was stopped by a limit (any verdict but ok and internal_error). */
const expectContained = (result: ResultView) =>
  result.verdict === 'ok' || result.verdict === 'internal_error' ? `hostile job ended ${result.verdict}${stageErrors(result)}` : undefined;

const c = runtime('c');
const python = runtime('python');
const java = runtime('java');

const TRUE_C = 'int main(void) { return 0; }\n';
const HELLO_PY = python.helloWorld.source;
/** A fixed amount of pure-Python work, ~100 ms of CPU on the development machine (bare). */
export const CPU_LOOP_ITERATIONS = 1_000_000;
const CPU_PY = `n = 0\nfor i in range(${CPU_LOOP_ITERATIONS}):\n    n += i\nprint(n)\n`;
const CPU_PY_STDOUT = `${(CPU_LOOP_ITERATIONS * (CPU_LOOP_ITERATIONS - 1)) / 2}\n`;

/** A compiled runtime's compile then run of its source file, expanded as the service expands them
 * (no arguments, the default limits). */
const compileAndRun = (compiled: Runtime): string[][] => {
  const limits = defaultStageLimits(compiled);
  return [compileArgv(compiled.compile!, [compiled.sourceFile], [], limits.compile!), runArgv(compiled.run.argv, [compiled.sourceFile], [], limits.run)];
};

const pythonBare = (source: string): BareProgram => ({
  image: python.image,
  files: { [python.sourceFile]: source },
  commands: [runArgv(python.run.argv, [python.sourceFile], [], python.defaultLimits)],
  env: stageEnv(python.env, python.defaultLimits),
});

const helloJob: JobSpec = {
  kind: 'benign',
  label: 'python hello',
  body: { language: 'python', source: HELLO_PY },
  check: expectOk(python.helloWorld.stdout),
};

/** The three hostile programs, each with the runtime's default limits (what a user gets). */
const hostileJobs: JobSpec[] = [
  {
    kind: 'hostile',
    label: 'fork bomb',
    body: { language: 'python', source: 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n' },
    check: expectContained,
  },
  {
    kind: 'hostile',
    label: 'memory bomb',
    body: { language: 'python', source: 'blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n' },
    check: expectContained,
  },
  {
    kind: 'hostile',
    label: 'infinite loop',
    body: { language: 'python', source: 'while True:\n    pass\n' },
    check: expectContained,
  },
];

/** 90% hello world, 10% hostile: each hostile program once in every 30 jobs, spread out. */
function hostileMix(): JobSpec[] {
  const jobs: JobSpec[] = [];
  for (const hostile of hostileJobs) jobs.push(...Array<JobSpec>(9).fill(helloJob), hostile);
  return jobs;
}

export const scenarios: Scenario[] = [
  {
    name: 'c true',
    jobs: [{ kind: 'benign', label: 'c true', body: { language: 'c', source: TRUE_C }, check: expectOk('') }],
    bare: {
      image: c.image,
      files: { [c.sourceFile]: TRUE_C },
      commands: compileAndRun(c),
      env: stageEnv(c.env, c.defaultLimits),
    },
  },
  { name: 'python hello', jobs: [helloJob], bare: pythonBare(HELLO_PY) },
  {
    name: 'python cpu 100ms',
    jobs: [{ kind: 'benign', label: 'python cpu', body: { language: 'python', source: CPU_PY }, check: expectOk(CPU_PY_STDOUT) }],
    bare: pythonBare(CPU_PY),
  },
  { name: 'hostile mix 10%', jobs: hostileMix(), bare: pythonBare(HELLO_PY) },
  {
    // What a judge's java submissions cost: javac then java, each a JVM start (~0.5 s and ~0.1 s
    // of CPU), so a job takes longer than the sporadic mode's gap between arrivals.
    name: 'java hello',
    jobs: [{ kind: 'benign', label: 'java hello', body: { language: 'java', source: java.helloWorld.source }, check: expectOk(java.helloWorld.stdout) }],
    bare: { image: java.image, files: { [java.sourceFile]: java.helloWorld.source }, commands: compileAndRun(java), env: stageEnv(java.env, java.defaultLimits) },
    onlyWhenNamed: true,
    modes: ['closed'],
  },
];

/** The job the drain test queues by the thousand: a bash one-liner, the cheapest runtime. */
export const drainJob: JobSpec = {
  kind: 'benign',
  label: 'bash echo',
  body: { language: 'bash', source: 'echo drained\n' },
  check: expectOk('drained\n'),
};
