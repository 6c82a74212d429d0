// Benchmark scratch dirs: a run killed outright leaves its dir, the next run removes it; never a
// live run's, never anything else in the root, never a tree with something mounted in it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeScratchDir, SCRATCH_POOL_DIR, sweepOrphanedScratchDirs } from '../../loadtest/service/scratch.js';
import { reclaimPoolState } from '../helpers/pool-state.js';
import { endedPid, processState } from '../helpers/processes.js';
import { makeScratch, mountsMentioning, poolSkipReason } from '../pool/helpers.js';

const POOL_OWNER = fileURLToPath(new URL('../pool/fixtures/pool-owner.ts', import.meta.url));

function withRoot(body: (root: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'cellblock-scratch-test-'));
    try {
      await body(path.join(parent, 'root'));
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  };
}

const mountSkip = process.getuid?.() !== 0 && 'needs root (mounting a tmpfs)';

describe('benchmark scratch dirs', () => {
  it('makes a dir named for this run, and removes those of runs whose process is gone', withRoot(async (root) => {
    const own = await makeScratchDir('bench-x', root);
    assert.match(path.basename(own), new RegExp(`^bench-x-${process.pid}-[A-Za-z0-9]{6}$`));
    const dead = path.join(root, `loadtest-${endedPid()}-AbC123`);
    mkdirSync(path.join(dead, 'redis'), { recursive: true });
    writeFileSync(path.join(dead, 'worker.log'), 'left by a killed run\n');
    const deadPython = path.join(root, `cgroup-membership-${endedPid()}-k2_x9aqz`); // tempfile.mkdtemp's suffix
    mkdirSync(deadPython);
    const unrelated = path.join(root, 'notes');
    mkdirSync(unrelated);

    const next = await makeScratchDir('bench-y', root);
    assert.equal(existsSync(dead), false, "a dead run's dir is removed");
    assert.equal(existsSync(deadPython), false, "a dead Python benchmark's too");
    assert.equal(existsSync(own), true, "a live run's dir (this process's) stays");
    assert.equal(existsSync(unrelated), true, 'a name not of a run stays');
    assert.equal(existsSync(next), true);
  }));

  it("keeps a dead run's dir while something is mounted under it, and removes it once nothing is", { skip: mountSkip }, withRoot(async (root) => {
    await makeScratchDir('bench-x', root);
    const dead = path.join(root, `bench-engine-${endedPid()}-XyZ789`);
    const mounted = path.join(dead, 'mnt');
    mkdirSync(mounted, { recursive: true });
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'none', mounted]).status, 0);
    try {
      writeFileSync(path.join(mounted, 'inside'), 'x');
      const sweep = await sweepOrphanedScratchDirs(root);
      assert.deepEqual(sweep, { removed: [], kept: [dead] });
      assert.equal(readFileSync(path.join(mounted, 'inside'), 'utf8'), 'x', 'nothing under a mount is walked into');
    } finally {
      spawnSync('umount', [mounted]);
    }
    assert.deepEqual(await sweepOrphanedScratchDirs(root), { removed: [dead], kept: [] });
  }));

  it("reclaims the pool a killed load test's worker left in its dir, then removes the dir", { skip: poolSkipReason(), timeout: 60_000 }, withRoot(async (root) => {
    const layers = makeScratch();
    const dead = path.join(root, `loadtest-${endedPid()}-Pq4567`);
    try {
      await makeScratchDir('bench-x', root);
      // A worker's pool, killed outright: its slots stay mounted under the dead run's dir.
      const owner = spawn(process.execPath, ['--import', 'tsx', POOL_OWNER, path.join(dead, SCRATCH_POOL_DIR), ...layers.layerPaths], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: owner.stdout! }).once('line', () => resolve());
        owner.once('exit', (code) => reject(new Error(`pool owner exited early (${code})`)));
      });
      const agentPids = readFileSync(`/proc/${owner.pid}/task/${owner.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
      const exited = new Promise((resolve) => owner.once('exit', resolve));
      owner.kill('SIGKILL');
      await exited;
      // Its mount agent, which holds the owner lock, dies with it (PR_SET_PDEATHSIG).
      for (const deadline = Date.now() + 5000; agentPids.some((pid) => existsSync(`/proc/${pid}`)); ) {
        if (Date.now() > deadline) throw new Error('the pool owner\'s mount agent outlived it');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(mountsMentioning(dead).length > 0, 'the killed pool left its mounts');

      assert.deepEqual(await sweepOrphanedScratchDirs(root), { removed: [dead], kept: [] });
      assert.deepEqual(mountsMentioning(dead), []);
      assert.equal(existsSync(dead), false);
    } finally {
      // Should the sweep have failed, what the killed pool left still goes.
      if (mountsMentioning(dead).length > 0) await reclaimPoolState(path.join(dead, SCRATCH_POOL_DIR));
      layers.remove();
    }
  }));

  it("counts a zombie's run as gone (an init that reaps orphans lazily leaves one a while)", withRoot(async (root) => {
    // The short sleep ends after its parent shell has exec'd into the long one, which never waits
    // for it: a zombie until the long sleep ends. (A child that ended before the exec could be
    // reaped by the shell.)
    const parent = spawn('/bin/sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((resolve) => createInterface({ input: parent.stdout! }).once('line', resolve)));
      for (const deadline = Date.now() + 5000; processState(zombie) !== 'Z'; ) {
        if (Date.now() > deadline) throw new Error(`${zombie} never became a zombie`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const dir = path.join(root, `loadtest-${zombie}-Zz0000`);
      mkdirSync(dir, { recursive: true });
      assert.deepEqual(await sweepOrphanedScratchDirs(root), { removed: [dir], kept: [] });
    } finally {
      parent.kill('SIGKILL');
    }
  }));

  it('refuses a root that is a symbolic link (someone else\'s, in a shared tmp dir)', withRoot(async (root) => {
    const elsewhere = `${root}-elsewhere`;
    const victim = path.join(elsewhere, `loadtest-${endedPid()}-AbC123`);
    mkdirSync(victim, { recursive: true });
    symlinkSync(elsewhere, root);
    await assert.rejects(makeScratchDir('bench-x', root), /is not a directory of uid/);
    assert.equal(existsSync(victim), true);
    rmSync(elsewhere, { recursive: true, force: true });
  }));

  it('refuses a run name that would not read back as one', withRoot(async (root) => {
    await assert.rejects(makeScratchDir('Bench/x', root), /lower-case letters, digits and dashes/);
  }));
});
