// Finding the runtime a submission names. Runtimes are data shipped with the code
// (loadRuntimes() from src/images), so the API knows them without asking a worker.
import type { Runtime } from '../images/types.js';
import { ApiError } from './errors.js';

/** A version matches exactly, or as a dotted prefix ("3" and "3.11" match "3.11.2"). */
function versionMatches(runtime: Runtime, version: string): boolean {
  return runtime.version === version || runtime.version.startsWith(`${version}.`);
}

function names(runtime: Runtime): string[] {
  return [runtime.id, runtime.language, ...runtime.aliases].map((name) => name.toLowerCase());
}

export function findRuntime(runtimes: readonly Runtime[], language: string, version?: string): Runtime | undefined {
  const wanted = language.trim().toLowerCase();
  const candidates = runtimes.filter((runtime) => names(runtime).includes(wanted));
  // The id is exact; otherwise the newest version wins when none is asked for.
  const byId = candidates.find((runtime) => runtime.id.toLowerCase() === wanted && (!version || versionMatches(runtime, version)));
  if (byId) return byId;
  const matching = version ? candidates.filter((runtime) => versionMatches(runtime, version)) : candidates;
  return matching.sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }))[0];
}

export function requireRuntime(runtimes: readonly Runtime[], language: string, version?: string): Runtime {
  const runtime = findRuntime(runtimes, language, version);
  if (runtime) return runtime;
  const known = runtimes.some((candidate) => names(candidate).includes(language.trim().toLowerCase()));
  if (known && version) {
    throw new ApiError(400, 'unknown_version', `language "${language}" has no version "${version}"`, { language, version });
  }
  throw new ApiError(400, 'unknown_language', `unknown language "${language}"; GET /v1/runtimes lists them`, { language });
}
