// The pool against the real kernel: overlay roots on per-slot tmpfs, single use, no leftovers.
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPool, type ContainerPreparer, type Pool, type PoolSlot, type PreparedRoot } from '../../src/pool/index.js';
import { holdLockFile, isLockFileHeld } from '../../src/lock-file.js';
import { SANDBOX_UID } from '../../src/pool/root.js';
import { DEFAULT_UID_LEASE_DIR, SANDBOX_UID_COUNT, UIDS_KEPT_FREE } from '../../src/pool/uid-leases.js';
import { mountAgentPids } from '../helpers/processes.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '../helpers/until.js';
import { makeScratch, mountsMentioning, poolSkipReason, type Scratch } from './helpers.js';

const skip = poolSkipReason();
const IMAGE = 'busybox';

async function withPool(
  sizing: { minReady: number; maxReady: number; idleShrinkMs?: number },
  body: (pool: Pool, scratch: Scratch) => Promise<void>,
  roots: { startupPaths?: string[]; layers?: (layerPaths: string[]) => void; uidLeaseDir?: (scratch: Scratch) => string } = {},
): Promise<void> {
  const scratch = makeScratch();
  try {
    roots.layers?.(scratch.layerPaths);
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      uidLeaseDir: roots.uidLeaseDir?.(scratch),
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 4 << 20, startupPaths: roots.startupPaths }),
      sizing: { idleShrinkMs: 60_000, ...sizing },
    });
    try {
      await body(pool, scratch);
    } finally {
      await pool.close();
    }
    assert.deepEqual(mountsMentioning(scratch.dir), [], 'no mounts left after close');
    assert.equal(existsSync(pool.stateDir), false, 'owner dir removed after close');
  } finally {
    scratch.remove();
  }
}

/** Two pools, each on a state root of its own (as two services' workers on one machine). */
async function withPoolsOnTwoStateRoots(
  sizing: { minReady: number; maxReady: number },
  body: (pools: [Pool, Pool], scratches: Scratch[]) => Promise<void>,
  uidLeaseDir?: string,
): Promise<void> {
  const scratches = [makeScratch(), makeScratch()];
  try {
    const pools = await Promise.all(
      scratches.map((scratch) =>
        createPool({ stateRoot: scratch.stateRoot, uidLeaseDir, rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }), sizing }),
      ),
    );
    try {
      await body(pools as [Pool, Pool], scratches);
    } finally {
      for (const pool of pools) await pool.close();
    }
    for (const scratch of scratches) assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    for (const scratch of scratches) scratch.remove();
  }
}

test('a root is the image layers (top wins) with a work dir owned by the sandbox user', { skip }, async () => {
  await withPool({ minReady: 1, maxReady: 1 }, async (pool) => {
    const slot = await pool.take(IMAGE);
    assert.equal(readFileSync(join(slot.root.rootDir, 'etc/layer'), 'utf8'), 'top\n');
    assert.equal(readFileSync(join(slot.root.rootDir, 'etc/base-only'), 'utf8'), 'base\n');
    const box = statSync(slot.root.workDirHostPath);
    assert.equal(box.isDirectory(), true);
    assert.equal(box.uid, slot.root.uid);
    assert.ok(slot.root.uid >= SANDBOX_UID && slot.root.uid < SANDBOX_UID + SANDBOX_UID_COUNT, `uid ${slot.root.uid} in the range`);
    assert.equal(box.gid, 60000);
    assert.equal(slot.root.workDir, '/box');
    // The engine mounts over these, and binds the work dir (a directory of the slot's tmpfs,
    // beside the overlay) onto the root's own /box.
    for (const point of ['proc', 'dev', 'tmp', 'box']) assert.ok(statSync(join(slot.root.rootDir, point)).isDirectory());
    assert.ok(!slot.root.workDirHostPath.startsWith(slot.root.rootDir + '/'), 'the work dir is not under the overlay');
    pool.release(slot);
  });
});

