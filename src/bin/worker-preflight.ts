// What a machine needs before it runs workers, checked by the process that would start them (a
// supervisor checks before it forks, rather than restarting workers that cannot run): root, and
// the language images. Each problem is one line saying what to do.
import type { Config } from '../config.js';
import { openImageStore } from '../images/store.js';
import type { Runtime } from '../images/types.js';

export class WorkerPreflightError extends Error {
  override readonly name = 'WorkerPreflightError';
}

/** Throws WorkerPreflightError where no worker could run a job here; returns the runtimes whose
 * image is not built here (their jobs fail on this machine: the caller warns). */
export function checkWorkerMachine(config: Pick<Config, 'dataDir'>, runtimes: Runtime[], euid = process.geteuid?.()): Runtime[] {
  if (euid !== 0) {
    throw new WorkerPreflightError(
      'a worker needs root: it makes namespaces, mounts and cgroups for every job (run it as root; `cellblock api` alone does not need root)',
    );
  }
  const store = openImageStore(config.dataDir);
  const missing = runtimes.filter((runtime) => store.get(runtime.image) === undefined);
  if (runtimes.length > 0 && missing.length === runtimes.length) {
    throw new WorkerPreflightError(
      `no language image is built in ${config.dataDir} (CELLBLOCK_DATA_DIR): build them with scripts/setup.sh or \`cellblock images build\``,
    );
  }
  return missing;
}
