// Builds images: for each image, its chain of layers from the base up. A layer whose hash is
// already stored is reused (an unchanged definition is a no-op); a missing one is built in a
// fresh build dir by its recipe and moved into place only when complete. A build stopped midway
// (`signal`: SIGINT or SIGTERM to `cellblock images build`) kills the running recipe, removes the
// unfinished layer's build dir and releases the lock; the finished layers stay, so the next build
// goes on from there. A builder killed outright leaves its build dir to the next build, which
// removes it (the lock, an flock, is released by its death).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
}

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
        await recipe('chroot-layer.sh', [lowerdir, root, join(buildDir, 'work'), join(buildDir, 'merged'), spec, join(store.cacheDir, 'apt')], apt ? proxyEnv(apt, env) : {});
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
  try {
    store.removeStaleBuildDirs();
    const outcomes: BuildOutcome[] = [];
    for (const name of wanted) {
      const plan = planImage(name, definitions, store, opts.definitionsDir, opts.env);
      const todo = plan.filter((l) => !l.stored);
      report({ image: name, phase: 'plan', message: todo.length ? `${todo.length} of ${plan.length} layer(s) to build` : `up to date (${plan.length} layer(s))` });
      const builtLayers: string[] = [];
      for (const [i, layer] of plan.entries()) {
        const tag = `layer ${i + 1}/${plan.length} ${layer.hash.slice(0, 12)} (${layer.image}: ${layer.definition.build.kind})`;
        if (store.hasLayer(layer.hash)) {
          report({ image: name, phase: 'cached', message: `${tag} stored` });
          continue;
        }
        opts.signal?.throwIfAborted();
        const started = Date.now();
        report({ image: name, phase: 'step', message: `${tag} building` });
        await buildLayer(layer, plan.slice(0, i).map((l) => l.hash), definitions, opts);
        builtLayers.push(layer.hash);
        report({ image: name, phase: 'step', message: `${tag} built in ${((Date.now() - started) / 1000).toFixed(1)} s` });
      }
      const image = store.recordImage(name, plan.map((l) => l.hash));
      report({ image: name, phase: 'done', message: `ready: ${image.hash.slice(0, 12)}` });
      outcomes.push({ image, builtLayers });
    }
    return outcomes;
  } catch (err) {
    report({ image: '*', phase: 'failed', message: (err as Error).message });
    throw err;
  } finally {
    release();
  }
}
