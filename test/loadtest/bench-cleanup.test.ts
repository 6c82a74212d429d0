// loadtest/bench_cleanup.py, which the Python benchmarks (bench:attach, bench:cgroups) clean up
// with: a SIGTERM runs their `finally`; a killed run's scratch dir and cgroups go at the next start.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { endedPid, processAlive } from '../helpers/processes.js';
import { until } from '../helpers/until.js';

const LOADTEST_DIR = fileURLToPath(new URL('../../loadtest/', import.meta.url));
/** Debian's, as the benchmarks' npm scripts run them. */
const PYTHON = '/usr/bin/python3';
const MEMORY_HIERARCHY = '/sys/fs/cgroup/memory';

function python(code: string, env: NodeJS.ProcessEnv = {}) {
  return spawn(PYTHON, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(LOADTEST_DIR)})\n${code}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function finished(child: ReturnType<typeof spawn>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { status, stdout, stderr };
}

const noPython = !existsSync(PYTHON) && `${PYTHON} is missing (apt-get install python3)`;
const noV1Memory =
  noPython ||
  (process.getuid?.() !== 0 && 'needs root (making cgroups)') ||
  (!existsSync(path.join(MEMORY_HIERARCHY, 'tasks')) && 'no cgroup v1 memory hierarchy: the Python benchmarks measure v1 only');

describe('the Python benchmarks\' cleanup (loadtest/bench_cleanup.py)', { skip: noPython }, () => {
  it('a SIGTERM ends the run through its finally, with 128 + 15', async () => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'cellblock-bench-cleanup-test-'));
    try {
      const marker = path.join(scratch, 'finally');
      const child = python(
        `from bench_cleanup import exit_through_finally_on_signals\nimport time\nexit_through_finally_on_signals()\ntry:\n    print('ready', flush=True)\n    time.sleep(60)\nfinally:\n    open(${JSON.stringify(marker)}, 'w').write('ran')`,
      );
      const outcome = finished(child);
      await new Promise((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
      child.kill('SIGTERM');
      assert.equal((await outcome).status, 143);
      assert.equal(readFileSync(marker, 'utf8'), 'ran');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("makes a scratch dir named for the run, after removing dead runs' dirs of either language", async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'cellblock-bench-cleanup-test-'));
    try {
      const root = path.join(tmp, 'cellblock-bench');
      const deadNode = path.join(root, `loadtest-${endedPid()}-AbC123`);
      const deadPython = path.join(root, `cgroup-membership-${endedPid()}-k2_x9aqz`);
      const live = path.join(root, `bench-pool-${process.pid}-AbC123`);
      for (const dir of [deadNode, deadPython, live]) mkdirSync(dir, { recursive: true, mode: 0o700 });
      const run = await finished(python(`from bench_cleanup import scratch_dir\nimport os\nprint(scratch_dir('cgroup-membership'), os.getpid())`, { TMPDIR: tmp }));
      assert.equal(run.status, 0, run.stderr);
      const [made, pid] = run.stdout.trim().split(' ');
      assert.match(path.basename(made!), new RegExp(`^cgroup-membership-${pid}-[a-z0-9_]{8}$`));
      assert.equal(path.dirname(made!), root);
      assert.deepEqual([existsSync(deadNode), existsSync(deadPython), existsSync(live)], [false, false, true]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses a cgroup outside cellblock/ and kills nothing in it (a hierarchy root: rmdir is EBUSY there, as on any mount point)', { skip: noPython || (process.getuid?.() !== 0 && 'needs root (a tmpfs mount)'), timeout: 30_000 }, async () => {
    // A mount point stands in for a hierarchy's root: its rmdir fails with EBUSY, which sends
    // remove_cgroup to kill what its cgroup.procs lists. Here that is one sleep of ours, where a
    // real root would list every process of the machine.
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'cellblock-bench-cleanup-test-'));
    const root = path.join(tmp, 'hierarchy');
    mkdirSync(root);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'cellblock-test-hierarchy', root]);
    const sleeper = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(root, 'cgroup.procs'), String(sleeper.pid));
      const run = await finished(
        python(`from bench_cleanup import remove_cgroup\ntry:\n    remove_cgroup(${JSON.stringify(root)})\nexcept ValueError as refused:\n    print('refused:', refused)`),
      );
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /^refused: .* is not below a cellblock\/ cgroup/);
      // Killed, it would be a zombie until Node reaps it, which processAlive counts as gone.
      assert.equal(processAlive(sleeper.pid!), true, 'the process listed there is alive');
    } finally {
      sleeper.kill('SIGKILL');
      execFileSync('umount', [root]);
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("removes a dead run's cgroups (killing what is left in them), never a live run's", { skip: noV1Memory, timeout: 30_000 }, async () => {
    const parent = path.join(MEMORY_HIERARCHY, 'cellblock');
    const parentExisted = existsSync(parent);
    const dead = path.join(parent, `cleanup-test-${endedPid()}`);
    const live = path.join(parent, `cleanup-test-${process.pid}`);
    const sleeper = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      mkdirSync(path.join(dead, 'run-1'), { recursive: true });
      mkdirSync(live, { recursive: true });
      // A process the killed run left behind (a compiler's child, say), still in its cgroup.
      writeFileSync(path.join(dead, 'run-1', 'cgroup.procs'), String(sleeper.pid));
      const sleeperGone = new Promise((resolve) => sleeper.once('exit', resolve));
      const run = await finished(python(`from bench_cleanup import sweep_dead_runs\nprint(sweep_dead_runs([${JSON.stringify(MEMORY_HIERARCHY)}], 'cleanup-test'))`));
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout.trim(), `['${dead}']`);
      assert.equal(existsSync(dead), false);
      assert.equal(existsSync(live), true, "a live run's cgroup stays");
      await sleeperGone;
    } finally {
      sleeper.kill('SIGKILL');
      // Whatever the sweep did not remove goes here (cgroup dirs go with rmdir only, children first).
      await until(() => !existsSync(path.join(dead, 'run-1', 'cgroup.procs')) || readFileSync(path.join(dead, 'run-1', 'cgroup.procs'), 'utf8') === '');
      for (const dir of [path.join(dead, 'run-1'), dead, live, ...(parentExisted ? [] : [parent])]) {
        try {
          rmdirSync(dir);
        } catch {
          // gone already, or (the parent) in use by another instance
        }
      }
    }
  });
});