test("a root's start-up paths are looked up in it, as its programs would, before it is taken; not on a miss", { skip }, async () => {
  // abs-link points at /etc/base-only: inside the root it exists (the base layer has it), on the
  // host it does not, so it is found only when looked up with the root as "/".
  const startupPaths = ['/etc/layer', '/bin/sh', '/etc/abs-link', '/etc/missing', '/nowhere/at/all'];
  await withPool(
    { minReady: 1, maxReady: 1 },
    async (pool) => {
      pool.warm(IMAGE);
      await until(() => pool.stats().images[IMAGE]!.ready === 1);
      const prepared = await pool.take(IMAGE);
      try {
        assert.equal(prepared.root.startupPathsFound, 3);
        // None ready now: the next take's root is prepared on the spot while its job waits, and
        // leaves the lookups to the program.
        const onTheSpot = await pool.take(IMAGE);
        try {
          assert.equal(pool.stats().images[IMAGE]!.misses, 1);
          assert.equal(onTheSpot.root.startupPathsFound, 0);
        } finally {
          pool.release(onTheSpot);
        }
      } finally {
        pool.release(prepared);
      }
    },
    { startupPaths, layers: ([, top]) => symlinkSync('/etc/base-only', join(top!, 'etc', 'abs-link')) },
  );
});

test('a file written by one job is not visible to the next job on the same image', { skip }, async () => {
  await withPool({ minReady: 2, maxReady: 2 }, async (pool, scratch) => {
    const first = await pool.take(IMAGE);
    writeFileSync(join(first.root.workDirHostPath, 'secret'), 'job 1');
    writeFileSync(join(first.root.rootDir, 'etc/layer'), 'overwritten by job 1');
    mkdirSync(join(first.root.rootDir, 'tmp/dir'));
    pool.release(first);
    for (let i = 0; i < 3; i++) {
      const next = await pool.take(IMAGE);
      assert.notEqual(next.root.slotDir, first.root.slotDir, 'a slot is never reused');
      assert.equal(existsSync(join(next.root.workDirHostPath, 'secret')), false);
      assert.equal(existsSync(join(next.root.rootDir, 'tmp/dir')), false);
      assert.equal(readFileSync(join(next.root.rootDir, 'etc/layer'), 'utf8'), 'top\n');
      pool.release(next);
    }
    // The layers themselves were never written.
    assert.equal(readFileSync(join(scratch.layerPaths[1]!, 'etc/layer'), 'utf8'), 'top\n');
    await until(() => mountsMentioning(first.root.slotDir).length === 0);
  });
});

test('the writable space is limited to the slot size', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 1 }, async (pool) => {
    const slot = await pool.take(IMAGE);
    assert.throws(() => writeFileSync(join(slot.root.workDirHostPath, 'big'), Buffer.alloc(5 << 20)), /ENOSPC/);
    pool.release(slot);
  });
});

test('hits, misses and demand: a miss prepares on the spot and raises the target', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 3 }, async (pool) => {
    const a = await pool.take(IMAGE); // nothing warm: a miss
    let s = pool.stats().images[IMAGE]!;
    assert.equal(s.misses, 1);
    assert.equal(s.hits, 0);
    assert.equal(s.target, 1);
    await until(() => pool.stats().images[IMAGE]!.ready === 1);
    const b = await pool.take(IMAGE);
    s = pool.stats().images[IMAGE]!;
    assert.equal(s.hits, 1);
    assert.equal(s.inUse, 2);
    assert.ok(s.prepared >= 2 && s.prepareMsTotal > 0 && s.prepareMsMax >= s.prepareMsLast && s.prepareMsLast > 0);
    pool.release(a);
    pool.release(b);
    await until(() => pool.stats().images[IMAGE]!.destroyed >= 2);
  });
});

test('an idle pool shrinks back to minReady', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 2, idleShrinkMs: 100 }, async (pool) => {
    pool.release(await pool.take(IMAGE));
    await until(() => pool.stats().images[IMAGE]!.ready === 1);
    await until(() => pool.stats().images[IMAGE]!.ready === 0 && pool.stats().images[IMAGE]!.target === 0, 3000);
  });
});

