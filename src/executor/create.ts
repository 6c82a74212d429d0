// Wiring: runtimes and images from src/images, slots from the pool, containers from the engine.
// With `prewarmContainers` (the default) every pool slot also holds a prepared container on its
// root (namespaces, cgroup joined, mounts and pivot done), so a job's critical path is files in,
// "go", run, reap; without it the engine builds the container when the stage starts. The slots of
// interactive tests' connected runs are roots alone either way (slot-keys.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openImageStore } from '../images/store.js';
import { loadRuntimes } from '../images/runtimes.js';
import type { Runtime } from '../images/types.js';
import { withVariants } from '../images/variants.js';
import { createPool, noRoomError, type PoolSizing, type PoolSlot } from '../pool/index.js';
import { createSandbox, type Limits, type PreparedContainer, type SandboxOptions } from '../sandbox/index.js';
import { MiB } from '../units.js';
import type { StageRunner } from './engine.js';
import { ExecutorError } from './errors.js';
import { CompileCache } from './compile-cache.js';
import { SubmissionExecutor, type Executor } from './executor.js';
import { defaultStageLimits } from './limits.js';
import { imageOfSlotKey, slotHoldsContainer, slotKey, startupPathsBySlotKey } from './slot-keys.js';

export interface ExecutorPoolOptions {
  /** Parent of the pool owners' state dirs. Default <dataDir>/pool. */
  stateRoot?: string;
  /** Per image. `{ minReady: 0, maxReady: 0 }` disables pre-warming: every slot is made on the spot. */
  sizing?: Partial<PoolSizing>;
  refillConcurrency?: number;
  /** Most pre-warmed containers ready at once, over all images (PoolOptions.maxReadyContainers):
   * what the worker's open files limit leaves room for (src/bin/host-limits.ts). Absent: no bound
   * but `sizing`'s per key. */
  maxReadyContainers?: number;
  /** Size of each slot's writable layer (the work dir and anything else the job writes to its root). */
  workDirBytes?: number;
  /** Also prepare the container on each pooled root (but connected runs' roots). Default true. */
  prewarmContainers?: boolean;
  /** Images to start warming at once (their run slots, and their compile slots where a runtime
   * compiles on them; connected runs' roots are made at an image's first interactive test).
   * Default: every built image a runtime uses. */
  warmImages?: string[];
}

export interface ExecutorOptions {
  dataDir: string;
  /** Default: images/runtimes/*.json. */
  runtimes?: Runtime[];
  pool?: ExecutorPoolOptions;
  sandbox?: SandboxOptions;
  /** Each stage's program moves to the background CPU weight once it has used this much CPU
   * time (StartSpec.backgroundAfterCpuMs). Default 0: never. */
  backgroundAfterCpuMs?: number;
  /** Failures of background pool work (refills, teardown), which no job waits for. */
  onBackgroundError?: (err: unknown, image: string) => void;
  /** SubmissionExecutorOptions.maxJobOutputBytes. */
  maxJobOutputBytes?: number;
  /** The budget of the kept judge compiles (CompileCache), in the pool owner's state dir; 0 keeps
   * none, as when absent (the service's default is its configuration's,
   * CELLBLOCK_JUDGE_COMPILE_CACHE_BYTES). */
  judgeCompileCacheBytes?: number;
  /** A judge program's compile that could not be kept for the host's reason (the state dir's
   * filesystem full, say), once per spell of such failures (CompileCache's onKeepFailed). */
  onJudgeCompileNotKept?: (err: unknown) => void;
}

export const DEFAULT_WORK_DIR_BYTES = 256 * MiB;

type Slot = PoolSlot<PreparedContainer>;

