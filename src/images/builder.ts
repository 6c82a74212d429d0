// Builds images: for each image, its chain of layers from the base up. A layer whose hash is
// already stored is reused (an unchanged definition is a no-op); a missing one is built in a
// fresh build dir by its recipe and moved into place only when complete. A build stopped midway
// (`signal`: SIGINT or SIGTERM to `cellblock images build`) kills the running recipe, removes the
// unfinished layer's build dir and releases the lock; the finished layers stay, so the next build
// goes on from there. A builder killed outright leaves its build dir to the next build, which
// removes it (the lock, an flock, is released by its death).
// Images are built side by side, up to `layersAtOnce` layers at a time (each a debootstrap or an
// apt run in a chroot of its own, whose dpkg is mostly CPU: ~1.4x on two cores, DEFAULT_LAYERS_AT_ONCE);
// a layer two images share (the base) is built once, and both wait for it. The first failure
// stops the others.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { resolveAptSetup, renderSourcesList, proxyEnv } from './apt-config.js';
import { acquireBuildLock } from './build-lock.js';
import { ImageDefinitions } from './definitions.js';
import { BuildStoppedError, ImageBuildError } from './errors.js';
import { findHostBusybox } from './host-busybox.js';
import { layerHash } from './layer-hash.js';
import { openLog, runRecipe } from './run-recipe.js';
import { recipesDir as recipesDirOf } from './paths.js';
import type { ImageStore } from './store.js';
import type { BuildProgress, BuiltImage, ImageDefinition, LayerRecord } from './types.js';

export interface BuildOptions {
  store: ImageStore;
  definitionsDir: string;
  onProgress?: (progress: BuildProgress) => void;
  env?: NodeJS.ProcessEnv;
  /** How often a long step reports that it is still working. */
  heartbeatMs?: number;
  /** How long to wait for another build of the same data dir to finish. */
  lockWaitMs?: number;
  /** Stops the build (the promise rejects with the signal's reason, e.g. a BuildStoppedError). */
  signal?: AbortSignal;
  /** Layers built at once (DEFAULT_LAYERS_AT_ONCE). */
  layersAtOnce?: number;
}

/** Three layers at once: on a 2-vCPU machine here, every image from nothing (a fresh data dir, no
 * downloads kept) took 276 s one layer at a time and 212 s three at a time, run one after the
 * other (images/README.md, "Build time"): dpkg's work is mostly CPU, so two cores gain ~1.4x on
 * the language layers, and the base (debootstrap) is built alone before them. */
export const DEFAULT_LAYERS_AT_ONCE = 3;

export interface PlannedLayer {
  image: string;
  hash: string;
  definition: ImageDefinition;
  stored: boolean;
}

export interface BuildOutcome {
  image: BuiltImage;
  /** Layers this call built (the rest were stored already). */
  builtLayers: string[];
}

/** Hashes of an image's layers, base first, as its current definitions say. */
export function planImage(name: string, definitions: ImageDefinitions, store: ImageStore, definitionsDir: string, env: NodeJS.ProcessEnv = process.env): PlannedLayer[] {
  const recipesDir = recipesDirOf(definitionsDir);
  let parent: string | null = null;
  return definitions.chain(name).map((definition) => {
    const hostFiles: Record<string, string> = definition.build.kind === 'busybox' ? { busybox: findHostBusybox(definition.name, env).digest } : {};
    const hash: string = layerHash({ parent, build: definition.build, recipesDir, hostFiles });
    parent = hash;
    return { image: definition.name, hash, definition, stored: store.hasLayer(hash) };
  });
}

