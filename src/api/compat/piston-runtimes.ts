// Piston v2's runtime list and its runtime selection (api/src/runtime.js in engineer-man/piston):
// a runtime matches when the requested language is its name or one of its aliases and its version
// satisfies the requested SemVer range (a release line, any of its patch releases: see
// versionMatches); the highest matching version wins.
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

/** A version of two parts names a release line, not a release (images/runtimes/javascript.json's
 * $comment: "18.20" is whichever Node.js 18.20.x Debian's archive had when the image was built). */
const RELEASE_LINE = /^\d+\.\d+$/;

/** A release line matches a range that one of its patch releases satisfies (the range `~18.20`
 * meets the request's), so that a client sending the release it runs elsewhere ("18.20.4") finds
 * it, as Piston's coercion to 18.20.0 would not; a three-part version is one release. */
function versionMatches(version: string, range: string): boolean {
  if (version === range) return true;
  if (RELEASE_LINE.test(version)) return semver.validRange(range) !== null && semver.intersects(`~${version}`, range);
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
