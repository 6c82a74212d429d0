// UidLeases against a fake mount agent: flocks kept in a table that several "workers" (agents)
// share, as the machine's lease dir is shared. No kernel needed. Last, the lease files themselves,
// with real agents and flocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLockFileHeld } from '../../src/lock-file.js';
import { DirectoryError } from '../../src/make-directory.js';
import { MountAgent } from '../../src/pool/mount-agent.js';
import { SANDBOX_UID } from '../../src/pool/root.js';
import { isUidShortage, UIDS_KEPT_FREE, UidLeases } from '../../src/pool/uid-leases.js';

/** One machine's flocks: lease file path → the agent holding it. */
class FakeMachine {
  readonly locks = new Map<string, { agent: FakeAgent; lockId: number }>();
  readonly dir = mkdtempSync(join(tmpdir(), 'cellblock-uidtest-'));
  agent(): FakeAgent {
    return new FakeAgent(this);
  }
  /** The uids whose lease files `agent` holds the lock of. */
  heldBy(agent: FakeAgent): number[] {
    return [...this.locks].filter(([, lock]) => lock.agent === agent).map(([path]) => Number(path.slice(this.dir.length + 1))).sort((a, b) => a - b);
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Answers lock and unlock as mount-agent.py does (a lock held elsewhere: not acquired). */
class FakeAgent {
  private nextLockId = 1;
  readonly requests: string[] = [];
  constructor(private readonly machine: FakeMachine) {}
  async request(op: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.requests.push(op);
    if (op === 'lock') {
      const path = payload.path as string;
      if (this.machine.locks.has(path)) return { ok: true, acquired: false };
      const lockId = this.nextLockId++;
      this.machine.locks.set(path, { agent: this, lockId });
      return { ok: true, acquired: true, lockId };
    }
    if (op === 'unlock') {
      for (const [path, lock] of this.machine.locks) if (lock.agent === this && lock.lockId === payload.lockId) this.machine.locks.delete(path);
      return { ok: true };
    }
    throw new Error(`unexpected request ${op}`);
  }
}

async function leaseMany(leases: UidLeases, count: number): Promise<number[]> {
  const uids: number[] = [];
  for (let i = 0; i < count; i++) uids.push(await leases.lease());
  return uids;
}

/** Runs `body` on a fake machine of its own, removed after it. */
const onMachine = (body: (machine: FakeMachine) => Promise<void>) => async () => {
  const machine = new FakeMachine();
  try {
    await body(machine);
  } finally {
    machine.remove();
  }
};

test("an owner's uids follow its slots of now: past the few it keeps free, uids given back are unlocked", onMachine(async (machine) => {
  const agent = machine.agent();
  const leases = new UidLeases(agent, machine.dir);
  const peak = UIDS_KEPT_FREE + 24;
  const uids = await leaseMany(leases, peak);
  assert.equal(new Set(uids).size, peak);
  assert.equal(machine.heldBy(agent).length, peak);
  for (const uid of uids) await leases.release(uid);
  assert.equal(leases.held, UIDS_KEPT_FREE, 'the owner holds the ones it keeps free');
  assert.deepEqual(machine.heldBy(agent), uids.slice(-UIDS_KEPT_FREE).sort((a, b) => a - b), 'the last given back are kept, the rest unlocked');
  // Another worker on the machine leases the unlocked ones (its search starts at the range's start).
  const other = new UidLeases(machine.agent(), machine.dir);
  assert.deepEqual(await leaseMany(other, 3), uids.slice(0, 3));
}));

test('a lease dir that cannot be made (under a file): a DirectoryError naming the file, at once', onMachine(async (machine) => {
  const file = join(machine.dir, 'run');
  writeFileSync(file, '');
  assert.throws(
    () => new UidLeases(machine.agent(), join(file, 'cellblock', 'uids')),
    (error: unknown) => error instanceof DirectoryError && error.message === `${file}/cellblock/uids cannot be made: ${file} is not a directory`,
  );
}));

test('uids kept free are taken again oldest given back first, before any new lease', onMachine(async (machine) => {
  const agent = machine.agent();
  const leases = new UidLeases(agent, machine.dir, { keptFree: 3 });
  const uids = await leaseMany(leases, 5);
  assert.deepEqual(uids, [0, 1, 2, 3, 4].map((i) => SANDBOX_UID + i));
  for (const uid of uids) await leases.release(uid);
  assert.deepEqual(machine.heldBy(agent), uids.slice(2), 'the two given back first were unlocked');
  const locksBefore = agent.requests.filter((op) => op === 'lock').length;
  assert.deepEqual(await leaseMany(leases, 3), uids.slice(2), 'the kept ones, in the order given back');
  assert.equal(agent.requests.filter((op) => op === 'lock').length, locksBefore, 'no agent request for a kept one');
  // The list is empty now: the search goes on where it was, and leases anew.
  assert.equal(await leases.lease(), SANDBOX_UID + 5);
  assert.equal(leases.held, 4);
}));

test('a uid unlocked can be leased again by its owner', onMachine(async (machine) => {
  const agent = machine.agent();
  const leases = new UidLeases(agent, machine.dir, { keptFree: 0 });
  const first = await leases.lease();
  const released = leases.release(first);
  assert.equal(leases.held, 0, 'forgotten at once, before the agent answers');
  await released;
  assert.deepEqual(machine.heldBy(agent), []);
  // The search wraps round the whole range to come back to it.
  const others = await leaseMany(leases, 1024);
  assert.ok(others.includes(first), 'leased again');
  assert.equal(machine.heldBy(agent).length, 1024);
}));

test('a lease without search takes a kept uid alone: with none kept it is a shortage, asking the agent nothing', onMachine(async (machine) => {
  const agent = machine.agent();
  const leases = new UidLeases(agent, machine.dir);
  const uid = await leases.lease();
  await leases.release(uid);
  const requestsBefore = agent.requests.length;
  assert.equal(await leases.lease({ search: false }), uid, 'the kept one');
  await assert.rejects(leases.lease({ search: false }), (err) => isUidShortage(err));
  assert.equal(agent.requests.length, requestsBefore, 'no agent request');
  assert.equal(await leases.lease(), uid + 1, 'a search finds the next');
}));

test('a withheld uid stays locked by its owner, and is never leased again nor unlocked', onMachine(async (machine) => {
  const agent = machine.agent();
  const leases = new UidLeases(agent, machine.dir, { keptFree: 0, count: 4 });
  const [withheld, ...others] = await leaseMany(leases, 4);
  leases.withhold(withheld!);
  for (const uid of others) await leases.release(uid); // each unlocked at once (keptFree 0)
  assert.deepEqual(machine.heldBy(agent), [withheld]);
  assert.deepEqual([leases.held, leases.withheld], [1, 1]);
  // The search goes round the range again: the other three, never the withheld one.
  assert.deepEqual((await leaseMany(leases, 3)).sort(), others.sort());
  await assert.rejects(leases.lease(), (err) => isUidShortage(err));
  // Nor does another worker get it.
  await assert.rejects(new UidLeases(machine.agent(), machine.dir, { count: 4 }).lease(), (err) => isUidShortage(err));
}));

test("a uid's lease file stays when its lease ends, and another owner leases the uid through it", onMachine(async (machine) => {
  const [agent, otherAgent] = await Promise.all([MountAgent.start(), MountAgent.start()]);
  try {
    const leases = new UidLeases(agent, machine.dir, { keptFree: 0, count: 2 });
    const uid = await leases.lease();
    const path = join(machine.dir, String(uid));
    assert.equal(isLockFileHeld(path), true);
    await leases.release(uid); // unlocked at once (keptFree 0)
    assert.equal(existsSync(path), true, 'the file stays');
    assert.equal(isLockFileHeld(path), false, 'unlocked');
    assert.equal(await new UidLeases(otherAgent, machine.dir, { count: 2 }).lease(), uid, "another owner's lease of it");
  } finally {
    await Promise.all([agent.close(), otherAgent.close()]);
  }
}));
