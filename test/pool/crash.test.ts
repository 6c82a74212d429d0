// Crash safety: an owner killed with SIGKILL leaves mounts and dirs; the next owner removes them,
// and never touches what a live owner holds. What a dead owner left is removed before the next
// owner makes its own dir, which a state dir its files filled would otherwise have no room for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createPool, PoolError } from '../../src/pool/index.js';
import { MountAgent } from '../../src/pool/mount-agent.js';
import { claimOwnerDir, reclaimStaleOwners, releaseOwnerDir } from '../../src/pool/state-dir.js';
import { makeScratch, mountsMentioning, poolSkipReason, type Scratch } from './helpers.js';

const skip = poolSkipReason();
const FIXTURE = fileURLToPath(new URL('./fixtures/pool-owner.ts', import.meta.url));

interface Owner {
  child: ChildProcess;
  stateDir: string;
  childPids: number[];
}

async function startOwner(scratch: Scratch, stateRoot = scratch.stateRoot): Promise<Owner> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, stateRoot, ...scratch.layerPaths], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`pool owner exited early (${code})`)));
  });
  const stateDir = /^READY (.+)$/.exec(line)?.[1];
  assert.ok(stateDir, `unexpected owner output: ${line}`);
  const childPids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return { child, stateDir, childPids };
}

async function sigkill(owner: Owner): Promise<void> {
  const exited = new Promise((r) => owner.child.once('exit', r));
  owner.child.kill('SIGKILL');
  await exited;
  // Its mount agent dies with it (PR_SET_PDEATHSIG), dropping the owner lock.
  const deadline = Date.now() + 2000;
  while (owner.childPids.some((pid) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > deadline) throw new Error(`owner's helpers still alive: ${owner.childPids}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function newPool(scratch: Scratch, stateRoot = scratch.stateRoot) {
  return createPool({
    stateRoot,
    rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
    sizing: { minReady: 1, maxReady: 1 },
  });
}

test('an owner killed with SIGKILL mid-run is cleaned up by the next owner', { skip, timeout: 60_000 }, async () => {
  const scratch = makeScratch();
  try {
    const dead = await startOwner(scratch);
    const left = mountsMentioning(dead.stateDir);
    // 4 slots (3 ready + 1 in use) × (tmpfs + overlay) + the owner's slots tmpfs.
    assert.equal(left.length, 9, `the killed owner had its slots mounted:\n${left.join('\n')}`);
    await sigkill(dead);
    assert.equal(mountsMentioning(dead.stateDir).length, 9, 'a SIGKILLed owner leaves its mounts behind');

    const pool = await newPool(scratch);
    assert.deepEqual(pool.reclaimed.ownerDirs, [dead.stateDir]);
    assert.equal(pool.reclaimed.mounts.length, 9);
    assert.deepEqual(mountsMentioning(dead.stateDir), []);
    assert.equal(existsSync(dead.stateDir), false);
    pool.release(await pool.take('busybox'));
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test('the same through a state root reached by a symlink', { skip, timeout: 60_000 }, async () => {
  const scratch = makeScratch();
  try {
    const link = join(scratch.dir, 'link');
    symlinkSync(scratch.dir, link);
    const dead = await startOwner(scratch, join(link, 'state'));
    await sigkill(dead);
    const pool = await newPool(scratch, join(link, 'state'));
    assert.equal(pool.reclaimed.mounts.length, 9);
    assert.deepEqual(mountsMentioning(scratch.dir).length, 1, "the new owner's slots tmpfs alone");
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test("a live owner's slots are never reclaimed", { skip, timeout: 60_000 }, async () => {
  const scratch = makeScratch();
  let live: Owner | undefined;
  try {
    live = await startOwner(scratch);
    const before = mountsMentioning(live.stateDir);
    const pool = await newPool(scratch);
    assert.deepEqual(pool.reclaimed.ownerDirs, []);
    assert.deepEqual(pool.reclaimed.liveOwners, [live.stateDir]);
    assert.deepEqual(mountsMentioning(live.stateDir), before);
    await pool.close();
    await sigkill(live);
    live = undefined;
    const next = await newPool(scratch);
    assert.equal(next.reclaimed.ownerDirs.length, 1);
    await next.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    if (live) await sigkill(live);
    // Whatever a failed run left: reclaim it before removing the scratch dir.
    if (mountsMentioning(scratch.dir).length > 0) await (await newPool(scratch)).close();
    scratch.remove();
  }
});

/** Files in `dir` (made) until its filesystem has no inode left. */
function fillInodes(dir: string): void {
  mkdirSync(dir);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `f${i}`), '');
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
      return;
    }
  }
}

test("a dead owner's files filling the state dir's filesystem are reclaimed before the next owner makes its dir; one full of others' files is refused (PoolError stateDir)", { skip, timeout: 60_000 }, async () => {
  const scratch = makeScratch();
  // A tmpfs of few inodes, as one whose nr_inodes kept judge compiles used up.
  const stateRoot = join(scratch.dir, 'small');
  mkdirSync(stateRoot);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,nr_inodes=64,mode=0700', 'tmpfs', stateRoot]);
  try {
    const dead = await startOwner(scratch, stateRoot);
    // Its kept judge compiles, say.
    fillInodes(join(dead.stateDir, 'judge-compiles'));
    await sigkill(dead);
    assert.throws(() => mkdirSync(join(stateRoot, 'probe')), /ENOSPC/, 'no room for a dir');

    const pool = await newPool(scratch, stateRoot);
    assert.deepEqual(pool.reclaimed.ownerDirs, [dead.stateDir]);
    assert.equal(existsSync(dead.stateDir), false);
    pool.release(await pool.take('busybox'));
    await pool.close();

    // Full of what no owner left: nothing to reclaim, and the start says why. Also with one inode
    // left, for its dir but not its lock file: the dir does not stay.
    fillInodes(join(stateRoot, 'not-ours'));
    for (const oneLeft of [false, true]) {
      if (oneLeft) unlinkSync(join(stateRoot, 'not-ours', 'f0'));
      await assert.rejects(
        newPool(scratch, stateRoot),
        (error: unknown) =>
          error instanceof PoolError &&
          error.op === 'stateDir' &&
          error.code === 'ENOSPC' &&
          error.message === `${stateRoot} has no room for this worker's files (no space left on device, ENOSPC), with what dead workers left there reclaimed: free space or inodes on its filesystem (df -h, df -i), or give the workers a larger one`,
      );
      assert.deepEqual(readdirSync(stateRoot), ['not-ours'], 'no dir of the refused owner left');
    }
  } finally {
    // Whatever a failed run left mounted under it goes with it.
    execFileSync('umount', ['-R', '-l', stateRoot]);
    scratch.remove();
  }
});

