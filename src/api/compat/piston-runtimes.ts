// Piston v2's runtime list and its runtime selection (api/src/runtime.js in engineer-man/piston):
// a runtime matches when the requested language is its name or one of its aliases and its version
// satisfies the requested SemVer range; the highest matching version wins.
import semver from 'semver';
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

/** Our versions are toolchain versions ("3.11.2", "1.19", "17.0.9+9"); SemVer needs x.y.z. */
function semverOf(version: string): string | null {
  return semver.valid(version) ?? semver.coerce(version)?.version ?? null;
}

function versionMatches(version: string, range: string): boolean {
  if (version === range) return true;
  const normalized = semverOf(version);
  return normalized !== null && semver.satisfies(normalized, range);
}

export function findPistonRuntime(runtimes: Runtime[], language: string, versionRange: string): Runtime | undefined {
  const candidates = runtimes.filter(
    (runtime) =>
      (runtime.language === language || runtimeAliases(runtime).includes(language)) &&
      versionMatches(runtime.version, versionRange),
  );
  return candidates.sort((a, b) => semver.rcompare(semverOf(a.version) ?? '0.0.0', semverOf(b.version) ?? '0.0.0'))[0];
}
