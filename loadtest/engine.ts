// Engine benchmark: the per-run cost of /bin/true in a fresh container, side by side with a bare
// spawn of the same binary and with bubblewrap (`bwrap --unshare-all`), back to back and with
// idle gaps. Prints p50/p99 per mode, the ratios to the bare spawn and to bwrap, and where the
// engine's time goes. Not a test: figures only. Every mode is timed from Node, as a caller sees
// it: the bare spawn is Node's child_process.spawn of the same /bin/true (fork+exec+wait).
//
// Targets (issue 2): a fresh container's p50 within 2x of the bare spawn, and at least 4x faster
// than bwrap. "Fresh container, prepared ahead" is what the pool serves (a container never used
// before, its namespaces, mounts and cgroup made before the job); "prepare + start" builds it on
// the spot, as a pool miss does.
//
//   npm run bench:engine -- [--runs N] [--gap-runs N] [--gap-ms MS]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createSandbox } from '../src/sandbox/index.js';
import type { Limits, Sandbox } from '../src/sandbox/index.js';
import { MiB } from '../src/units.js';
import { busyboxRoot } from '../test/helpers/busybox-root.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '400' },
    'gap-runs': { type: 'string', default: '100' },
    'gap-ms': { type: 'string', default: '50' },
  },
});
const RUNS = Number(values.runs);
const GAP_RUNS = Number(values['gap-runs']);
const GAP_MS = Number(values['gap-ms']);

const LIMITS: Limits = {
  cpuTimeMs: 2000,
  wallTimeMs: 5000,
  memoryBytes: 64 * MiB,
  pids: 16,
  outputBytes: 64 * 1024,
  fileSizeBytes: 16 * MiB,
  openFiles: 64,
  stackBytes: 8 * MiB,
  tmpBytes: 16 * MiB,
  cpuCores: 1,
};

function spawnAndWait(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

interface Mode {
  name: string;
  /** Returns the time to report, in ms (usually the whole call; pre-warmed: start only). */
  once(): Promise<number>;
  /** Extra per-run breakdown, filled by engine modes. */
  parts?: Record<string, number[]>;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function modes(sandbox: Sandbox, rootDir: string, workDir: string): Mode[] {
  const trueInRoot = path.join(rootDir, 'bin/true');
  const bareSpawn: Mode = { name: 'bare spawn (fork+exec, Node)', once: () => timed(() => spawnAndWait(trueInRoot, [])) };
  const bwrap: Mode = {
    name: 'bwrap --unshare-all',
    once: () =>
      timed(() =>
        spawnAndWait('bwrap', ['--unshare-all', '--ro-bind', rootDir, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '/bin/true']),
      ),
  };
  const engineParts: Record<string, number[]> = { prepare: [], start: [], 'go→exec (in init)': [], 'exec→exit (in init)': [] };
  const engineRun: Mode = {
    name: 'cellblock prepare + start (on the spot)',
    parts: engineParts,
    once: async () => {
      const t0 = performance.now();
      const container = await sandbox.prepare({ rootDir, workDirHostPath: workDir, tmpBytes: LIMITS.tmpBytes });
      const t1 = performance.now();
      const result = await container.start({ argv: ['/bin/true'], limits: LIMITS });
      const t2 = performance.now();
      if (result.verdict !== 'ok') throw new Error(`engine run: ${result.verdict} ${JSON.stringify(result.error)}`);
      engineParts.prepare.push(t1 - t0);
      engineParts.start.push(t2 - t1);
      return t2 - t0;
    },
  };
  const prewarmed: Mode = {
    name: 'cellblock fresh container, prepared ahead',
    once: async () => {
      const container = await sandbox.prepare({ rootDir, workDirHostPath: workDir, tmpBytes: LIMITS.tmpBytes });
      const t = performance.now();
      const result = await container.start({ argv: ['/bin/true'], limits: LIMITS });
      const elapsed = performance.now() - t;
      if (result.verdict !== 'ok') throw new Error(`engine start: ${result.verdict}`);
      return elapsed;
    },
  };
  const oneShot: Mode = {
    name: 'cellblock sandbox.run() (on the spot)',
    once: () =>
      timed(async () => {
        const r = await sandbox.run({ rootDir, workDirHostPath: workDir, argv: ['/bin/true'], limits: LIMITS });
        if (r.verdict !== 'ok') throw new Error(`run: ${r.verdict}`);
      }),
  };
  return [bareSpawn, oneShot, engineRun, prewarmed, bwrap];
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
}

function summarize(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

async function round(label: string, list: Mode[], runs: number, gapMs: number): Promise<void> {
  const samples = new Map<Mode, number[]>(list.map((m) => [m, []]));
  for (const mode of list) for (const part of Object.values(mode.parts ?? {})) part.length = 0;
  // Interleaved (a rotating order each iteration), so that the machine's load hits every mode alike.
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < list.length; j++) {
      const mode = list[(i + j) % list.length];
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      samples.get(mode)?.push(await mode.once());
    }
  }
  const bare = summarize(samples.get(list[0]) ?? []);
  const bwrap = summarize(samples.get(list[list.length - 1]) ?? []);
  console.log(`\n## ${label}: ${runs} runs per mode${gapMs ? `, ${gapMs} ms idle before each` : ', back to back'}, interleaved`);
  console.log(`${'mode'.padEnd(44)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'p50/bare'.padStart(9)} ${'bwrap/p50'.padStart(10)}`);
  for (const mode of list) {
    const s = summarize(samples.get(mode) ?? []);
    const ratios = `${(s.p50 / bare.p50).toFixed(2).padStart(8)}x ${(bwrap.p50 / s.p50).toFixed(2).padStart(9)}x`;
    console.log(`${mode.name.padEnd(44)} ${s.p50.toFixed(2).padStart(8)} ${s.p99.toFixed(2).padStart(8)} ${ratios}`);
    for (const [part, values] of Object.entries(mode.parts ?? {})) {
      if (values.length === 0) continue;
      const p = summarize(values);
      console.log(`${('  ' + part).padEnd(44)} ${p.p50.toFixed(2).padStart(8)} ${p.p99.toFixed(2).padStart(8)}`);
    }
  }
}

async function main(): Promise<void> {
  const rootDir = busyboxRoot();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-engine-bench-'));
  const sandbox = createSandbox();
  try {
    console.log(`# cellblock engine benchmark — ${os.cpus().length} CPUs, kernel ${os.release()}, cgroup ${sandbox.cgroupVersion}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const list = modes(sandbox, rootDir, scratch);
    for (const mode of list) for (let i = 0; i < 20; i++) await mode.once(); // warm-up
    await round('back to back', list, RUNS, 0);
    await round('with idle gaps', list, GAP_RUNS, GAP_MS);
  } finally {
    await sandbox.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
