// Scratch dirs of benchmark runs: <tmp>/cellblock-bench/<name>-<pid>-XXXXXX, <pid> the run's own
// process (bench:seccomp's shell script and the Python benchmarks' loadtest/bench_cleanup.py name
// theirs the same way). A run removes its own when it ends, an interrupted one too (interrupt.ts);
// a run killed outright (SIGKILL) cannot, so each new one first removes the dirs of runs whose
// process is gone. A dir with something still mounted under it is never walked into: the load
// test keeps its worker's pool state in its dir, and a worker that outlived its load test may
// still be closing that pool. Such a dir's pool is reclaimed the way a new worker reclaims a dead
// one's (its owner dirs whose lock is free); the dir goes once nothing is mounted under it, or at
// a later run.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mountPointsUnder } from '../../src/pool/mountinfo.js';
// processAlive counts a zombie as gone: a killed run's pid may linger as one.
import { processAlive } from '../../src/processes.js';

export const BENCH_SCRATCH_ROOT = path.join(os.tmpdir(), 'cellblock-bench');

/** `<name>-<pid>-` then mkdtemp's six characters (Node's, mktemp's) or eight (Python's
 * tempfile.mkdtemp, in loadtest/bench_cleanup.py). */
const RUN_DIR = /^[a-z0-9-]+?-(\d+)-[A-Za-z0-9_]{6,8}$/;

/** The pool state dir inside a run's scratch dir (the load test's CELLBLOCK_POOL_STATE_DIR). */
export const SCRATCH_POOL_DIR = 'pool';

export interface OrphanSweep {
  removed: string[];
  /** Dirs of dead runs left in place: something is still mounted under them. */
  kept: string[];
}

/** The root, made if missing; refused unless it is a real dir of this user (never a link someone
 * else placed in a world-writable tmp dir: the sweep removes what it finds there). */
function scratchRoot(root: string): string {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const stat = lstatSync(root);
  const uid = process.getuid?.() ?? stat.uid;
  if (!stat.isDirectory() || stat.uid !== uid) throw new Error(`${root} is not a directory of uid ${uid}: not using it for scratch dirs`);
  return root;
}

/** Removes the scratch dirs of runs whose process is gone. */
export async function sweepOrphanedScratchDirs(root = BENCH_SCRATCH_ROOT): Promise<OrphanSweep> {
  const sweep: OrphanSweep = { removed: [], kept: [] };
  if (!existsSync(root)) return sweep;
  for (const name of readdirSync(scratchRoot(root))) {
    const match = RUN_DIR.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    const dir = path.join(root, name);
    if (await removeScratchDir(dir)) sweep.removed.push(dir);
    else sweep.kept.push(dir);
  }
  return sweep;
}

/** Removes a run's scratch dir, its own run's at the end or a dead one's: a pool left mounted in
 * it is reclaimed first; a dir with anything else still mounted under it is left (false). */
export async function removeScratchDir(dir: string): Promise<boolean> {
  if (mountPointsUnder(dir).length > 0 && existsSync(path.join(dir, SCRATCH_POOL_DIR))) {
    // Loaded only here: it starts an executor (the native addon), which most runs never need.
    const { reclaimPoolState } = await import('../../test/helpers/pool-state.js');
    await reclaimPoolState(path.join(dir, SCRATCH_POOL_DIR));
  }
  if (mountPointsUnder(dir).length > 0) return false;
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/** A fresh scratch dir for this run, after sweeping the dirs of dead runs (named on stderr). */
export async function makeScratchDir(name: string, root = BENCH_SCRATCH_ROOT): Promise<string> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`scratch dir name ${JSON.stringify(name)}: lower-case letters, digits and dashes`);
  const sweep = await sweepOrphanedScratchDirs(root);
  if (sweep.removed.length > 0) process.stderr.write(`removed ${sweep.removed.length} scratch dirs of killed runs under ${root}\n`);
  for (const dir of sweep.kept) process.stderr.write(`left ${dir} (a killed run's): something is still mounted under it\n`);
  return mkdtempSync(path.join(scratchRoot(root), `${name}-${process.pid}-`));
}
