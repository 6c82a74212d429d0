// The native addon (native/), found and loaded in one place. It is loaded at the first call, by
// the modules that need it: the sandbox's engine (src/sandbox/native.ts, which types it) and the
// flock(2) lock files (src/lock-file.ts), which the image builder uses too. What imports neither
// (the API, `cellblock images list`) runs where the addon was never built.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON = 'native/build/Release/cellblock_native.node';

/** Thrown when the addon was not built (`npm run build:native`; scripts/setup.sh builds it). */
export class NativeAddonMissingError extends Error {
  override readonly name = 'NativeAddonMissingError';
  constructor() {
    super('cellblock native addon not built: run `npm run build:native` (scripts/setup.sh does)');
  }
}

function findAddon(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src (tsx) or dist/src (compiled): the addon lives in native/build.
  for (const up of ['..', '../..']) {
    const candidate = path.resolve(here, up, ADDON);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new NativeAddonMissingError();
}

const require = createRequire(import.meta.url);
let addon: unknown;

/** The addon's exports, untyped: each user types the part it calls. */
export function loadNativeAddon(): unknown {
  addon ??= require(findAddon());
  return addon;
}