test('a bad image (missing layer) is a PoolError, not a crash, and leaves nothing', { skip }, async () => {
  const scratch = makeScratch();
  try {
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: [join(scratch.dir, 'no-such-layer')], upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
    });
    await assert.rejects(pool.take(IMAGE), (err: Error) => err.name === 'PoolError');
    assert.equal(pool.stats().images[IMAGE]!.prepareFailures, 1);
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test("a container whose teardown fails still has its root unmounted; close succeeds", { skip }, async () => {
  const scratch = makeScratch();
  try {
    const errors: unknown[] = [];
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
      container: { prepare: async () => 'container', destroy: async () => Promise.reject(new Error('teardown failed')) },
      onBackgroundError: (err) => errors.push(err),
    });
    const slot = await pool.take(IMAGE);
    pool.release(slot);
    await until(() => errors.length > 0, 5000, 5, 'the teardown failed');
    await until(() => mountsMentioning(slot.root.slotDir).length === 0, 5000, 5, "the slot's mounts gone all the same");
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test("a key whose slots the container preparer does not prepare for gets roots alone", { skip }, async () => {
  const scratch = makeScratch();
  try {
    const prepared: string[] = [];
    const pool = await createPool<string>({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
      container: { prepares: (key) => key !== 'bare', prepare: async (key) => (prepared.push(key), `container of ${key}`), destroy: async () => undefined },
    });
    const [withContainer, bare] = await Promise.all([pool.take(IMAGE), pool.take('bare')]);
    assert.equal(withContainer.container, `container of ${IMAGE}`);
    assert.equal(bare.container, undefined);
    assert.ok(bare.root.workDirHostPath);
    assert.deepEqual(prepared, [IMAGE]);
    pool.release(withContainer);
    pool.release(bare);
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test('live slots have uids of their own, and a slot destroyed gives its uid back', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 0 }, async (pool) => {
    const slots = await Promise.all([pool.take(IMAGE), pool.take(IMAGE), pool.take(IMAGE)]);
    const uids = slots.map((slot) => slot.root.uid);
    assert.equal(new Set(uids).size, 3, `distinct: ${uids}`);
    for (const slot of slots) pool.release(slot);
    await until(() => pool.stats().images[IMAGE]!.destroyed === 3, 5000, 5, 'the three destroyed');
    // The owner keeps the uids it leased and hands the oldest given back out first.
    const again = await pool.take(IMAGE);
    assert.ok(uids.includes(again.root.uid), `${again.root.uid} is one of ${uids}`);
    pool.release(again);
  });
  // A second pool, with a state root of its own (another service's worker on the machine), never
  // hands out a uid the first holds: the leases are the machine's (/run/cellblock/uids, where a
  // live service on this machine leases too, so that these pools take none of its uids).
  await withPoolsOnTwoStateRoots({ minReady: 0, maxReady: 2 }, async ([a, b], scratches) => {
    // Settled, so that a take that fails leaves the others' slots to be released below.
    const settled = await Promise.allSettled([a.take(IMAGE), a.take(IMAGE), b.take(IMAGE), b.take(IMAGE)]);
    const taken = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    try {
      assert.equal(taken.length, 4, `every take succeeded: ${settled.map((result) => result.status)}`);
      const uids = taken.map((slot) => slot.root.uid);
      assert.equal(new Set(uids).size, 4, `distinct: ${uids}`);
      for (const uid of uids) assert.equal(isLockFileHeld(join(DEFAULT_UID_LEASE_DIR, String(uid))), true, `${uid} leased in ${DEFAULT_UID_LEASE_DIR}`);
      for (const scratch of scratches) assert.equal(existsSync(join(scratch.stateRoot, 'uids')), false, 'no lease dir in the state root');
    } finally {
      // Released whatever failed, so that close finds no slot mounted.
      for (const [index, result] of settled.entries()) if (result.status === 'fulfilled') (index < 2 ? a : b).release(result.value);
    }
  });
});

test('pools lease in the uid lease dir they are given, whatever their state roots', { skip }, async () => {
  // Its own dir, for this test alone: these roots run no program, so their uids may be a live
  // service's.
  const leases = makeScratch();
  const uidLeaseDir = join(leases.dir, 'uid-leases');
  try {
    await withPoolsOnTwoStateRoots({ minReady: 0, maxReady: 0 }, async ([a, b]) => {
      // Taken and given back in turns, so that each pool's free list and search both come into it.
      const live: { pool: Pool; slot: PoolSlot }[] = [];
      try {
        for (let round = 0; round < 20; round++) {
          const settled = await Promise.allSettled([a, b, a, b].map(async (pool) => ({ pool, slot: await pool.take(IMAGE) })));
          const taken = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
          live.push(...taken); // released in finally, whatever failed
          assert.equal(taken.length, 4, `round ${round}: every take succeeded`);
          const uids = live.map((entry) => entry.slot.root.uid);
          assert.equal(new Set(uids).size, uids.length, `round ${round}: a uid handed out twice at once: ${uids}`);
          for (const { slot } of taken) assert.equal(isLockFileHeld(join(uidLeaseDir, String(slot.root.uid))), true, `${slot.root.uid} leased in the given dir`);
          for (const entry of live.splice(0, 2 + (round % 3))) entry.pool.release(entry.slot);
        }
      } finally {
        for (const entry of live) entry.pool.release(entry.slot);
      }
    }, uidLeaseDir);
  } finally {
    leases.remove();
  }
});

test("a pool's uids follow its live slots: past the few it keeps free, those its slots gave back are unlocked", { skip }, async () => {
  // A lease dir of its own, to count this pool's leases alone.
  let uidLeaseDir = '';
  await withPool({ minReady: 0, maxReady: 0 }, async (pool) => {
    const held = () => readdirSync(uidLeaseDir).filter((name) => isLockFileHeld(join(uidLeaseDir, name))).length;
    const peak = UIDS_KEPT_FREE + 8;
    const slots = await Promise.all(Array.from({ length: peak }, () => pool.take(IMAGE)));
    assert.equal(held(), peak);
    for (const slot of slots) pool.release(slot);
    await until(() => pool.stats().images[IMAGE]!.destroyed === peak, 10_000, 5, 'every slot destroyed');
    assert.equal(held(), UIDS_KEPT_FREE);
  }, { uidLeaseDir: (scratch) => (uidLeaseDir = join(scratch.dir, 'uid-leases')) });
});

/** A pool that may lease `uidCount` uids alone (in a lease dir of its own), its background errors
 * kept. */
async function withFewUids(
  uidCount: number,
  body: (pool: Pool, errors: Error[], scratch: Scratch) => Promise<void>,
  uidShortageRefillPauseMs?: number,
): Promise<void> {
  const scratch = makeScratch();
  const errors: Error[] = [];
  try {
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      uidLeaseDir: join(scratch.dir, 'uid-leases'),
      uidCount,
      uidShortageRefillPauseMs,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 1, maxReady: 1, idleShrinkMs: 60_000 },
      // Short: a refill that failed each time, as refills did at a shortage, would be seen often.
      failureBackoffMs: 100,
      onBackgroundError: (err) => errors.push(err as Error),
    });
    try {
      await body(pool, errors, scratch);
    } finally {
      await pool.close();
    }
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
}

