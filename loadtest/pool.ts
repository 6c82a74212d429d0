// Job latency through the executor with the pool warm, with the pool disabled, and a bare spawn
// of the same program on the host, side by side, for /bin/true (busybox image) and Python hello
// world (python image); each back-to-back and with idle gaps between jobs (sporadic traffic,
// where the cgroup-attach RCU stall of kernel-costs.md would show).
//
//   node --import tsx loadtest/pool.ts [--jobs N] [--gap-ms G] [--data-dir DIR]
//
// Needs root and the busybox and python images built in the data dir (cellblock images build).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createExecutor, type ExecutorPoolOptions } from '../src/executor/create.js';
import type { Executor } from '../src/executor/executor.js';
import { openImageStore } from '../src/images/store.js';
import { loadRuntimes } from '../src/images/runtimes.js';
import type { Runtime } from '../src/images/types.js';
import { dataDirFromEnv } from '../src/images/paths.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '300' },
    'gap-ms': { type: 'string', default: '50' },
    'data-dir': { type: 'string', default: dataDirFromEnv() },
  },
});
const jobs = Number(values.jobs);
const gapMs = Number(values['gap-ms']);
const dataDir = values['data-dir']!;

interface Program {
  name: string;
  runtime: Runtime;
  source: string;
  /** The same program, run bare on the host. */
  bareArgv: (sourcePath: string) => string[];
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
const programs: Program[] = [
  { name: '/bin/true', runtime: trueRuntime, source: '', bareArgv: () => ['/bin/true'], jobs },
  {
    name: 'python hello',
    runtime: python,
    source: python.helloWorld.source,
    bareArgv: (path) => [python.run.argv[0]!, path],
    jobs: Math.max(20, Math.round(jobs / 3)),
  },
];

const store = openImageStore(dataDir);
for (const image of ['busybox', 'python']) {
  if (!store.get(image)) {
    console.error(`image ${image} is not built in ${dataDir}: run \`cellblock images build ${image}\``);
    process.exit(2);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function summary(samplesMs: number[]): string {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `p50 ${q(0.5).toFixed(2).padStart(7)}  p90 ${q(0.9).toFixed(2).padStart(7)}  p99 ${q(0.99).toFixed(2).padStart(7)}  max ${s[s.length - 1]!.toFixed(2).padStart(7)}`;
}

async function timeJobs(n: number, gap: number, job: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 5; i++) await job(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gap > 0) await sleep(gap);
    const start = performance.now();
    await job();
    samples.push(performance.now() - start);
  }
  return samples;
}

function bareRun(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

async function withExecutor(pool: ExecutorPoolOptions, body: (ex: Executor) => Promise<void>): Promise<void> {
  const stateRoot = mkdtempSync(join(tmpdir(), 'cellblock-loadtest-pool-'));
  const ex = await createExecutor({
    dataDir,
    runtimes: programs.map((p) => p.runtime),
    pool: { ...pool, stateRoot, warmImages: ['busybox', 'python'] },
    onBackgroundError: (err, image) => console.error(`pool ${image}:`, err),
  });
  try {
    await sleep(500); // let the pool fill
    await body(ex);
  } finally {
    await ex.close();
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

const modes: { label: string; pool?: ExecutorPoolOptions }[] = [
  { label: 'bare spawn on the host' },
  { label: 'pool warm (roots + containers)', pool: { sizing: { minReady: 2, maxReady: 4 } } },
  { label: 'pool warm (roots only)', pool: { sizing: { minReady: 2, maxReady: 4 }, prewarmContainers: false } },
  { label: 'pool disabled', pool: { sizing: { minReady: 0, maxReady: 0 }, prewarmContainers: false } },
];

const scratch = mkdtempSync(join(tmpdir(), 'cellblock-loadtest-bare-'));
try {
  console.log(`cellblock pool load test: ${jobs} jobs per /bin/true row, gaps 0 and ${gapMs} ms; times in ms\n`);
  for (const program of programs) {
    const sourcePath = join(scratch, 'main.py');
    writeFileSync(sourcePath, program.source);
    console.log(`== ${program.name} (${program.jobs} jobs)`);
    for (const mode of modes) {
      for (const gap of [0, gapMs]) {
        let samples: number[];
        if (!mode.pool) {
          samples = await timeJobs(program.jobs, gap, () => bareRun(program.bareArgv(sourcePath)));
        } else {
          samples = [];
          await withExecutor(mode.pool, async (ex) => {
            samples = await timeJobs(program.jobs, gap, async () => {
              const result = await ex.execute({
                runtimeId: program.runtime.id,
                files: [{ name: program.runtime.sourceFile, content: Buffer.from(program.source) }],
              });
              if (result.verdict !== 'ok') throw new Error(`${program.name}: verdict ${result.verdict} ${JSON.stringify(result.run?.error)} ${result.run?.stderr}`);
            });
            const s = ex.stats().images[program.runtime.image]!;
            if (mode.pool!.sizing?.maxReady) console.log(`    (${gap} ms gaps: hits ${s.hits}, misses ${s.misses}, prepare mean ${(s.prepareMsTotal / s.prepared).toFixed(2)} ms)`);
          });
        }
        console.log(`  ${mode.label.padEnd(32)} gap ${String(gap).padStart(3)}:  ${summary(samples)}`);
      }
    }
    console.log('');
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
