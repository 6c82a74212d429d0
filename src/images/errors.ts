// Typed errors of the image store and the runtime registry. Each names the file or the image it
// is about, so that a bad definition or a failed build is reported where it can be fixed.

/** A definition file (an image's or a runtime's) is malformed or inconsistent. */
abstract class DefinitionFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** An image definition (images/<name>.json) is malformed or inconsistent. */
export class ImageDefinitionError extends DefinitionFileError {
  override readonly name = 'ImageDefinitionError';
}

/** A runtime definition (images/runtimes/<id>.json) is malformed or inconsistent. */
export class RuntimeDefinitionError extends DefinitionFileError {
  override readonly name = 'RuntimeDefinitionError';
}

/** An image name that no definition (or no built image) has. */
export class UnknownImageError extends Error {
  override readonly name = 'UnknownImageError';
  constructor(
    readonly image: string,
    known: string[],
  ) {
    super(`unknown image "${image}" (known: ${known.join(', ') || 'none'})`);
  }
}

/** A runtime id/alias (and version) that no runtime definition matches. */
export class UnknownRuntimeError extends Error {
  override readonly name = 'UnknownRuntimeError';
  constructor(
    readonly runtime: string,
    readonly version: string | undefined,
  ) {
    super(`unknown runtime "${runtime}"${version ? ` version "${version}"` : ''}`);
  }
}

/** A layer's recipe failed. No layer was stored; `logFile` holds the recipe's whole output. */
export class ImageBuildError extends Error {
  override readonly name = 'ImageBuildError';
  constructor(
    readonly image: string,
    readonly step: string,
    readonly detail: string,
    readonly logFile?: string,
  ) {
    super(`building image "${image}" failed at ${step}: ${detail}${logFile ? ` (full log: ${logFile})` : ''}`);
  }
}

/** A build stopped before it finished (`cellblock images build` got SIGINT or SIGTERM): the layer
 * being built was dropped (its recipe killed, its build dir removed), the layers finished before
 * it are kept, so the next build goes on from there. */
export class BuildStoppedError extends Error {
  override readonly name = 'BuildStoppedError';
  constructor(readonly signal: NodeJS.Signals) {
    super(`build stopped by ${signal}: the layers finished so far are kept, and the next build goes on from there`);
  }
}

/** The data directory cannot hold images (unusable path, or another build holds the lock). */
export class ImageStoreError extends Error {
  override readonly name = 'ImageStoreError';
}

/** The data directory cannot be used: not absolute, with a character overlayfs's options take for
 * a separator, or not a directory that can be made and written (makeDirectory's refusals). The
 * command says where the path came from (CELLBLOCK_DATA_DIR, or `--data-dir`). */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
}
