// Where images live: definitions and recipes in the repository (images/), built layers in the
// data directory (CELLBLOCK_DATA_DIR, default /var/lib/cellblock).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_DATA_DIR = '/var/lib/cellblock';

export function dataDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.CELLBLOCK_DATA_DIR?.trim();
  return dir ? dir : DEFAULT_DATA_DIR;
}

/** The repository root: the nearest package.json named "cellblock" above this module. Works
 * both from src/images (tsx) and from dist/src/images (compiled). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'cellblock') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cellblock repository root not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export const defaultDefinitionsDir = (): string => join(repoRoot(), 'images');
export const defaultRuntimesDir = (): string => join(repoRoot(), 'images', 'runtimes');
/** The shell recipes that make layers; their content is part of every layer's hash. */
export const recipesDir = (definitionsDir: string): string => join(definitionsDir, 'build');
