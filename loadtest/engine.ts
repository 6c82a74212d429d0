// Engine benchmark: the per-run cost of /bin/true in a fresh container, side by side with a bare
// spawn of the same binary and with bubblewrap (`bwrap --unshare-all`), back to back and with
// idle gaps. Prints p50/p99 per mode, the ratios to the bare spawns and to bwrap, and where the
// engine's time goes. Not a test: figures only.
//
// Three bare baselines, timed inside a small C runner (loadtest/service/bare-runner.c) or in Node:
// the physical floor, posix_spawn + waitpid (vfork + exec); the textbook fork + exec + waitpid
// that the issue names; and Node's child_process.spawn, which is what a Node service would call
// (it forks Node's whole address space and costs several times more). Every other mode is timed
// from Node, as the engine's caller sees it. Every kept sample of every mode follows that mode's
// previous run by one gap (turns.ts).
//
// Targets (issue 2): a fresh container's p50 within 2x of a bare fork + exec, and at least 4x faster
// than bwrap. "Fresh container, prepared ahead" is what the pool serves (a container never used
// before, its namespaces, mounts and cgroup made before the job, idle until it is started);
// "prepare + start" builds it on the spot, as sandbox.run() and a pool miss do.
//
//   npm run bench:engine -- [--runs N] [--gap-runs N] [--gap-ms MS]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createSandbox } from '../src/sandbox/index.js';
import type { Limits, PreparedContainer, Sandbox } from '../src/sandbox/index.js';
import { MiB } from '../src/units.js';
import { busyboxRoot } from '../test/helpers/busybox-root.js';
import { createBareRunner, type BareRunner } from './service/bare.js';
import { hostNote, loadAverage } from './service/host.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';
import { distribution } from './service/stats.js';
import { bareTurn, RUNS_PER_TURN, SAMPLES_PER_TURN, timedTurn } from './turns.js';

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
  /** One turn of this mode: its samples in ms (SAMPLES_PER_TURN, each a gap after the last run). */
  samples(gapMs: number): Promise<number[]>;
  /** Extra per-run breakdown, filled by engine modes. */
  parts?: Record<string, number[]>;
  close?(): Promise<void>;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** How long after a result the benchmark destroys that container (see destroyLater). */
const TEARDOWN_AFTER_MS = 10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function modes(sandbox: Sandbox, bare: BareRunner, rootDir: string, workDir: string): Mode[] {
  const trueInRoot = path.join(rootDir, 'bin/true');
  const bareC = (spawnWith: 'posix_spawn' | 'fork') => async (gapMs: number) =>
    (await bareTurn(bare, { files: {}, commands: [[trueInRoot]], env: {} }, gapMs, spawnWith)).latenciesMs;
  const floor: Mode = { name: 'bare posix_spawn (C runner)', samples: bareC('posix_spawn') };
  const forkExec: Mode = { name: 'bare fork + exec (C runner)', samples: bareC('fork') };
  const nodeSpawn: Mode = { name: 'bare spawn (Node child_process)', samples: (gapMs) => timedTurn(gapMs, () => timed(() => spawnAndWait(trueInRoot, []))) };
  const bwrap: Mode = {
    name: 'bwrap --unshare-all',
    samples: (gapMs) =>
      timedTurn(gapMs, () =>
        timed(() =>
          spawnAndWait('bwrap', ['--unshare-all', '--ro-bind', rootDir, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '/bin/true']),
        ),
      ),
  };
  const prepareSpec = { rootDir, workDirHostPath: workDir, limits: LIMITS };
  // The benchmark owns its containers: each is destroyed a little after its result, as the
  // sandbox's one-shot run() does and as an idle pool does (off the next turn's runs).
  const destroyLater = (container: PreparedContainer) =>
    setTimeout(() => container.destroy().catch((err) => console.error('destroy:', err)), TEARDOWN_AFTER_MS);
  const onTheSpotParts: Record<string, number[]> = { prepare: [], start: [] };
  const onTheSpot: Mode = {
    name: 'cellblock prepare + start (on the spot)',
    parts: onTheSpotParts,
    samples: async (gapMs) => {
      const parts: Array<[number, number]> = [];
      const samples = await timedTurn(gapMs, async () => {
        const t0 = performance.now();
        const container = await sandbox.prepare(prepareSpec);
        const t1 = performance.now();
        const result = await container.start({ argv: ['/bin/true'], limits: LIMITS });
        const t2 = performance.now();
        destroyLater(container);
        if (result.verdict !== 'ok') throw new Error(`engine run: ${result.verdict} ${JSON.stringify(result.error)}`);
        parts.push([t1 - t0, t2 - t1]);
        return t2 - t0;
      });
      for (const [prepareMs, startMs] of parts.slice(1)) {
        onTheSpotParts.prepare.push(prepareMs);
        onTheSpotParts.start.push(startMs);
      }
      return samples;
    },
  };
  // The next container is prepared right after a start, so that it sits idle through the gap
  // before it is started, as a pooled one does.
  let next: Promise<PreparedContainer> | null = null;
  const prepared: Mode = {
    name: 'cellblock fresh container, prepared ahead',
    samples: (gapMs) =>
      timedTurn(gapMs, async () => {
        const container = await (next ?? sandbox.prepare(prepareSpec));
        const t = performance.now();
        const result = await container.start({ argv: ['/bin/true'], limits: LIMITS });
        const elapsed = performance.now() - t;
        destroyLater(container);
        if (result.verdict !== 'ok') throw new Error(`engine start: ${result.verdict} ${JSON.stringify(result.error)}`);
        next = sandbox.prepare(prepareSpec);
        await next;
        return elapsed;
      }),
    close: async () => {
      if (next) await (await next).destroy();
    },
  };
  return [floor, forkExec, nodeSpawn, prepared, onTheSpot, bwrap];
}

