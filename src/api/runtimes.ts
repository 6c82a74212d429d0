// Finding the runtime a submission names. Runtimes are data shipped with the code
// (loadRuntimes() from src/images), so the API knows them without asking a worker; names and
// versions are matched by the images module's own RuntimeRegistry, the same rule everywhere.
import { RuntimeRegistry } from '../images/runtimes.js';
import type { Runtime } from '../images/types.js';
import { ApiError } from './errors.js';

const registries = new WeakMap<readonly Runtime[], RuntimeRegistry>();

function registryOf(runtimes: readonly Runtime[]): RuntimeRegistry {
  let registry = registries.get(runtimes);
  if (!registry) registries.set(runtimes, (registry = new RuntimeRegistry([...runtimes])));
  return registry;
}

/** The newest runtime whose id or alias is `language` and whose version matches `version`. */
export function requireRuntime(runtimes: readonly Runtime[], language: string, version?: string): Runtime {
  const registry = registryOf(runtimes);
  const runtime = registry.find(language.trim(), version);
  if (runtime) return runtime;
  if (version !== undefined && registry.find(language.trim())) {
    throw new ApiError(400, 'unknown_version', `language "${language}" has no version "${version}"`, { language, version });
  }
  throw new ApiError(400, 'unknown_language', `unknown language "${language}"; GET /v1/runtimes lists them`, { language });
}
