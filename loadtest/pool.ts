// Job latency through the executor with the pool warm, with roots only pre-warmed, and with the
// pool disabled, side by side (interleaved, a rotating order each turn) with the same program run
// bare on the host; for /bin/true (busybox image) and Python hello world (python image); back to
// back and with idle gaps before each job (sporadic traffic, where the cgroup-attach RCU stall of
// kernel-costs.md would show): every kept sample of every mode follows that mode's previous run
// by one gap, the machine idle between (turns.ts). Every turn starts once the turns before it are
// settled (every pool's upkeep done, then SETTLE_MS), so that no mode runs in another's wake:
// back to back means a burst of RUNS_PER_TURN jobs after idle. Not a test: figures only.
//
// Three bare baselines: timed inside a small C runner (loadtest/service/bare-runner.c), the
// physical floor, posix_spawn + waitpid (vfork + exec), and the textbook fork + exec + waitpid
// that the issue names, each running the image's own files (chrooted in its layers, nothing
// around the run); and Node's child_process.spawn with piped output, which is what a Node
// service would call (for /bin/true only: Node cannot chroot a child, and the host's python3 is
// not the image's: it reads the host's site-packages). The executor modes are timed from Node
// around execute(): the job's whole critical path (take a slot, write the files, run, read the
// result, compare).
//
// Targets (issue 4): warm pool p50 for /bin/true within 1.5x of a bare fork+exec; Python hello
// world within 1.1x of a bare python3 run; no multi-ms stall with idle gaps.
//
//   npm run bench:pool -- [--jobs N] [--gap-ms G] [--program '/bin/true'|'python hello'] [--data-dir DIR]
//
// Needs root and the busybox and python images built in the data dir (cellblock images build).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { stageEnv } from '../src/executor/argv.js';
import { createExecutor, type ExecutorPoolOptions } from '../src/executor/create.js';
import type { Executor } from '../src/executor/executor.js';
import { openImageStore } from '../src/images/store.js';
import { loadRuntimes } from '../src/images/runtimes.js';
import type { Runtime } from '../src/images/types.js';
import { dataDirFromEnv } from '../src/images/paths.js';
import { createBareRunner, type BareRunner } from './service/bare.js';
import { hostNote, loadAverage } from './service/host.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';
import { bootstrapInterval, distribution, median } from './service/stats.js';
import { bareTurn, RUNS_PER_TURN, SAMPLES_PER_TURN, SETTLE_MS, settled, timedTurn } from './turns.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '300' },
    'gap-ms': { type: 'string', default: '50' },
    'data-dir': { type: 'string', default: dataDirFromEnv() },
    /** Only these programs ('/bin/true', 'python hello'); default both. */
    program: { type: 'string', multiple: true },
  },
});
const jobs = Number(values.jobs);
const gapMs = Number(values['gap-ms']);
const dataDir = values['data-dir']!;

interface Program {
  name: string;
  runtime: Runtime;
  source: string;
  /** The same program's argv, run bare from its image's files in a dir holding the source file. */
  bareArgv: string[];
  /** The same binary by its path on the host, for Node's spawn; absent when the host has none. */
  hostArgv?: string[];
  jobs: number;
}

const python = loadRuntimes().find((r) => r.id === 'python');
if (!python) throw new Error('no python runtime in images/runtimes');
const trueRuntime: Runtime = {
  ...python,
  id: 'true',
  language: 'true',
  version: '1',
  image: 'busybox',
  sourceFile: 'unused',
  run: { argv: ['/bin/true'] },
  env: { PATH: '/bin' },
};
const store = openImageStore(dataDir);
for (const image of ['busybox', 'python']) {
  if (!store.get(image)) {
    console.error(`image ${image} is not built in ${dataDir}: run \`cellblock images build ${image}\``);
    process.exit(2);
  }
}
// Node's spawn runs the busybox image's static busybox by its host path (as `busybox true`),
// the very binary the container runs; not the host's coreutils /bin/true (dynamic, ~0.1 ms slower).
const busyboxBinary = join(store.get('busybox')!.layerPaths[0]!, 'bin/busybox');
const programs: Program[] = [
  { name: '/bin/true', runtime: trueRuntime, source: '', bareArgv: trueRuntime.run.argv, hostArgv: [busyboxBinary, 'true'], jobs },
  {
    name: 'python hello',
    runtime: python,
    source: python.helloWorld.source,
    bareArgv: [python.run.argv[0]!, python.sourceFile],
    jobs: Math.max(20, Math.round(jobs / 3)),
  },
];

