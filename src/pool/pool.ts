// The pre-warmed pool: per image, roots (and, when a `container` preparer is given, whole
// containers on them) made ahead of time by this owner, each serving one job. Starting a pool
// reclaims what dead owners left behind, then claims this owner's state dir. The `image`
// the pool is given is a key that rootSpec and the preparer understand: the executor keeps one
// image's slots for its runs, its compiles and its interactive tests' connected runs apart (`gcc`,
// `gcc:compile`, `gcc:connected`), and the preparer may decline a key (the last: roots alone).
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { KeyedPool, type PrepareOccasion } from './keyed-pool.js';
import { MountAgent, DEFAULT_PYTHON_PATH } from './mount-agent.js';
import { destroyRoot, prepareRoot, type PreparedRoot, type RootSpec } from './root.js';
import { SlotUids } from './slot-uids.js';
import { makeDirectory } from '../make-directory.js';
import { claimOwnerDir, reclaimOwnerDir, reclaimStaleOwners, releaseOwnerDir, STATE_ROOT_MODE, type ReclaimReport } from './state-dir.js';
import { DEFAULT_UID_LEASE_DIR, removeOldUidLeases, UidLeases } from './uid-leases.js';
import { PoolError, type PoolSizing, type PoolStats } from './types.js';

/** What the pool adds on top of a root, e.g. the engine's pre-warmed container. */
export interface ContainerPreparer<C> {
  /** Whether slots of this key get a container; absent: all do (a slot without one is a root). */
  prepares?(image: string): boolean;
  prepare(image: string, root: PreparedRoot): Promise<C>;
  destroy(container: C): Promise<void>;
  /** Whether a ready slot's container can still run a job (SlotFactory.usable); absent: always. */
  usable?(container: C): boolean;
}

export interface PoolOptions<C = never> {
  /** Parent of every owner's state dir; shared by the owners of one machine. */
  stateRoot: string;
  /** Where slots' uids are leased (uid-leases.ts): one dir for every pool on the machine, whatever
   * its state root. Default /run/cellblock/uids. */
  uidLeaseDir?: string;
  /** How many uids from 60000 the pool may lease: for tests of a pool at the bound alone (the
   * images name 1024 of them, SANDBOX_UID_COUNT, the default). */
  uidCount?: number;
  /** How long refills pause at a shortage of uids: for tests alone (default 10 s). */
  uidShortageRefillPauseMs?: number;
  /** The image's layers and slot size; called for every slot, so it should be cheap. */
  rootSpec: (image: string) => RootSpec | Promise<RootSpec>;
  sizing?: Partial<PoolSizing> | ((image: string) => PoolSizing);
  refillConcurrency?: number;
  /** Most slots with a container (ContainerPreparer.prepares) ready or prepared ahead at once, over
   * all keys (KeyedPoolOptions.readyCap): each holds the worker's descriptors. Absent: no bound
   * but each key's maxReady. */
  maxReadyContainers?: number;
  failureBackoffMs?: number;
  pythonPath?: string;
  container?: ContainerPreparer<C>;
  /** Removes what dead owners left outside the pool's state dirs (their containers' cgroups);
   * called once at start, after the dead owners' roots were reclaimed. */
  reclaimStale?: () => Promise<unknown>;
  onBackgroundError?: (err: unknown, image: string) => void;
}

export interface PoolSlot<C = never> {
  image: string;
  root: PreparedRoot;
  container?: C;
}

export interface Pool<C = never> {
  readonly ownerId: string;
  readonly stateDir: string;
  /** What was reclaimed from dead owners at start. */
  readonly reclaimed: ReclaimReport;
  warm(image: string): void;
  take(image: string): Promise<PoolSlot<C>>;
  /** Gives a slot back after its one job: it is destroyed and replaced in the background. */
  release(slot: PoolSlot<C>): void;
  stats(): PoolStats;
  /** Settles (never rejects) when the pool can make no more slots: its mount agent died (see
   * "The pool's mount agent" in docs/theory-of-operation.md). From then on every take is refused
   * (PoolError EAGENTLOST), slots already taken can serve their jobs to the end (the worker stops
   * them: QueueWorker.stoppedByItself), and close() removes what the pool had mounted through a
   * new agent of its own. */
  readonly lost: Promise<PoolError>;
  /** Why the pool can make no more slots; undefined while it can. */
  readonly unusable: PoolError | undefined;
  close(): Promise<void>;
}

