// The part of the `semver` package (untyped here) that Piston's runtime selection uses.
declare module 'semver' {
  interface SemVer {
    version: string;
  }
  export function valid(version: string): string | null;
  export function coerce(version: string): SemVer | null;
  export function validRange(range: string): string | null;
  export function satisfies(version: string, range: string): boolean;
  export function intersects(range1: string, range2: string): boolean;
  export function rcompare(a: string, b: string): number;
  const semver: {
    valid: typeof valid;
    coerce: typeof coerce;
    validRange: typeof validRange;
    satisfies: typeof satisfies;
    intersects: typeof intersects;
    rcompare: typeof rcompare;
  };
  export default semver;
}