test("a starter's half-made dir that another owner's reclaim removes (between its mkdir and its lock) is made again under another name", { skip, timeout: 60_000 }, async () => {
  const scratch = makeScratch();
  mkdirSync(scratch.stateRoot, { recursive: true });
  const agent = await MountAgent.start();
  const reclaimer = await MountAgent.start();
  try {
    let removed: string | undefined;
    // The starter's agent, but for its first lock: before it, another owner starting runs its
    // reclaim, which takes the lock of the dir just made (no owner holds it yet) and removes it.
    const racing = {
      request: async (op: string, payload: Record<string, unknown>) => {
        if (op === 'lock' && removed === undefined) {
          removed = dirname(String(payload.path));
          const report = await reclaimStaleOwners(reclaimer, scratch.stateRoot);
          assert.deepEqual(report.ownerDirs, [removed], 'the reclaim removed the half-made dir');
        }
        return agent.request(op, payload);
      },
    } as unknown as MountAgent;
    const owner = await claimOwnerDir(racing, scratch.stateRoot);
    assert.ok(removed !== undefined && !existsSync(removed));
    assert.deepEqual(readdirSync(scratch.stateRoot), [basename(owner.dir)]);
    // Its lock held: another reclaim leaves it.
    assert.deepEqual((await reclaimStaleOwners(reclaimer, scratch.stateRoot)).liveOwners, [owner.dir]);
    await releaseOwnerDir(agent, owner);
    assert.deepEqual(readdirSync(scratch.stateRoot), []);
  } finally {
    await agent.close();
    await reclaimer.close();
    scratch.remove();
  }
});
