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
  /** Compile step, for compiled languages (CompileStage). */
  compile?: CompileStage;
  /** Run step (RunStage). */
  run: RunStage;
  /** Other ways to run the runtime's programs, by name (RuntimeVariant); absent for most runtimes. */
  variants?: Record<string, RuntimeVariant>;
  /** Every stage's environment; a value may hold limit placeholders (placeholders.ts), filled in
   * per stage from its own limits. */
  env: Record<string, string>;
  /** Limits used where the job names none. */
  defaultLimits: Limits;
  /** Largest limits a job may ask for; a larger one is a 4xx. */
  maxLimits: Limits;
  /** Smallest run limits a job may ask for, where the runtime does not start below some value
   * (R below 167 open files); a smaller one is a 4xx. Absent for most runtimes. */
  minLimits?: Partial<Limits>;
  /** Prints the toolchain's version inside the image; its test checks that `version` appears in
   * the output, so that the data cannot drift from the image. */
  versionArgv?: string[];
  /** Used by the runtime's own test: source and the exact stdout it must print. */
  helloWorld: { source: string; stdout: string };
}

/** A compile step. `{files}` in argv expands to the submitted file names, or, with
 * `sourceSuffixes`, to those that end in one of them (".c"): the compiler gets the sources, and
 * the other files (data the program reads, headers) are only in the work dir. `{entry}` expands to
 * the first of those alone (a compiler that takes one root file, as rustc takes its crate root and
 * finds the modules beside it); argv holds one or the other. `{args}` expands to the job's compile
 * arguments (ExecuteRequest.compileArgs); a runtime without it takes none. */
export interface CompileStage {
  argv: string[];
  sourceSuffixes?: string[];
  limits?: Partial<Limits>;
  startupPaths?: string[];
}

/** A run step; `{entry}` expands to the first submitted file's name (the entry point), `{args}`
 * to the job's arguments (appended when absent). In a stage's argv (a compile's too), limit
 * placeholders (`-Xmx{memoryMiB:75%}m`: placeholders.ts) expand anywhere in an element, from the
 * stage's own limits.
 *
 * A stage's `startupPaths`: absolute paths inside the image that its program looks up as it
 * starts, existing or not (from a trace of its hello world). The pool looks them up in each
 * fresh root while preparing it, so that the program finds them in the new overlay's dentry
 * cache instead of making each entry on its own path (images/README.md, "Start-up paths"). */
export interface RunStage {
  argv: string[];
  startupPaths?: string[];
}

/** Another way to run a runtime's programs, on the same image with the same env and limits: its
 * stages in place of the runtime's own, its `run` and its `compile`, or no compile where it has
 * none (Java's `piston`: no javac, the JDK's source launcher runs the entry file as Piston runs
 * it). A job asks for one by name (JobRequest.variant); a compatibility front asks for the variant
 * named after it (images/README.md, "Variants"). */
export interface RuntimeVariant {
  compile?: CompileStage;
  run: RunStage;
}

// ---- Image definitions (images/<name>.json) and the layer store ----------------------------

/** How one image's own layer is made. Each image adds exactly one layer on top of its parent's. */
export type LayerBuild =
  /** A Debian root made by `debootstrap`; only for images without a parent. */
  | { kind: 'debootstrap'; suite: string; variant: 'minbase' | 'buildd'; include: string[] }
  /** A tiny root holding the host's static busybox and its applet links (fast tests). */
  | { kind: 'busybox' }
  /** An overlay upper made by chrooting into the parent's layers: `apt-get install
   * --no-install-recommends packages`, then `commands` run by /bin/sh -eu. */
  | { kind: 'chroot'; packages: string[]; commands: string[] };

export interface ImageDefinition {
  name: string;
  /** Parent image; its layers sit under this image's own layer. */
  from: string | null;
  description: string;
  build: LayerBuild;
  /** The file the definition was read from. */
  file: string;
}

/** `layers/<hash>/layer.json`: what a stored layer is and how it was made. */
export interface LayerRecord {
  hash: string;
  /** Hash of the layer directly below, or null for a base layer. */
  parent: string | null;
  build: LayerBuild;
  sizeBytes: number;
  buildMs: number;
  builtAt: string;
}

/** One line of progress from a build, for the CLI or a log. */
export interface BuildProgress {
  image: string;
  /** "plan": what will be built; "cached": layer already stored; "step": a recipe step started;
   * "output": a line of the recipe's output; "heartbeat": still working; "done"/"failed". */
  phase: 'plan' | 'cached' | 'step' | 'output' | 'heartbeat' | 'done' | 'failed';
  message: string;
}