export async function createExecutor(options: ExecutorOptions): Promise<Executor> {
  const runtimes = options.runtimes ?? loadRuntimes();
  const store = openImageStore(options.dataDir);
  const poolOptions = options.pool ?? {};
  const workDirBytes = poolOptions.workDirBytes ?? DEFAULT_WORK_DIR_BYTES;
  const layerPaths = new Map<string, string[]>();
  const startupPaths = startupPathsBySlotKey(runtimes);
  const rootSpec = (key: string) => {
    const image = imageOfSlotKey(key);
    let paths = layerPaths.get(image);
    // The image as this process first read it, while its layers are there: a rebuild leaves the
    // old ones, and `images prune` removes them once no root has them mounted (a pool that
    // emptied), after which this process takes the image's current build.
    if (!paths || !paths.every((layer) => existsSync(layer))) {
      const built = store.get(image);
      if (!built) throw new ExecutorError('unknown_image', `image ${JSON.stringify(image)} is not built (cellblock images build ${image})`);
      paths = built.layerPaths;
      layerPaths.set(image, paths);
    }
    return { layerPaths: paths, upperBytes: workDirBytes, startupPaths: startupPaths.get(key) ?? [] };
  };

  // A pre-warmed container gets its stage's default limits ahead (cgroup limits, /tmp's size), so
  // that a stage with the defaults writes nothing to the cgroup on its critical path. Where
  // runtimes on one image differ, the first one's.
  const expectedLimits = new Map<string, Limits>();
  const expect = (key: string, limits: Limits) => {
    if (!expectedLimits.has(key)) expectedLimits.set(key, limits);
  };
  for (const runtime of withVariants(runtimes)) {
    const limits = defaultStageLimits(runtime);
    expect(slotKey(runtime.image, 'run'), limits.run);
    if (limits.compile) expect(slotKey(runtime.image, 'compile'), limits.compile);
  }

  const poolStateRoot = poolOptions.stateRoot ?? join(options.dataDir, 'pool');
  const sandbox = createSandbox(options.sandbox);
  const prewarm = poolOptions.prewarmContainers ?? true;
  try {
    const pool = await createPool<PreparedContainer>({
      stateRoot: poolStateRoot,
      rootSpec,
      sizing: poolOptions.sizing,
      refillConcurrency: poolOptions.refillConcurrency,
      ...(poolOptions.maxReadyContainers !== undefined ? { maxReadyContainers: poolOptions.maxReadyContainers } : {}),
      onBackgroundError: options.onBackgroundError,
      reclaimStale: () => sandbox.cleanupStale(),
      container: prewarm
        ? {
            prepares: slotHoldsContainer,
            prepare: (key, root) =>
              sandbox.prepare({ rootDir: root.rootDir, workDirHostPath: root.workDirHostPath, workDir: root.workDir, uid: root.uid, limits: expectedLimits.get(key) }),
            destroy: (container) => container.destroy(),
            usable: (container) => container.usable,
          }
        : undefined,
    });
    const onRoot = (slot: Slot) => ({ rootDir: slot.root.rootDir, workDirHostPath: slot.root.workDirHostPath, workDir: slot.root.workDir, uid: slot.root.uid });
    const runner: StageRunner<PreparedContainer> = {
      run: (slot: Slot, stage) => (slot.container ? slot.container.start(stage) : sandbox.run({ ...onRoot(slot), ...stage })),
      // The pipes are given when a container is prepared: these slots are roots alone (slot-keys.ts,
      // `connected`), their containers made here.
      runConnected: (first: Slot, firstStage, second: Slot, secondStage) =>
        sandbox.runConnected({ ...onRoot(first), ...firstStage }, { ...onRoot(second), ...secondStage }),
      runStreaming: (slot: Slot, stage, io, terminal) => sandbox.runStreaming({ ...onRoot(slot), ...stage }, io, terminal),
    };
    const judgeCompileCacheBytes = options.judgeCompileCacheBytes ?? 0;
    // A compile is kept with the layers a compile slot of its image would be given now.
    const imageBuild = (image: string) => rootSpec(slotKey(image, 'compile')).layerPaths.join('\n');
    let judgeCompiles: CompileCache | undefined;
    try {
      if (judgeCompileCacheBytes > 0) {
        judgeCompiles = new CompileCache(join(pool.stateDir, 'judge-compiles'), judgeCompileCacheBytes, imageBuild, options.onJudgeCompileNotKept);
      }
    } catch (err) {
      await pool.close();
      // Its dir is the pool's state dir's last inode or block to be had (the owner dir's came first).
      throw noRoomError(poolStateRoot, err);
    }
    const warmImages = new Set(poolOptions.warmImages ?? runtimes.map((r) => r.image).filter((image) => store.get(image)));
    for (const key of expectedLimits.keys()) if (warmImages.has(imageOfSlotKey(key))) pool.warm(key);
    return new SubmissionExecutor(runtimes, pool, runner, {
      onClose: () => sandbox.close(),
      backgroundAfterCpuMs: options.backgroundAfterCpuMs ?? 0,
      cgroups: sandbox.cgroups,
      ...(options.maxJobOutputBytes !== undefined ? { maxJobOutputBytes: options.maxJobOutputBytes } : {}),
      ...(judgeCompiles ? { judgeCompiles } : {}),
    });
  } catch (err) {
    await sandbox.close();
    throw err;
  }
}