/** Warms a, then b, each to its one ready slot: a's is the older, and a saw no take for longest. */
async function warmAThenB(pool: Pool): Promise<void> {
  pool.warm('a');
  await until(() => pool.stats().images.a!.ready === 1, 5000, 5, 'a ready');
  pool.warm('b');
  await until(() => pool.stats().images.b!.ready === 1, 5000, 5, 'b ready');
}

test("a job's slot that finds every uid leased takes an idle ready slot's of another image; with none idle, its take says so", { skip }, async () => {
  await withFewUids(2, async (pool, errors, scratch) => {
    const stats = (image: string) => pool.stats().images[image]!;
    await warmAThenB(pool); // every uid leased
    // a saw no take for longest: its slot goes.
    const c = await pool.take('c');
    assert.deepEqual([stats('a').ready, stats('a').evicted, stats('a').destroyed, stats('b').ready], [0, 1, 1, 1]);
    const d = await pool.take('d');
    assert.deepEqual([stats('b').ready, stats('b').evicted], [0, 1]);
    assert.notEqual(c.root.uid, d.root.uid);
    // Both uids serve jobs now: nothing idle to give one up.
    await assert.rejects(pool.take('e'), (err: Error & { code?: string; op?: string }) => {
      assert.equal(err.name, 'PoolError');
      assert.deepEqual([err.op, err.code], ['uid', 'EAGAIN']);
      assert.equal(err.message, "no sandbox uid is free: all 2 of this machine (60000-60001) are leased by its workers' slots, and this worker had no idle slot to give one up");
      assert.ok(!err.message.includes(scratch.dir), 'no host path');
      return true;
    });
    pool.release(c);
    pool.release(d);
    // The evicted images are not refilled (their targets dropped), and refills paused: no noise.
    await sleep(500);
    assert.deepEqual(errors, []);
  });
});

