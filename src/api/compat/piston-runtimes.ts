// Piston v2's runtime list and its runtime selection (api/src/runtime.js in engineer-man/piston):
// a runtime matches when the requested language is its name or one of its aliases and its version
// is in the requested SemVer range, by the registry's rule for every front (versionInRange: a
// two-part version is a release line, any of its patch releases); the highest matching version wins.
// Versions are shown as Piston shows its own: three-part SemVer (pistonVersion).
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
    version: pistonVersion(runtime),
    aliases: runtimeAliases(runtime),
  }));
}

/** A runtime's version as the Piston front shows it (its runtimes and packages, an execute's
 * answer, a connection's `runtime` message). Piston's are its packages' versions as
 * `semver.parse(...).raw` gives them (api/src/runtime.js, api/src/api/v2.js in
 * engineer-man/piston): always three parts, which a client may hand to a SemVer library (that
 * rejects `18.20`). Ours of one or two parts name a release line (images/README.md, "Using
 * images": whichever patch release the image's archive had), shown as its first release,
 * `18.20.0`, which a request finds the line by (versionInRange), as it finds it by `18.20.4`. */
export function pistonVersion(runtime: Pick<Runtime, 'version'>): string {
  const parts = runtime.version.split('.');
  return parts.length >= 3 ? runtime.version : [...parts, '0', '0'].slice(0, 3).join('.');
}

/** The runtime's aliases plus its id when that differs from the language name; never the language
 * name itself, which Piston's lists do not repeat among a language's aliases (C++'s `c++`, an
 * alias of ours so that /v1 finds the runtime `cpp` by it). */
function runtimeAliases(runtime: Runtime): string[] {
  const aliases = runtime.aliases.filter((alias) => alias !== runtime.language);
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
