// Expansion of a runtime's argv templates (src/images/types.ts, Runtime): `{files}` becomes the
// submitted file names (a compile's: those with one of its sourceSuffixes, where it names some),
// `{entry}` the first of them (the entry point), `{args}` the job's
// arguments; a run argv without `{args}` gets them appended. A placeholder stands alone as one
// argv element and expands to zero or more elements.
//
// The stage's limits (LIMIT_PLACEHOLDER, src/images/placeholders.ts) expand anywhere inside an
// argv element or an env value (`-Xmx{memoryMiB:75%}m`, `GOMEMLIMIT={memoryBytes:90%}`, `-Xss{stackKiB}k`), from the
// limits the stage runs with: its run's, or its compile's. Computed here only (expandLimits).
import { LIMIT_PLACEHOLDER } from '../images/placeholders.js';
import type { Limits } from '../sandbox/types.js';
import { KiB, MiB } from '../units.js';

export const FILES_PLACEHOLDER = '{files}';
export const ENTRY_PLACEHOLDER = '{entry}';
export const ARGS_PLACEHOLDER = '{args}';

/** What a limit placeholder is computed from: the stage's own limits (its run's, or its compile's). */
export type StageLimits = Pick<Limits, 'memoryBytes' | 'stackBytes' | 'cpuCores'>;

/** A sized placeholder's limit and unit (LIMIT_PLACEHOLDER's first group): its whole value. */
function sizedValue(limits: StageLimits, sized: string): number {
  switch (sized) {
    case 'memoryMiB': return Math.floor(limits.memoryBytes / MiB);
    case 'stackBytes': return limits.stackBytes;
    case 'stackKiB': return Math.floor(limits.stackBytes / KiB);
    default: return limits.memoryBytes;
  }
}

/** The value of one limit placeholder (LIMIT_PLACEHOLDER's groups) for a stage's limits. */
function limitValue(limits: StageLimits, sized: string | undefined, percent: string | undefined): string {
  if (sized === undefined) return String(Math.ceil(limits.cpuCores));
  const whole = sizedValue(limits, sized);
  return String(percent === undefined ? whole : Math.max(1, Math.floor((whole * Number(percent)) / 100)));
}

/** `text` with its limit placeholders replaced by the stage's values; other text as it is. */
export function expandLimits(text: string, limits: StageLimits): string {
  if (!text.includes('{')) return text;
  return text.replace(LIMIT_PLACEHOLDER, (_, sized: string | undefined, percent: string | undefined) => limitValue(limits, sized, percent));
}

/** A stage's environment: the runtime's, its limit placeholders expanded (the same object where
 * it has none, the common case: no copy on the job's path). */
export function stageEnv(env: Record<string, string>, limits: StageLimits): Record<string, string> {
  let expanded: Record<string, string> | undefined;
  for (const key in env) {
    const value = env[key]!;
    if (!value.includes('{')) continue;
    expanded ??= { ...env };
    expanded[key] = expandLimits(value, limits);
  }
  return expanded ?? env;
}

/** A plain loop: it runs on every job's path (the API's check, the worker's, the stages' argv),
 * where flatMap over a table of placeholders took ~2.8 µs for gcc's compile argv, this 0.06. */
function expand(template: string[], fileNames: string[], args: string[], limits: StageLimits): string[] {
  const argv: string[] = [];
  for (const part of template) {
    if (part === FILES_PLACEHOLDER) argv.push(...fileNames);
    else if (part === ENTRY_PLACEHOLDER) argv.push(...fileNames.slice(0, 1));
    else if (part === ARGS_PLACEHOLDER) argv.push(...args);
    else argv.push(expandLimits(part, limits));
  }
  return argv;
}

/** The submitted files a compile takes: those ending in one of `sourceSuffixes`; all without them. */
export function compiledFileNames(compile: { sourceSuffixes?: string[] }, fileNames: string[]): string[] {
  const suffixes = compile.sourceSuffixes;
  if (!suffixes) return fileNames;
  return fileNames.filter((name) => suffixes.some((suffix) => name.endsWith(suffix)));
}

/** `limits`: the compile's own (its runtime's compile limits, or the job's compileLimits). */
export function compileArgv(compile: { argv: string[]; sourceSuffixes?: string[] }, fileNames: string[], args: string[], limits: StageLimits): string[] {
  return expand(compile.argv, compiledFileNames(compile, fileNames), args, limits);
}

/** `limits`: the run's own. */
export function runArgv(template: string[], fileNames: string[], args: string[], limits: StageLimits): string[] {
  const argv = expand(template, fileNames, args, limits);
  return template.includes(ARGS_PLACEHOLDER) ? argv : [...argv, ...args];
}
