// The image store in the data directory. Layout:
//   layers/<hash>/root/       a layer's files: an overlay upper dir (whiteouts and opaque dirs
//                             included) or a base tree; used as-is as an overlay lowerdir
//   layers/<hash>/layer.json  LayerRecord: parent, build step, size, build time
//   layers/.build-*           layers being built; never used, removed when a build ends or fails
//   layers/.prune-*           layers being deleted by `images prune`
//   images/<name>.json        an image: its layer hashes, lowest (base) first (written as
//                             <name>.json.tmp-<pid>, synced, renamed)
//   cache/                    downloaded .deb files, so that rebuilds do not download again
//                             (apt moves a download there only once whole and checked;
//                             debootstrap checks a cached .deb's checksum before using it)
//   logs/<hash>.log           the output of the last build of a layer
//   build.lock                one build at a time (build-lock.ts: an flock, which the
//                             builder's death releases)
// A layer appears under its hash only when complete (built in layers/.build-*, synced, renamed),
// and an image record only whole, so a failed or interrupted build never leaves a half-built
// layer or record in use; the next build removes what it left (removeStaleBuildDirs).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { DataDirError } from './errors.js';
import { DirectoryError, makeDirectory } from '../make-directory.js';
import type { BuiltImage, LayerRecord } from './types.js';
import { dataDirFromEnv } from './paths.js';
import { NAME_PATTERN } from './validate.js';

const HASH_PATTERN = /^[0-9a-f]{64}$/;
const BUILD_DIR_PREFIX = '.build-';

interface ImageRecord {
  name: string;
  hash: string;
  layers: string[];
  builtAt: string;
}

/** fsync a directory, so that a rename inside it survives a crash. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** writeFileAtomic's temporary files: left only by a writer that died before its rename. */
const TEMPORARY_FILE = /\.tmp-\d+$/;

/** Writes a file so that readers see the old or the new content, never a partial one. */
export function writeFileAtomic(path: string, text: string, dir: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dir);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * The value of overlayfs's `lowerdir=` for an image. overlayfs lists the *top* layer first, the
 * reverse of `BuiltImage.layerPaths` (lowest first).
 */
export function overlayLowerdir(image: BuiltImage): string {
  return [...image.layerPaths].reverse().join(':');
}

export class ImageStore {
  readonly layersDir: string;
  readonly imagesDir: string;
  /** Downloaded .deb files (cache/debootstrap, cache/apt), kept between builds. */
  readonly cacheDir: string;
  readonly logsDir: string;

  constructor(readonly dataDir: string) {
    if (!isAbsolute(dataDir)) throw new DataDirError(`data directory must be an absolute path: "${dataDir}"`);
    // Layer paths go into overlayfs's mount options, where ':' and ',' separate values.
    if (/[:,\s]/.test(dataDir)) throw new DataDirError(`data directory may not contain ':', ',' or white space: "${dataDir}"`);
    this.layersDir = join(dataDir, 'layers');
    this.imagesDir = join(dataDir, 'images');
    this.cacheDir = join(dataDir, 'cache');
    this.logsDir = join(dataDir, 'logs');
  }

  /** Host path of a layer's root directory. */
  layerRoot(hash: string): string {
    return join(this.layersDir, hash, 'root');
  }

  hasLayer(hash: string): boolean {
    return HASH_PATTERN.test(hash) && existsSync(join(this.layersDir, hash, 'layer.json'));
  }

  layerRecord(hash: string): LayerRecord | undefined {
    return HASH_PATTERN.test(hash) ? readJson<LayerRecord>(join(this.layersDir, hash, 'layer.json')) : undefined;
  }

  /** The built image, or undefined when it was never built or one of its layers is gone. */
  get(name: string): BuiltImage | undefined {
    if (!NAME_PATTERN.test(name)) return undefined;
    const record = readJson<ImageRecord>(join(this.imagesDir, `${name}.json`));
    if (!record || !Array.isArray(record.layers) || !record.layers.every((h) => this.hasLayer(h))) return undefined;
    return { name: record.name, hash: record.hash, layerPaths: record.layers.map((h) => this.layerRoot(h)), builtAt: record.builtAt };
  }

