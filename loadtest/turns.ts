// How the benchmarks under loadtest/ take their samples: in turns, each mode's kept runs a gap
// after that same mode's previous run. The C runner (loadtest/service/bare-runner.c) runs a
// turn itself: RUNS_PER_TURN runs, each after a gap, the first dropped (it follows the
// runner's own start). Modes timed from Node do the same through timedTurn. Otherwise a Node-timed
// mode's sample would follow the other modes' turns (~0.3 s of other work) while the bare side's
// follows its own run one gap earlier: two different histories, and after a longer idle
// everything on these machines runs slower (a bare fork + exec of busybox true: ~0.87 ms p50
// after 50 ms idle, ~1.25 ms after 200 ms).

import type { Executor } from '../src/executor/executor.js';
import type { BareRunner, BareRunOptions } from './service/bare.js';
import type { BareProgram } from './service/scenarios.js';

/** Runs per turn and mode, the first dropped. */
export const RUNS_PER_TURN = 3;

/** Samples each turn keeps. */
export const SAMPLES_PER_TURN = RUNS_PER_TURN - 1;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One turn of a mode timed from Node: RUNS_PER_TURN runs a gap apart, the first dropped. */
export async function timedTurn(gapMs: number, runOnce: () => Promise<number>): Promise<number[]> {
  const samples: number[] = [];
  for (let run = 0; run < RUNS_PER_TURN; run++) {
    if (run > 0 && gapMs > 0) await sleep(gapMs);
    samples.push(await runOnce());
  }
  return samples.slice(1);
}

/** One turn of the C bare runner: RUNS_PER_TURN runs, each a gap after the last, the first
 * dropped (it follows the runner's own start, not a run of its mode, as timedTurn's first follows
 * other modes' turns). Per kept run its latency and CPU time; `failures` counts every run. */
export async function bareTurn(
  bare: BareRunner,
  program: BareProgram,
  gapMs: number,
  spawnWith?: BareRunOptions['spawnWith'],
): Promise<{ latenciesMs: number[]; cpuMs: number[]; failures: number }> {
  const run = await bare.run(program, { runs: RUNS_PER_TURN, loops: 1, gapMs, ...(spawnWith ? { spawnWith } : {}) });
  return { latenciesMs: run.latenciesMs.slice(1), cpuMs: run.cpuMs.slice(1), failures: run.failures };
}

/** After this long with every pool's upkeep done (the used containers' teardown included), the
 * kernel's work behind it (the network namespaces' cleanup in a kworker) is over too. */
export const SETTLE_MS = 30;

/** Resolves once no executor's pool holds, prepares or still has to tear down a slot. */
export async function settled(executors: Executor[]): Promise<void> {
  const busy = () => executors.some((e) => Object.values(e.stats().images).some((s) => s.inUse + s.preparing + s.retiring > 0));
  while (busy()) await sleep(2);
}
