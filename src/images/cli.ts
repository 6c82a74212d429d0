// `cellblock images build [names...]` and `cellblock images list`. Also runnable directly:
// `node --import tsx src/images/cli.ts build python`.
import { realpathSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildImages, DEFAULT_LAYERS_AT_ONCE, planImage } from './builder.js';
import { ImageDefinitions } from './definitions.js';
import { pruneLayers } from './prune.js';
import { BuildStoppedError, DataDirError, ImageBuildError, ImageDefinitionError, ImageStoreError, UnknownImageError } from './errors.js';
import { dataDirFromEnv, defaultDefinitionsDir } from './paths.js';
import { openImageStore, type ImageStore } from './store.js';
import type { BuildProgress } from './types.js';

const USAGE = `usage: cellblock images build [--verbose] [--data-dir DIR] [--layers-at-once N] [name...]
       cellblock images list [--data-dir DIR]
       cellblock images prune [--data-dir DIR]   (remove layers no image uses and nothing mounts)
Images live in --data-dir, else $CELLBLOCK_DATA_DIR, else /var/lib/cellblock.
--layers-at-once: how many layers build side by side (default ${DEFAULT_LAYERS_AT_ONCE}).`;

interface Options {
  command: string | undefined;
  names: string[];
  verbose: boolean;
  dataDir: string;
  /** Where dataDir came from, for a refusal of it: `--data-dir`, or the variable (also when unset
   * and its default is taken: setting it is the remedy). */
  dataDirFrom: string;
  layersAtOnce: number;
}

function parse(argv: string[]): Options | string {
  const opts: Options = { command: undefined, names: [], verbose: false, dataDir: dataDirFromEnv(), dataDirFrom: 'CELLBLOCK_DATA_DIR', layersAtOnce: DEFAULT_LAYERS_AT_ONCE };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--verbose' || arg === '-v') opts.verbose = true;
    else if (arg === '--data-dir') {
      const dir = argv[++i];
      if (!dir) return '--data-dir needs a directory';
      opts.dataDir = dir;
      opts.dataDirFrom = '--data-dir';
    } else if (arg === '--layers-at-once') {
      const count = argv[++i];
      if (!count || !/^[1-9][0-9]{0,2}$/.test(count)) return '--layers-at-once needs a whole number from 1 to 999';
      opts.layersAtOnce = Number(count);
    } else if (arg === '--help' || arg === '-h') return '';
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else if (opts.command === undefined) opts.command = arg;
    else opts.names.push(arg);
  }
  return opts;
}

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

function printProgress(verbose: boolean): (p: BuildProgress) => void {
  return (p) => {
    // A failure is printed once, as the command's error.
    if ((p.phase === 'output' && !verbose) || p.phase === 'failed') return;
    const at = new Date().toISOString().slice(11, 19);
    process.stdout.write(`${at} ${p.image}: ${p.phase === 'output' ? '  ' : ''}${p.message}\n`);
  };
}

/**
 * SIGINT (Ctrl-C) and SIGTERM (`docker compose down`, systemd) stop a build in order: the first
 * aborts `signal` (with a BuildStoppedError), and the build kills its recipe, removes the
 * unfinished layer and releases the lock; a second exits at once (the kernel releases the lock,
 * an flock, and the recipe dies with the builder: setpriv --pdeathsig). Until `dispose`.
 */
function stopOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handle = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(128 + constants.signals[signal]);
    process.stderr.write(`cellblock images: ${signal}: stopping the build\n`);
    controller.abort(new BuildStoppedError(signal));
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handle);
      process.off('SIGTERM', handle);
    },
  };
}

/** `images build`: its exit status (128 + the signal's number when a signal stopped it). Takes
 * the definitions dir as an argument for tests. */
export async function buildCommand(names: string[], store: ImageStore, definitionsDir: string, verbose: boolean, layersAtOnce = DEFAULT_LAYERS_AT_ONCE): Promise<number> {
  const started = Date.now();
  const stop = stopOnSignals();
  try {
    const outcomes = await buildImages(names, { store, definitionsDir, onProgress: printProgress(verbose), signal: stop.signal, layersAtOnce });
    const built = outcomes.reduce((n, o) => n + o.builtLayers.length, 0);
    process.stdout.write(`images: ${outcomes.length} image(s) ready, ${built} layer(s) built, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof BuildStoppedError)) throw err;
    process.stderr.write(`cellblock images: ${err.message}\n`);
    return 128 + constants.signals[err.signal];
  } finally {
    stop.dispose();
  }
}

function list(store: ImageStore): void {
  const definitions = ImageDefinitions.load(defaultDefinitionsDir());
  const rows = [['IMAGE', 'STATUS', 'HASH', 'LAYERS', 'SIZE', 'BUILT', 'DESCRIPTION']];
  for (const name of definitions.names()) {
    const built = store.get(name);
    let plan: ReturnType<typeof planImage>;
    try {
      plan = planImage(name, definitions, store, defaultDefinitionsDir());
    } catch (err) {
      // e.g. no busybox on this host: the other images are still worth listing.
      rows.push([name, 'unbuildable', '-', '-', '-', '-', (err as Error).message]);
      continue;
    }
    const current = plan[plan.length - 1]!.hash;
    const status = !built ? 'not built' : built.hash === current ? 'built' : 'stale';
    const hashes = built ? store.layerHashes(name)! : [];
    const sizeBytes = hashes.reduce((sum, h) => sum + (store.layerRecord(h)?.sizeBytes ?? 0), 0);
    rows.push([
      name, status, (built?.hash ?? current).slice(0, 12), String(plan.length),
      built ? mib(sizeBytes) : '-', built?.builtAt.slice(0, 19) ?? '-', definitions.get(name).description,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) process.stdout.write(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ') + '\n');
  const layers = store.layers();
  const total = layers.reduce((sum, h) => sum + (store.layerRecord(h)?.sizeBytes ?? 0), 0);
  process.stdout.write(`${layers.length} layer(s) stored in ${store.layersDir}, ${mib(total)} on disk\n`);
}

export async function imagesCommand(argv: string[]): Promise<number> {
  const opts = parse(argv);
  if (opts === '') {
    // Asked for (--help): an answer, on stdout, as `cellblock --help`'s.
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (typeof opts === 'string') {
    process.stderr.write(`cellblock images: ${opts}\n${USAGE}\n`);
    return 2;
  }
  try {
    const store = openImageStore(opts.dataDir);
    switch (opts.command) {
      case 'build':
        return await buildCommand(opts.names, store, defaultDefinitionsDir(), opts.verbose, opts.layersAtOnce);
      case 'list':
        list(store);
        return 0;
      case 'prune': {
        const report = await pruneLayers(store);
        for (const h of report.keptMounted) process.stdout.write(`kept ${h.slice(0, 12)}: still mounted\n`);
        process.stdout.write(`images: removed ${report.removed.length} unused layer(s), ${mib(report.freedBytes)} freed\n`);
        return 0;
      }
      default:
        process.stderr.write(`cellblock images: ${opts.command ? `unknown command "${opts.command}"` : 'a command is needed'}\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof DataDirError) {
      process.stderr.write(`cellblock images: ${opts.dataDirFrom}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof ImageBuildError || err instanceof ImageDefinitionError || err instanceof ImageStoreError || err instanceof UnknownImageError) {
      process.stderr.write(`cellblock images: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Run directly (not imported by the cellblock command).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await imagesCommand(process.argv.slice(2));
}