const ratio = (value: number) => `${value.toFixed(2)}x`;

async function round(label: string, list: Mode[], runs: number, gapMs: number): Promise<void> {
  const turns = Math.ceil(runs / SAMPLES_PER_TURN);
  const samples = new Map<Mode, number[]>(list.map((m) => [m, []]));
  for (const mode of list) for (const part of Object.values(mode.parts ?? {})) part.length = 0;
  // Interleaved (a rotating order each turn), so that the machine's load hits every mode alike.
  for (let i = 0; i < turns; i++) {
    for (let j = 0; j < list.length; j++) {
      const mode = list[(i + j) % list.length]!;
      if (gapMs > 0) await sleep(gapMs);
      samples.get(mode)!.push(...(await mode.samples(gapMs)));
    }
  }
  // The baselines lead the list: posix_spawn, fork + exec, Node's spawn.
  const [floor, forkExec, nodeSpawn] = [list[0]!, list[1]!, list[2]!].map((m) => distribution(samples.get(m)!));
  const bwrap = distribution(samples.get(list[list.length - 1]!)!);
  const kept = turns * SAMPLES_PER_TURN;
  console.log(`\n## ${label}: ${kept} runs per mode${gapMs ? `, each ${gapMs} ms after the mode's previous one, idle between` : ', back to back'}, in turns of ${RUNS_PER_TURN} (the first dropped), modes interleaved; ms`);
  const header = ['mode'.padEnd(44), 'p50'.padStart(7), 'p99'.padStart(7), '/C spawn'.padStart(8), '/C fork'.padStart(8), '/Node bare'.padStart(10), 'bwrap/'.padStart(7)];
  console.log(header.join(' '));
  for (const mode of list) {
    const s = distribution(samples.get(mode)!);
    const row = [
      mode.name.padEnd(44),
      s.p50.toFixed(2).padStart(7),
      s.p99.toFixed(2).padStart(7),
      ratio(s.p50 / floor!.p50).padStart(8),
      ratio(s.p50 / forkExec!.p50).padStart(8),
      ratio(s.p50 / nodeSpawn!.p50).padStart(10),
      ratio(bwrap.p50 / s.p50).padStart(7),
    ];
    console.log(row.join(' '));
    for (const [part, values] of Object.entries(mode.parts ?? {})) {
      const p = distribution(values);
      console.log(`${('  ' + part).padEnd(44)} ${p.p50.toFixed(2).padStart(7)} ${p.p99.toFixed(2).padStart(7)}`);
    }
  }
}

async function main(): Promise<void> {
  const rootDir = busyboxRoot();
  const scratch = await makeScratchDir('bench-engine');
  const sandbox = createSandbox();
  const bare = await createBareRunner();
  const list = modes(sandbox, bare, rootDir, scratch);
  const close = async (): Promise<void> => {
    for (const mode of list) await mode.close?.();
    await sandbox.close();
    bare.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  };
  await runInterruptible('bench:engine', async () => {
    // What a run killed outright left (its cgroups; its containers died with it) goes first.
    await sandbox.cleanupStale();
    console.log(`# cellblock engine benchmark: /bin/true; cgroup ${sandbox.cgroups.version}, ${hostNote()}`);
    for (const mode of list) for (let i = 0; i < 4; i++) await mode.samples(0); // warm-up: 12 runs each
    await round('back to back', list, RUNS, 0);
    await round('with idle gaps', list, GAP_RUNS, GAP_MS);
    console.log(`\n(load at the end ${loadAverage()})`);
  }, close);
}

await main();
