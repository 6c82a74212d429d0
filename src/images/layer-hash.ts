// Content addresses of layers. A layer's hash covers everything that decides its content: the
// parent layer's hash, the build step of its definition, the text of the recipes that run it,
// and the host files it copies in. The image name is not part of it, so identical steps on the
// same parent are one layer on disk (python and gcc share one base).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex as sha256 } from '../digest.js';
import type { LayerBuild } from './types.js';

/** Bumped when the meaning of a hash input changes, so that every layer rebuilds. */
const HASH_FORMAT = 1;

/** The recipe scripts (images/build/*.sh) each build kind runs, in order. */
export const RECIPES: Record<LayerBuild['kind'], string[]> = {
  debootstrap: ['debootstrap-layer.sh', 'finalize-root.sh'],
  busybox: ['busybox-layer.sh', 'finalize-root.sh'],
  chroot: ['chroot-layer.sh'],
};


export interface LayerHashInput {
  parent: string | null;
  build: LayerBuild;
  /** Directory holding the recipe scripts. */
  recipesDir: string;
  /** Digests of host files the step copies in (e.g. the busybox binary), by role. */
  hostFiles: Record<string, string>;
}

export function layerHash(input: LayerHashInput): string {
  const recipes: Record<string, string> = {};
  for (const script of RECIPES[input.build.kind]) {
    recipes[script] = sha256(readFileSync(join(input.recipesDir, script)));
  }
  return sha256(
    canonicalJson({ format: HASH_FORMAT, parent: input.parent, build: input.build, recipes, hostFiles: input.hostFiles }),
  );
}