  /** Layer hashes of a built image, lowest first. */
  layerHashes(name: string): string[] | undefined {
    return this.get(name) ? readJson<ImageRecord>(join(this.imagesDir, `${name}.json`))!.layers : undefined;
  }

  list(): BuiltImage[] {
    if (!existsSync(this.imagesDir)) return [];
    return readdirSync(this.imagesDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => this.get(f.slice(0, -'.json'.length)))
      .filter((i): i is BuiltImage => i !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Hashes of every complete layer on disk. */
  layers(): string[] {
    if (!existsSync(this.layersDir)) return [];
    return readdirSync(this.layersDir).filter((h) => this.hasLayer(h));
  }

  /** Makes the data dir and its subdirs, or finds them there. Not by a recursive mkdir, which
   * never returns under /proc and fails under a file with a stack: makeDirectory's refusals, as a
   * DataDirError naming the data dir (or the file in its way). */
  ensureDirs(): void {
    for (const dir of [this.dataDir, this.layersDir, this.imagesDir, this.cacheDir, this.logsDir]) {
      try {
        makeDirectory(dir, 0o755);
      } catch (error) {
        if (error instanceof DirectoryError) throw new DataDirError(error.message);
        throw error;
      }
    }
  }

  /** A fresh directory to build a layer in (in layersDir, which ensureDirs made); nothing uses it
   * until `commitLayer`. */
  newBuildDir(hash: string): string {
    const dir = join(this.layersDir, `${BUILD_DIR_PREFIX}${hash.slice(0, 16)}-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { mode: 0o755 });
    mkdirSync(join(dir, 'root'), { mode: 0o755 });
    return dir;
  }

  /** Removes what builds that died or were stopped left (call with the build lock held): build
   * dirs, prune leftovers, and image records' temporary files (writeFileAtomic's, never read). */
  removeStaleBuildDirs(): string[] {
    const stale: string[] = [];
    if (existsSync(this.layersDir)) {
      for (const d of readdirSync(this.layersDir).filter((d) => d.startsWith(BUILD_DIR_PREFIX) || d.startsWith('.prune-'))) {
        rmSync(join(this.layersDir, d), { recursive: true, force: true });
        stale.push(d);
      }
    }
    if (existsSync(this.imagesDir)) {
      for (const f of readdirSync(this.imagesDir).filter((f) => TEMPORARY_FILE.test(f))) {
        rmSync(join(this.imagesDir, f), { force: true });
        stale.push(join('images', f));
      }
    }
    return stale;
  }

  /**
   * Moves a finished build dir into place under its hash: the files are synced to disk first,
   * then the directory is renamed (atomic), then the rename itself is synced.
   */
  commitLayer(buildDir: string, record: LayerRecord): void {
    writeFileSync(join(buildDir, 'layer.json'), JSON.stringify(record, null, 2) + '\n');
    // syncfs(2) of the data dir's filesystem: the layer's many files in one call.
    execFileSync('sync', ['--file-system', buildDir]);
    const target = join(this.layersDir, record.hash);
    if (existsSync(target)) {
      // Complete already (built by an earlier run): keep it, drop ours.
      rmSync(buildDir, { recursive: true, force: true });
      return;
    }
    renameSync(buildDir, target);
    fsyncDir(this.layersDir);
  }

  /** Records an image's layers; unchanged when it already has exactly these (a no-op build). */
  recordImage(name: string, layers: string[]): BuiltImage {
    const existing = this.layerHashes(name);
    if (existing && existing.join() === layers.join()) return this.get(name)!;
    const record: ImageRecord = { name, hash: layers[layers.length - 1]!, layers, builtAt: new Date().toISOString() };
    writeFileAtomic(join(this.imagesDir, `${name}.json`), JSON.stringify(record, null, 2) + '\n', this.imagesDir);
    return this.get(name)!;
  }
}

/** The store in `dataDir` (default: CELLBLOCK_DATA_DIR, else /var/lib/cellblock). */
export function openImageStore(dataDir: string = dataDirFromEnv()): ImageStore {
  return new ImageStore(dataDir);
}