test('refills that find every uid leased pause, and say so once', { skip }, async () => {
  // Paused for 0.3 s at a time here (10 s in service): refills try again a few times below.
  await withFewUids(1, async (pool, errors) => {
    pool.warm('a');
    await until(() => pool.stats().images.a!.ready === 1, 5000, 5, 'a ready: the one uid leased');
    pool.warm('b');
    pool.warm('c');
    await until(() => errors.length > 0, 5000, 5, 'the shortage reported');
    // Refilling every failure backoff (100 ms), b and c failed ~20 times in a second, each reported.
    await sleep(1000);
    assert.equal(errors.length, 1, errors.map((err) => err.message).join('\n'));
    assert.match(errors[0]!.message, /^all 1 sandbox uids of this machine \(60000-60000\) are leased by its workers' slots: this pool prepares no slot ahead for 0.3 s at a time/);
    const failures = pool.stats().images.b!.prepareFailures + pool.stats().images.c!.prepareFailures;
    assert.ok(failures >= 2 && failures <= 5, `a refill tried once per pause: ${failures}`);
  }, 300);
});

test("a job's slot's shortage first (not reported), then a refill's: the refill's is reported, once", { skip }, async () => {
  await withFewUids(2, async (pool, errors) => {
    const stats = (image: string) => pool.stats().images[image]!;
    await warmAThenB(pool); // every uid leased
    // The take finds none, pauses refills, and takes a's: nothing reported.
    const c = await pool.take('c');
    assert.deepEqual([stats('a').evicted, errors.length], [1, 0]);
    try {
      // The pause over, a (back to its minReady) and c are refilled, and find none: said once.
      await until(() => errors.length > 0, 5000, 5, "the refill's shortage reported");
      await sleep(1000);
      assert.equal(errors.length, 1, errors.map((err) => err.message).join('\n'));
      assert.match(errors[0]!.message, /^all 2 sandbox uids of this machine \(60000-60001\) are leased by its workers' slots/);
    } finally {
      pool.release(c);
    }
  }, 300);
});

test("while refills are paused for a shortage, a job's slot takes an idle slot's uid without searching the lease files; after the pause, refills search again", { skip }, async () => {
  await withFewUids(3, async (pool, _errors, scratch) => {
    const stats = (image: string) => pool.stats().images[image]!;
    // Another worker's lease of the third uid.
    const othersLease = join(scratch.dir, 'uid-leases', String(SANDBOX_UID + 2));
    let othersFd: number | undefined = holdLockFile(othersLease);
    const taken: PoolSlot[] = [];
    try {
      await warmAThenB(pool); // every uid leased by this pool, or by the other worker
      const pausedAt = Date.now();
      taken.push(await pool.take('c')); // searches, finds none, pauses refills, takes a's uid
      assert.deepEqual([taken[0]!.root.uid, stats('a').evicted], [SANDBOX_UID, 1]);
      // The other worker gives its uid back; a search would find it, but none is made.
      closeSync(othersFd);
      othersFd = undefined;
      taken.push(await pool.take('d'));
      assert.ok(Date.now() - pausedAt < 1000, 'within the pause');
      assert.deepEqual([taken[1]!.root.uid, stats('b').evicted], [SANDBOX_UID + 1, 1], "b's slot given up at once");
      // The pause over, refills search again: one finds the third uid (c's or d's first, whose
      // jobs run: demand).
      const readyImage = () => ['a', 'b', 'c', 'd'].find((image) => stats(image).ready > 0);
      await until(() => readyImage() !== undefined, 5000, 5, 'a slot refilled after the pause');
      assert.ok(Date.now() - pausedAt >= 1000);
      taken.push(await pool.take(readyImage()!));
      assert.equal(taken[2]!.root.uid, SANDBOX_UID + 2);
    } finally {
      if (othersFd !== undefined) closeSync(othersFd);
      for (const slot of taken) pool.release(slot);
    }
  }, 1000);
});

/** A pool whose slots get `container`'s stand-ins for containers, sized to make slots on the spot
 * alone, its uids leased in a dir of its own (given to `body`) and its background errors kept. */
async function withStandInContainers(
  container: ContainerPreparer<string>,
  body: (pool: Pool<string>, uidLeaseDir: string, errors: unknown[]) => Promise<void>,
): Promise<void> {
  const scratch = makeScratch();
  try {
    const errors: unknown[] = [];
    const uidLeaseDir = join(scratch.dir, 'uid-leases');
    const pool = await createPool<string>({
      stateRoot: scratch.stateRoot,
      uidLeaseDir,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 0 },
      container,
      onBackgroundError: (err) => errors.push(err),
    });
    try {
      await body(pool, uidLeaseDir, errors);
    } finally {
      await pool.close();
    }
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
}

test("a slot whose teardown failed keeps its uid leased by its worker, never handed to another slot", { skip }, async () => {
  let failTeardown = true;
  const container = { prepare: async () => 'container', destroy: async () => (failTeardown ? Promise.reject(new Error('teardown failed')) : undefined) };
  await withStandInContainers(container, async (pool, uidLeaseDir, errors) => {
    const first = await pool.take(IMAGE);
    pool.release(first);
    await until(() => pool.stats().images[IMAGE]!.uidsWithheld === 1, 5000, 5, 'its uid withheld');
    assert.equal(errors.length, 1);
    failTeardown = false;
    const second = await pool.take(IMAGE);
    assert.notEqual(second.root.uid, first.root.uid, 'not given to the next slot');
    assert.equal(isLockFileHeld(join(uidLeaseDir, String(first.root.uid))), true, 'nor to another worker: still locked');
    pool.release(second);
    await until(() => pool.stats().images[IMAGE]!.destroyed === 1, 5000, 5, 'the second destroyed');
    assert.equal(pool.stats().images[IMAGE]!.uidsWithheld, 1, "a teardown that succeeds gives its uid back as before");
  });
});

test("a slot whose prepare failed and whose root would not go keeps its uid leased by its worker, never handed to another slot", { skip }, async () => {
  // The first prepare fails leaving a file in its slot dir, whose removal (the agent's rmdir)
  // then fails as a root held busy would; the second fails cleanly; the third succeeds.
  const uids: number[] = [];
  const container = {
    prepare: async (_image: string, root: PreparedRoot) => {
      uids.push(root.uid);
      if (uids.length === 1) writeFileSync(join(root.slotDir, 'left by the prepare'), '');
      if (uids.length <= 2) throw new Error(`prepare ${uids.length} failed`);
      return 'container';
    },
    destroy: async () => undefined,
  };
  await withStandInContainers(container, async (pool, uidLeaseDir) => {
    await assert.rejects(pool.take(IMAGE), /^Error: prepare 1 failed$/);
    assert.equal(pool.stats().images[IMAGE]!.uidsWithheld, 1, 'its uid withheld');
    await assert.rejects(pool.take(IMAGE), /^Error: prepare 2 failed$/);
    assert.equal(pool.stats().images[IMAGE]!.uidsWithheld, 1, 'a root that went gives its uid back');
    const slot = await pool.take(IMAGE);
    assert.deepEqual([uids[1], slot.root.uid], [uids[0]! + 1, uids[1]], "the one given back is taken again, the withheld one neither by the next slot's prepare nor by the one after");
    assert.equal(isLockFileHeld(join(uidLeaseDir, String(uids[0]))), true, 'nor by another worker: still locked');
    pool.release(slot);
  });
});

test("a pool's start removes the uid lease files an earlier version left in its state root, but held ones", { skip }, async () => {
  const scratch = makeScratch();
  const oldDir = join(scratch.stateRoot, 'uids');
  const heldLease = join(oldDir, String(SANDBOX_UID + 1));
  let heldFd: number | undefined;
  try {
    mkdirSync(oldDir, { recursive: true });
    for (const uid of [SANDBOX_UID, SANDBOX_UID + 1, SANDBOX_UID + SANDBOX_UID_COUNT - 1]) writeFileSync(join(oldDir, String(uid)), '');
    // Not a lease file of ours: a uid out of the range, another name.
    for (const name of [String(SANDBOX_UID + SANDBOX_UID_COUNT), 'notes']) writeFileSync(join(oldDir, name), '');
    // A worker of the earlier version, still running on this state root, holds its lease.
    heldFd = holdLockFile(heldLease);
    const uidLeaseDir = join(scratch.dir, 'uid-leases');
    const pool = await createPool({ stateRoot: scratch.stateRoot, uidLeaseDir, rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }) });
    await pool.close();
    assert.deepEqual(readdirSync(oldDir).sort(), [String(SANDBOX_UID + 1), String(SANDBOX_UID + SANDBOX_UID_COUNT), 'notes'].sort());
    closeSync(heldFd);
    heldFd = undefined;
    // That worker gone, the next start removes its file too; the dir stays (an older worker that
    // started on this state root made it once, and could not lease without it).
    const next = await createPool({ stateRoot: scratch.stateRoot, uidLeaseDir, rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }) });
    await next.close();
    assert.deepEqual(readdirSync(oldDir).sort(), [String(SANDBOX_UID + SANDBOX_UID_COUNT), 'notes'].sort());
  } finally {
    if (heldFd !== undefined) closeSync(heldFd);
    scratch.remove();
  }
});