function diskUsageBytes(dir: string): number {
  return Number(execFileSync('du', ['-s', '--block-size=1', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** Builds one layer on top of `below` (layer hashes, lowest first) and stores it. */
async function buildLayer(layer: PlannedLayer, below: string[], definitions: ImageDefinitions, opts: BuildOptions): Promise<void> {
  const { store } = opts;
  const env = opts.env ?? process.env;
  const recipesDir = recipesDirOf(opts.definitionsDir);
  const report = opts.onProgress ?? (() => {});
  const image = layer.image;
  const build = layer.definition.build;
  const buildDir = store.newBuildDir(layer.hash);
  const root = join(buildDir, 'root');
  const logPath = join(store.logsDir, `${layer.hash}.log`);
  const logFile = openLog(logPath);
  const started = Date.now();
  let lastLine = '';
  const heartbeat = setInterval(() => {
    const seconds = Math.round((Date.now() - started) / 1000);
    report({ image, phase: 'heartbeat', message: `still building layer ${layer.hash.slice(0, 12)} (${seconds} s)${lastLine ? `: ${lastLine.slice(0, 100)}` : ''}` });
  }, opts.heartbeatMs ?? 15_000);
  const recipe = (script: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> =>
    runRecipe({
      image, recipesDir, script, args, logFile, logPath, env: extraEnv, signal: opts.signal,
      onLine: (line) => {
        if (line.trim()) lastLine = line.trim();
        report({ image, phase: line.startsWith('==> ') ? 'step' : 'output', message: line.replace(/^==> /, '') });
      },
    });
  /** A step of the builder's own (not a recipe's line): in the progress and in the layer's log. */
  const step = (message: string): void => {
    logFile.write(`==> ${message}\n`);
    report({ image, phase: 'step', message });
  };
  try {
    switch (build.kind) {
      case 'debootstrap': {
        const apt = resolveAptSetup(build.suite, env);
        step(`Debian mirror ${apt.mirror} (from ${apt.origin})`);
        for (const note of apt.notes) step(note);
        await recipe('debootstrap-layer.sh', [root, build.suite, build.variant, apt.mirror, join(store.cacheDir, 'debootstrap'), build.include.join(',')], proxyEnv(apt, env));
        await recipe('finalize-root.sh', [root]);
        break;
      }
      case 'busybox':
        await recipe('busybox-layer.sh', [root, findHostBusybox(image, env).path]);
        await recipe('finalize-root.sh', [root]);
        break;
      case 'chroot': {
        const spec = join(buildDir, 'spec');
        for (const d of ['work', 'merged', 'spec']) mkdirSync(join(buildDir, d));
        writeFileSync(join(spec, 'packages'), build.packages.join('\n') + '\n');
        writeFileSync(join(spec, 'commands.sh'), build.commands.join('\n') + (build.commands.length ? '\n' : ''));
        const suite = definitions.debianSuite(image);
        const apt = build.packages.length > 0 && suite ? resolveAptSetup(suite, env) : undefined;
        for (const note of apt?.notes ?? []) step(note);
        writeFileSync(join(spec, 'sources.list'), apt ? renderSourcesList(apt.sources) : '');
        writeFileSync(join(spec, 'apt.conf'), apt ? apt.aptConf.join('\n') + '\n' : '');
        const lowerdir = below.map((h) => store.layerRoot(h)).reverse().join(':');
        await recipe('chroot-layer.sh', [lowerdir, root, join(buildDir, 'work'), join(buildDir, 'merged'), spec, aptCacheDir(store, image)], apt ? proxyEnv(apt, env) : {});
        for (const d of ['work', 'merged', 'spec']) rmSync(join(buildDir, d), { recursive: true, force: true });
        break;
      }
    }
    const record: LayerRecord = {
      hash: layer.hash,
      parent: below.length ? below[below.length - 1]! : null,
      build,
      sizeBytes: diskUsageBytes(root),
      buildMs: Date.now() - started,
      builtAt: new Date().toISOString(),
    };
    store.commitLayer(buildDir, record);
  } catch (err) {
    rmSync(buildDir, { recursive: true, force: true });
    if (opts.signal?.aborted) throw opts.signal.reason;
    // A helper of ours (du, sync) killed by a terminal's Ctrl-C, which signals our whole process
    // group, before our own handler has run (the recipe has a group of its own: run-recipe.ts).
    const killedBy = (err as { signal?: unknown }).signal;
    if (killedBy === 'SIGINT' || killedBy === 'SIGTERM') throw new BuildStoppedError(killedBy);
    if (err instanceof ImageBuildError) throw err;
    throw new ImageBuildError(image, 'store', (err as Error).message, logPath);
  } finally {
    clearInterval(heartbeat);
    await new Promise((resolve) => logFile.end(resolve));
  }
}

/** The downloaded packages of an image's layers, kept for its next build. One per image: apt
 * locks its archives directory for the whole install, so builds side by side cannot share one. */
function aptCacheDir(store: ImageStore, image: string): string {
  return join(store.cacheDir, 'apt', image);
}

/** Before each image had its own (2026-12-07), every image's .debs were kept in cache/apt itself:
 * no build reads those now. */
function removeSharedAptCache(store: ImageStore): void {
  const dir = join(store.cacheDir, 'apt');
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) rmSync(join(dir, entry.name), { force: true });
  }
}

/**
 * Builds the named images (all defined images when `names` is empty), each with its whole chain
 * of layers, and records them in the store. Layers already stored are not rebuilt.
 */
export async function buildImages(names: string[], opts: BuildOptions): Promise<BuildOutcome[]> {
  const { store } = opts;
  const report = opts.onProgress ?? (() => {});
  const definitions = ImageDefinitions.load(opts.definitionsDir);
  const wanted = names.length ? names : definitions.names();
  for (const name of wanted) definitions.get(name); // unknown names fail before any work
  store.ensureDirs();
  const release = await acquireBuildLock(
    store.dataDir,
    opts.lockWaitMs ?? 30 * 60_000,
    (holder) => report({ image: '*', phase: 'plan', message: `waiting for another build${holder === undefined ? '' : ` (pid ${holder})`} of ${store.dataDir}` }),
    opts.signal,
  );
  // The first failure aborts the layers building beside it (their recipes killed, their build
  // dirs removed), and is the one thrown once they have stopped.
  const stopOthers = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stopOthers.signal]) : stopOthers.signal;
  const slots = new Slots(opts.layersAtOnce ?? DEFAULT_LAYERS_AT_ONCE);
  /** Each layer's build, by hash, whichever image asked first. */
  const building = new Map<string, Promise<void>>();
  const buildImage = async (name: string): Promise<BuildOutcome> => {
    const plan = planImage(name, definitions, store, opts.definitionsDir, opts.env);
    const todo = plan.filter((l) => !l.stored);
    report({ image: name, phase: 'plan', message: todo.length ? `${todo.length} of ${plan.length} layer(s) to build` : `up to date (${plan.length} layer(s))` });
    const builtLayers: string[] = [];
    for (const [i, layer] of plan.entries()) {
      const tag = `layer ${i + 1}/${plan.length} ${layer.hash.slice(0, 12)} (${layer.image}: ${layer.definition.build.kind})`;
      const shared = building.get(layer.hash);
      if (shared) {
        await shared;
        continue;
      }
      if (store.hasLayer(layer.hash)) {
        report({ image: name, phase: 'cached', message: `${tag} stored` });
        continue;
      }
      const built = slots.run(async () => {
        signal.throwIfAborted();
        const started = Date.now();
        report({ image: name, phase: 'step', message: `${tag} building` });
        await buildLayer(layer, plan.slice(0, i).map((l) => l.hash), definitions, { ...opts, signal });
        report({ image: name, phase: 'step', message: `${tag} built in ${((Date.now() - started) / 1000).toFixed(1)} s` });
      });
      building.set(layer.hash, built);
      await built;
      builtLayers.push(layer.hash);
    }
    const image = store.recordImage(name, plan.map((l) => l.hash));
    report({ image: name, phase: 'done', message: `ready: ${image.hash.slice(0, 12)}` });
    return { image, builtLayers };
  };
  try {
    store.removeStaleBuildDirs();
    removeSharedAptCache(store);
    let firstFailure: { error: unknown } | undefined;
    const settled = await Promise.allSettled(
      wanted.map((name) =>
        buildImage(name).catch((error: unknown) => {
          if (!firstFailure) {
            firstFailure = { error };
            stopOthers.abort(error);
          }
          throw error;
        }),
      ),
    );
    if (firstFailure) throw opts.signal?.aborted ? opts.signal.reason : firstFailure.error;
    return settled.map((outcome) => (outcome as PromiseFulfilledResult<BuildOutcome>).value);
  } catch (err) {
    report({ image: '*', phase: 'failed', message: (err as Error).message });
    throw err;
  } finally {
    release();
  }
}

/** At most `size` tasks at a time; the rest wait in order. */
class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`layers at once must be a whole number, at least 1 (got ${size})`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
