// The part of the `semver` package (untyped here) that the runtime registry's version rule uses
// (runtimes.ts: versionInRange, which every front's runtime selection goes through).
declare module 'semver' {
  interface SemVer {
    version: string;
  }
  export function coerce(version: string): SemVer | null;
  export function validRange(range: string): string | null;
  export function intersects(range1: string, range2: string): boolean;
  const semver: {
    coerce: typeof coerce;
    validRange: typeof validRange;
    intersects: typeof intersects;
  };
  export default semver;
}