for (const name of values.program ?? []) {
  if (!programs.some((p) => p.name === name)) {
    console.error(`no program ${JSON.stringify(name)}: one of ${programs.map((p) => JSON.stringify(p.name)).join(', ')}`);
    process.exit(2);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bareNodeRun(argv: string[], cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

interface Mode {
  name: string;
  /** Which ratio column this mode is the denominator of, for the bare modes. */
  baseline?: 'C spawn' | 'C fork' | 'Node bare';
  /** One turn: its samples in ms (SAMPLES_PER_TURN of them, each a gap after the last run). */
  samples(program: Program, gap: number): Promise<number[]>;
  /** For the executor modes: the program's own wall and CPU time (its result's metrics) over the
   * runs since the last call, and the pool's figures for its image when the mode has a pool. */
  note?(program: Program): string;
}

function executorMode(name: string, executor: Executor, pooled: boolean): Mode {
  const programWallMs: number[] = [];
  const programCpuMs: number[] = [];
  return {
    name,
    samples: (program, gap) =>
      timedTurn(gap, async () => {
        const start = performance.now();
        const result = await executor.execute({
          runtimeId: program.runtime.id,
          files: [{ name: program.runtime.sourceFile, content: Buffer.from(program.source) }],
        });
        const elapsed = performance.now() - start;
        if (result.verdict !== 'ok') throw new Error(`${program.name}: verdict ${result.verdict} ${JSON.stringify(result.run?.error)} ${result.run?.stderr}`);
        programWallMs.push(result.run!.metrics.wallTimeMs);
        programCpuMs.push(result.run!.metrics.cpuTimeMs);
        return elapsed;
      }),
    note: (program) => {
      const p50 = (values: number[]) => distribution(values.splice(0)).p50.toFixed(2);
      const programFigures = `program wall p50 ${p50(programWallMs)}, CPU p50 ${p50(programCpuMs)} ms`;
      if (!pooled) return programFigures;
      const s = executor.stats().images[program.runtime.image]!;
      return `${programFigures}; hits ${s.hits}, misses ${s.misses}, prepare p-mean ${(s.prepareMsTotal / s.prepared).toFixed(1)} ms`;
    },
  };
}

/** The mode of issue 4's targets. */
const WARM_POOL_MODE = 'pool warm (roots + containers)';

async function round(program: Program, modes: Mode[], executors: Executor[], gap: number): Promise<void> {
  const samples = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const turns = Math.ceil(program.jobs / SAMPLES_PER_TURN);
  for (let i = 0; i < turns; i++) {
    for (let j = 0; j < modes.length; j++) {
      const mode = modes[(i + j) % modes.length]!;
      // Each turn starts on a settled machine: the modes before it left no upkeep running.
      await settled(executors);
      await sleep(Math.max(gap, SETTLE_MS));
      samples.get(mode)!.push(...(await mode.samples(program, gap)));
    }
  }
  const distributions = new Map([...samples].map(([m, s]) => [m, distribution(s)]));
  const baselines = (['C spawn', 'C fork', 'Node bare'] as const).map((name) => {
    const mode = modes.find((m) => m.baseline === name);
    return mode ? distributions.get(mode)!.p50 : undefined;
  });
  const kept = turns * SAMPLES_PER_TURN;
  console.log(`\n## ${program.name}: ${kept} jobs per mode, ${gap ? `each ${gap} ms after the mode's previous one, idle between` : 'back to back (bursts after the machine settled)'}, in turns of ${RUNS_PER_TURN} (the first dropped), modes interleaved; ms`);
  console.log(['mode'.padEnd(34), 'p50', 'p90', 'p99', 'max'].map((h, i) => (i ? h.padStart(7) : h)).join(' ') + '  ' + ['/C spawn'.padStart(8), '/C fork'.padStart(8), '/Node bare'.padStart(10)].join(' '));
  for (const mode of modes) {
    const { p50, p90, p99, max } = distributions.get(mode)!;
    const figures = [p50, p90, p99, max].map((v) => v.toFixed(2).padStart(7));
    const ratios = baselines.map((base, i) => (base === undefined ? '-' : `${(p50 / base).toFixed(2)}x`).padStart(i === 2 ? 10 : 8)).join(' ');
    console.log(`${mode.name.padEnd(34)} ${figures.join(' ')}  ${ratios}${mode.note ? `  (${mode.note(program)})` : ''}`);
  }
  // The issue's target, with how precisely this round's samples pin it down.
  const fork = modes.find((m) => m.baseline === 'C fork');
  const pool = modes.find((m) => m.name === WARM_POOL_MODE);
  if (fork && pool) {
    const ratio = (a: ArrayLike<number>, b: ArrayLike<number>) => median(a) / median(b);
    const [poolSamples, forkSamples] = [samples.get(pool)!, samples.get(fork)!];
    const { low, high } = bootstrapInterval(poolSamples, forkSamples, ratio);
    console.log(
      `${WARM_POOL_MODE} / bare fork + exec, p50: ${ratio(poolSamples, forkSamples).toFixed(2)}x ` +
        `(95% bootstrap interval ${low.toFixed(2)}x to ${high.toFixed(2)}x: how far it could move from this round's sampling alone)`,
    );
  }
}

async function main(): Promise<void> {
  const scratch = await makeScratchDir('bench-pool');
  const bare = await createBareRunner();
  const executors: Executor[] = [];
  // Each pool keeps its state where a worker's does (<data dir>/pool, one owner dir each), so
  // that whatever a run killed outright leaves there is reclaimed by the next executor's start.
  const makeExecutor = async (pool: ExecutorPoolOptions, label: string): Promise<Executor> => {
    const executor = await createExecutor({
      dataDir,
      runtimes: programs.map((p) => p.runtime),
      pool: { ...pool, warmImages: ['busybox', 'python'] },
      onBackgroundError: (err, image) => console.error(`pool ${label} ${image}:`, err),
    });
    executors.push(executor);
    if (closed) await close(); // interrupted while it started
    return executor;
  };
  let closed = false;
  const close = async (): Promise<void> => {
    closed = true;
    for (const executor of executors) await executor.close();
    bare.close();
    rmSync(scratch, { recursive: true, force: true });
  };
  await runInterruptible('bench:pool', async () => {
    console.log(`# cellblock pool benchmark: ${hostNote()}`);
    const sizing = { minReady: 2, maxReady: 4 };
    const warm = await makeExecutor({ sizing }, 'warm');
    const rootsOnly = await makeExecutor({ sizing, prewarmContainers: false }, 'roots');
    const disabled = await makeExecutor({ sizing: { minReady: 0, maxReady: 0 }, prewarmContainers: false }, 'disabled');
    await sleep(1000); // let the pools fill
    const bareDir = mkdtempSync(join(scratch, 'bare-'));
    for (const program of programs.filter((p) => !values.program || values.program.includes(p.name))) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(bareDir, program.runtime.sourceFile), program.source);
      const env = stageEnv(program.runtime.env, program.runtime.defaultLimits);
      const bareC = (spawnWith: 'posix_spawn' | 'fork') => async (p: Program, gap: number) =>
        (await bareTurn(bare, { image: p.runtime.image, files: { [p.runtime.sourceFile]: p.source }, commands: [p.bareArgv], env }, gap, spawnWith)).latenciesMs;
      const hostArgv = program.hostArgv;
      // The baselines lead the list: posix_spawn, fork + exec, Node's spawn (where it runs the same binary).
      const modes: Mode[] = [
        { name: 'bare posix_spawn (C runner)', baseline: 'C spawn', samples: bareC('posix_spawn') },
        { name: 'bare fork + exec (C runner)', baseline: 'C fork', samples: bareC('fork') },
        ...(hostArgv ? [{ name: 'bare spawn (Node child_process)', baseline: 'Node bare' as const, samples: (_p: Program, gap: number) => timedTurn(gap, async () => {
          const start = performance.now();
          await bareNodeRun(hostArgv, bareDir, env);
          return performance.now() - start;
        }) }] : []),
        executorMode(WARM_POOL_MODE, warm, true),
        executorMode('pool warm (roots only)', rootsOnly, true),
        executorMode('pool disabled', disabled, false),
      ];
      for (const mode of modes) {
        await mode.samples(program, 0); // warm-up: one turn each, its figures dropped
        mode.note?.(program);
      }
      for (const gap of [0, gapMs]) await round(program, modes, executors, gap);
    }
    console.log(`\n(load at the end ${loadAverage()})`);
  }, close);
}

await main();