export const DEFAULT_SIZING: PoolSizing = { minReady: 1, maxReady: 4, idleShrinkMs: 30_000 };

function slotName(image: string, seq: number): string {
  return `${image.replace(/[^A-Za-z0-9_.-]/g, '_')}-${seq}`;
}

export async function createPool<C = never>(options: PoolOptions<C>): Promise<Pool<C>> {
  // Resolved once: /proc/self/mountinfo names mount points by their real paths, and the dirs are
  // matched against it (a stateRoot through a symlink found no mounts to reclaim, and the removal
  // then walked into a dead owner's mounted slots). Made by makeDirectory, which refuses a path on
  // a kernel filesystem (a recursive mkdirSync under /proc never returned) or under a file.
  makeDirectory(options.stateRoot, STATE_ROOT_MODE);
  const stateRoot = realpathSync(options.stateRoot);
  const agent = await MountAgent.start(options.pythonPath ?? DEFAULT_PYTHON_PATH);
  let owner: Awaited<ReturnType<typeof claimOwnerDir>> | undefined;
  try {
    // What dead owners left first: their files may be what leaves no room for this owner's dir.
    const reclaimed = await reclaimStaleOwners(agent, stateRoot);
    owner = await claimOwnerDir(agent, stateRoot);
    const ownerDir = owner;
    await options.reclaimStale?.();
    const uidLeaseDir = options.uidLeaseDir ?? DEFAULT_UID_LEASE_DIR;
    await removeOldUidLeases(agent, stateRoot, uidLeaseDir);
    const sizingOption = options.sizing;
    const sizing =
      typeof sizingOption === 'function' ? sizingOption : () => ({ ...DEFAULT_SIZING, ...(sizingOption ?? {}) });
    let seq = 0;
    const container = options.container;
    const uids = new UidLeases(agent, uidLeaseDir, { count: options.uidCount });
    let unusable: PoolError | undefined;
    const prepareSlot = async (image: string, occasion: PrepareOccasion): Promise<PoolSlot<C>> => {
      const spec = await options.rootSpec(image);
      const uid = await slotUids.lease(image, occasion);
      const slotDir = join(ownerDir.slotsDir, slotName(image, ++seq));
      // A miss's job waits for its root: looking up its start-up paths first would only move the
      // program's own lookups ahead of it, at the agent's cost per path (~2-4 us) on top.
      const startupPaths = occasion === 'onTheSpot' ? undefined : spec.startupPaths;
      let root: PreparedRoot;
      try {
        root = await prepareRoot(agent, slotDir, { ...spec, startupPaths, uid });
      } catch (err) {
        // (Given back as any slot's: not once the agent died, whose release would throw in place of err.)
        await slotUids.giveBack(image, uid, true);
        throw err;
      }
      if (!container || container.prepares?.(image) === false) return { image, root };
      try {
        return { image, root, container: await container.prepare(image, root) };
      } catch (err) {
        // A root that will not go is held busy, by processes the failed prepare may have left.
        const rootGone = await destroyRoot(agent, root).then(
          () => true,
          () => false,
        );
        await slotUids.giveBack(image, uid, rootGone);
        throw err;
      }
    };
    const destroySlot = async (slot: PoolSlot<C>): Promise<void> => {
      // The container first: its processes may hold the root busy. The root goes even when the
      // container's teardown failed (destroyRoot detaches a busy one), else its mounts would
      // stay until close, and close would fail on them.
      let tornDown = false;
      try {
        if (container && slot.container !== undefined) await container.destroy(slot.container);
        tornDown = true;
      } finally {
        // Without the agent the root cannot be unmounted here: close() removes it with the rest.
        if (!unusableNow()) {
          let rootGone = false;
          try {
            await destroyRoot(agent, slot.root);
            rootGone = true;
          } finally {
            await slotUids.giveBack(slot.image, slot.root.uid, tornDown && rootGone);
          }
        }
      }
    };
    const keyed = new KeyedPool<PoolSlot<C>>(
      {
        prepare: prepareSlot,
        destroy: destroySlot,
        ...(container?.usable ? { usable: (slot: PoolSlot<C>) => slot.container === undefined || container.usable!(slot.container) } : {}),
      },
      {
        sizing,
        refillConcurrency: options.refillConcurrency ?? 1,
        failureBackoffMs: options.failureBackoffMs ?? 1000,
        ...(container && options.maxReadyContainers !== undefined
          ? { readyCap: { slots: options.maxReadyContainers, counts: (image: string) => container.prepares?.(image) !== false } }
          : {}),
        onBackgroundError: (err, image) => {
          if (!slotUids.saidAlready(err)) options.onBackgroundError?.(err, image);
        },
      },
    );
    // After keyed, on whose slots its rules act (refills paused, idle slots destroyed, withheld uids
    // counted with their key's figures); keyed calls on it only once the pool is made.
    const slotUids = new SlotUids(uids, keyed, { refillPauseMs: options.uidShortageRefillPauseMs, agentLost: () => unusableNow() !== undefined });
    /** Why the pool can make no more slots, known as soon as the agent's end is (not a microtask
     * later: a take in between would be handed a slot). */
    const lostError = (cause: PoolError) => new PoolError('take', 'EAGENTLOST', `the pool can make no more slots (${cause.message})`);
    const unusableNow = (): PoolError | undefined => {
      const cause = agent.lostCause;
      if (cause && !unusable) {
        unusable = lostError(cause);
        keyed.stopRefills();
      }
      return unusable;
    };
    // Settled by the agent's exit, which says more than a write that failed before it (EPIPE).
    const lost = agent.lost.then((cause) => {
      unusableNow();
      return (unusable = lostError(cause));
    });

    return {
      ownerId: ownerDir.ownerId,
      stateDir: ownerDir.dir,
      reclaimed,
      warm: (image) => keyed.warm(image),
      // A ready slot is not handed out either: the agent held its uid's lease and the owner dir's
      // lock, which the kernel dropped with it, so another worker may lease that uid, or reclaim
      // the dir, from now on (its job goes back to the queue, for a worker whose pool stands).
      take: async (image) => {
        const refused = unusableNow();
        if (refused) throw refused;
        const slot = await keyed.take(image);
        // A slot prepared on the spot for this take may have had its lease dropped meanwhile.
        const lostMeanwhile = unusableNow();
        if (lostMeanwhile) {
          keyed.release(image, slot);
          throw lostMeanwhile;
        }
        return slot;
      },
      release: (slot) => keyed.release(slot.image, slot),
      stats: () => keyed.stats(),
      lost,
      get unusable() {
        return unusableNow();
      },
      close: async () => {
        try {
          await keyed.close();
          if (!unusableNow()) await releaseOwnerDir(agent, ownerDir);
        } catch (err) {
          // The agent died under the release: its mounts are removed as below.
          if (!unusableNow()) throw err;
        } finally {
          await agent.close();
        }
        if (unusableNow()) await reclaimOwnDir(options.pythonPath ?? DEFAULT_PYTHON_PATH, ownerDir.dir);
      },
    };
  } catch (err) {
    // A start-up that failed after claiming its dir gives it back (its slots tmpfs included).
    if (owner) await releaseOwnerDir(agent, owner).catch(() => undefined);
    await agent.close();
    throw err;
  }
}

/** After its agent died: removes this owner's dir as a new owner would reclaim a dead one's,
 * through an agent started for this alone. The mounts are still in this process's mount
 * namespace (the agent shares it: a dead agent takes none with it), but Node cannot unmount
 * them itself. One attempt, and no new agent is kept: one that cannot start (or whatever killed
 * the first kills this one) leaves the dir, whose lock is free, to the next owner's start, which
 * reclaims it. A dir whose lock another holds is being reclaimed by that owner now. */
async function reclaimOwnDir(pythonPath: string, dir: string): Promise<void> {
  let cleanup: MountAgent;
  try {
    cleanup = await MountAgent.start(pythonPath);
  } catch (err) {
    throw new PoolError('close', 'EAGENTLOST', `the mount agent died, and another to unmount ${dir} could not start (${(err as Error).message}): the next pool start on this state dir reclaims it`);
  }
  try {
    await reclaimOwnerDir(cleanup, dir);
  } finally {
    await cleanup.close();
  }
}