test('1000 jobs through the pool leave no mounts and no slot dirs', { skip }, async () => {
  await withPool({ minReady: 2, maxReady: 4 }, async (pool) => {
    const baseline = mountsMentioning(pool.stateDir).length; // the owner's slots tmpfs
    for (let i = 0; i < 1000; i++) {
      const slot = await pool.take(IMAGE);
      writeFileSync(join(slot.root.workDirHostPath, 'f'), String(i));
      pool.release(slot);
    }
    const s = pool.stats().images[IMAGE]!;
    // Settled: no refill in flight (its mounts would count) and every used slot torn down.
    await until(() => {
      const now = pool.stats().images[IMAGE]!;
      return now.preparing === 0 && now.destroyed === now.prepared - now.ready;
    });
    assert.equal(s.hits + s.misses, 1000);
    const ready = pool.stats().images[IMAGE]!.ready;
    // Each ready slot holds two mounts (its tmpfs and its overlay); nothing else is left.
    assert.equal(mountsMentioning(pool.stateDir).length, baseline + 2 * ready);
  });
});

test("a pool whose mount agent is killed: takes are refused, a slot taken before serves on, nothing is refilled, and close unmounts everything", { skip }, async () => {
  const scratch = makeScratch();
  try {
    const errors: unknown[] = [];
    const destroyed: string[] = [];
    let containers = 0;
    const pool = await createPool<string>({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 2, maxReady: 2 },
      container: { prepare: async () => `container ${++containers}`, destroy: async (c) => void destroyed.push(c) },
      onBackgroundError: (err) => errors.push(err),
    });
    pool.warm(IMAGE);
    await until(() => pool.stats().images[IMAGE]?.ready === 2, 5000, 5, 'two slots ready');
    const taken = await pool.take(IMAGE);
    const [agent, ...others] = mountAgentPids();
    assert.ok(agent !== undefined && others.length === 0, 'one mount agent');
    assert.equal(pool.unusable, undefined);

    process.kill(agent, 'SIGKILL');
    const cause = await pool.lost;
    assert.equal(cause.code, 'EAGENTLOST');
    assert.match(cause.message, /mount agent exited \(code null, signal SIGKILL\)/);
    assert.equal(pool.unusable, cause);
    // A ready slot is there, but is not handed out.
    assert.equal(pool.stats().images[IMAGE]!.ready, 1);
    await assert.rejects(pool.take(IMAGE), (err: Error & { code?: string }) => err.name === 'PoolError' && err.code === 'EAGENTLOST');
    // The slot taken before serves its job: its mounts do not need the agent.
    writeFileSync(join(taken.root.workDirHostPath, 'out'), 'written after the agent died');
    assert.equal(readFileSync(join(taken.root.rootDir, 'etc/layer'), 'utf8'), 'top\n');
    // The owner dir's lock went with the agent: from now on another owner may reclaim the dir.
    assert.equal(isLockFileHeld(join(pool.stateDir, 'lock')), false);

    pool.release(taken);
    await until(() => destroyed.length === 1, 5000, 5, "the used slot's container destroyed");
    // Refills stop: each would fail (and be logged) every failure backoff.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(pool.stats().images[IMAGE]!.prepareFailures, 0);
    assert.deepEqual(errors, [], 'no background error: the used root is left for close');
    assert.ok(mountsMentioning(taken.root.slotDir).length > 0, 'its root stays mounted until close');

    await pool.close();
    assert.deepEqual(destroyed.sort(), ['container 1', 'container 2'], 'the ready slot\'s container destroyed too');
    assert.deepEqual(mountsMentioning(scratch.dir), [], 'every mount of the pool removed, through an agent of its own');
    assert.equal(existsSync(pool.stateDir), false, 'and its owner dir');
    assert.deepEqual(mountAgentPids(), [], 'which is gone too');
  } finally {
    // Whatever a failed run left: reclaimed by a new pool's start.
    if (mountsMentioning(scratch.dir).length > 0) {
      await (await createPool({ stateRoot: scratch.stateRoot, rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }), sizing: { minReady: 0, maxReady: 0 } })).close();
    }
    scratch.remove();
  }
});

test('a state root on a kernel filesystem is refused before the mount agent starts, at once', () => {
  // A recursive mkdirSync under /proc never returned: in a process of its own, with a timeout.
  const pool = new URL('../../src/pool/index.ts', import.meta.url).pathname;
  const script = `import { createPool } from ${JSON.stringify(pool)};
    createPool({ stateRoot: '/proc/cellblock-pool-test/state', rootSpec: () => { throw new Error('no slot is made'); } })
      .then(() => process.stdout.write('made'), (error) => process.stdout.write(error.name + ': ' + error.message));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 5000, killSignal: 'SIGKILL' });
  assert.equal(run.signal, null, 'ended by itself within 5 s, not by the timeout');
  assert.match(run.stdout, /^DirectoryError: \/proc\/cellblock-pool-test\/state is on the kernel's proc filesystem \(\/proc\)/, run.stderr);
});
