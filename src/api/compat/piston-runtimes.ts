// Piston v2's runtime list and its runtime selection (api/src/runtime.js in engineer-man/piston):
// a runtime matches when the requested language is its name or one of its aliases and its version
// is in the requested SemVer range, by the registry's rule for every front (versionInRange: a
// two-part version is a release line, any of its patch releases); the highest matching version wins.
import { compareVersions, versionInRange } from '../../images/runtimes.js';
import type { Runtime } from '../../images/types.js';

export interface PistonRuntime {
  language: string;
  version: string;
  aliases: string[];
}

export function pistonRuntimeList(runtimes: Runtime[]): PistonRuntime[] {
  return runtimes.map((runtime) => ({
    language: runtime.language,
    version: runtime.version,
    aliases: runtimeAliases(runtime),
  }));
}

/** The runtime's aliases plus its id when that differs from the language name. */
function runtimeAliases(runtime: Runtime): string[] {
  const aliases = [...runtime.aliases];
  if (runtime.id !== runtime.language && !aliases.includes(runtime.id)) aliases.push(runtime.id);
  return aliases;
}

export function findPistonRuntime(runtimes: Runtime[], language: string, versionRange: string): Runtime | undefined {
  const candidates = runtimes.filter(
    (runtime) =>
      (runtime.language === language || runtimeAliases(runtime).includes(language)) &&
      versionInRange(runtime.version, versionRange),
  );
  return candidates.sort((a, b) => compareVersions(b.version, a.version))[0];
}
