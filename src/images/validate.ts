// Small checks for definitions read from JSON files. Each failure names the field, so that the
// typed error (image or runtime definition) says exactly what to fix.

export type Fail = (problem: string) => never;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON value of a definition file's text. */
export function parseJson(text: string, fail: Fail): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(`not valid JSON: ${(err as Error).message}`);
  }
}

export function record(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (!isRecord(value)) fail(`${field} must be an object`);
  return value as Record<string, unknown>;
}

export function onlyKeys(value: Record<string, unknown>, allowed: string[], field: string, fail: Fail): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${field} has unknown field "${key}" (allowed: ${allowed.join(', ')})`);
  }
}

export function string(value: unknown, field: string, fail: Fail, pattern?: RegExp): string {
  if (typeof value !== 'string' || value === '') fail(`${field} must be a non-empty string`);
  if (pattern && !pattern.test(value as string)) fail(`${field} "${String(value)}" does not match ${pattern}`);
  return value as string;
}

export function stringArray(value: unknown, field: string, fail: Fail, pattern?: RegExp): string[] {
  if (!Array.isArray(value)) fail(`${field} must be an array of strings`);
  return (value as unknown[]).map((item, i) => string(item, `${field}[${i}]`, fail, pattern));
}

export function positiveNumber(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(`${field} must be a number > 0`);
  return value as number;
}

/** A lower-case name usable as a file name and in URLs: "python", "gcc-12". */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** A Debian package name (Debian Policy 5.6.1). */
export const DEBIAN_PACKAGE_PATTERN = /^[a-z0-9][a-z0-9+.-]+$/;
