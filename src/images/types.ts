// Contracts of the image store and the runtime registry. Images are stacks of read-only
// layers (lowest first) joined by overlayfs; runtimes are data (images/runtimes/*.json) that
// say how to compile and run one language on one image.
import type { Limits } from '../sandbox/types.js';

/** A built image as the pool needs it: the host paths of its read-only layers. */
export interface BuiltImage {
  name: string;
  /** Content hash of the definition chain; a rebuild of an unchanged definition is a no-op. */
  hash: string;
  /** Host paths of the layers' root directories, lowest (base) first. */
  layerPaths: string[];
  builtAt: string;
}

export interface Runtime {
  /** Stable id, e.g. "python". */
  id: string;
  /** Human language name, e.g. "python". */
  language: string;
  /** Version of the toolchain inside the image, e.g. "3.11.2". */
  version: string;
  aliases: string[];
  /** Image the runtime runs on. */
  image: string;
  /** File name the submitted source is written to inside the work dir, e.g. "main.py". */
  sourceFile: string;
  /** Compile step, for compiled languages. `{files}` in argv expands to the submitted file names. */
  compile?: { argv: string[]; limits?: Partial<Limits> };
  /** Run step; `{args}` expands to the job's arguments (appended when absent). */
  run: { argv: string[] };
  env: Record<string, string>;
  /** Limits used where the job names none. */
  defaultLimits: Limits;
  /** Largest limits a job may ask for; a larger one is a 4xx. */
  maxLimits: Limits;
  /** Used by the runtime's own test: source and the exact stdout it must print. */
  helloWorld: { source: string; stdout: string };
}
