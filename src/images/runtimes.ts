// Runtime definitions: one JSON file per runtime in images/runtimes/<id>.json, saying how to
// compile and run one language on one image, with its limits. Loaded and validated once; a bad
// file is a RuntimeDefinitionError naming the file and the field. Lookup is by id or alias, with
// an optional version selector ("3", "3.11", "3.x", "*"), matched by the one rule every front uses
// (versionInRange).
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import semver from 'semver';
import type { Limits } from '../sandbox/types.js';
import { MAX_TIME_LIMIT_MS } from '../units.js';
import { ImageDefinitions } from './definitions.js';
import { RuntimeDefinitionError, UnknownRuntimeError } from './errors.js';
import { defaultDefinitionsDir, defaultRuntimesDir } from './paths.js';
import { placeholderProblem } from './placeholders.js';
import type { CompileStage, Runtime, RuntimeVariant, RunStage } from './types.js';
import { NAME_PATTERN, onlyKeys, parseJson, positiveNumber, record, string, stringArray, type Fail } from './validate.js';

/** Every field of `Limits`, and whether it must be a whole number. */
const LIMIT_FIELDS: Record<keyof Limits, 'integer' | 'number'> = {
  cpuTimeMs: 'integer',
  wallTimeMs: 'integer',
  memoryBytes: 'integer',
  pids: 'integer',
  outputBytes: 'integer',
  fileSizeBytes: 'integer',
  openFiles: 'integer',
  stackBytes: 'integer',
  tmpBytes: 'integer',
  cpuCores: 'number',
};
const LIMIT_NAMES = Object.keys(LIMIT_FIELDS) as (keyof Limits)[];

const ALIAS_PATTERN = /^[a-z0-9][a-z0-9.+#_-]{0,62}$/;
/** A plain file name in the work dir: no directories, no dot files. */
const SOURCE_FILE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VERSION_PATTERN = /^[0-9]+(\.[0-9A-Za-z]+)*$/;

function limitValue(value: unknown, field: string, kind: 'integer' | 'number', fail: Fail): number {
  const n = positiveNumber(value, field, fail);
  if (kind === 'integer' && !Number.isSafeInteger(n)) fail(`${field} must be a whole number`);
  return n;
}

function parseLimits(value: unknown, field: string, fail: Fail): Limits {
  const raw = record(value, field, fail);
  onlyKeys(raw, LIMIT_NAMES, field, fail);
  const limits = {} as Limits;
  for (const name of LIMIT_NAMES) {
    if (raw[name] === undefined) fail(`${field}.${name} is missing (limits must be complete)`);
    limits[name] = limitValue(raw[name], `${field}.${name}`, LIMIT_FIELDS[name], fail);
  }
  return limits;
}

function parsePartialLimits(value: unknown, field: string, fail: Fail): Partial<Limits> {
  const raw = record(value, field, fail);
  onlyKeys(raw, LIMIT_NAMES, field, fail);
  const limits: Partial<Limits> = {};
  for (const name of LIMIT_NAMES) {
    if (raw[name] !== undefined) limits[name] = limitValue(raw[name], `${field}.${name}`, LIMIT_FIELDS[name], fail);
  }
  return limits;
}

function argv(value: unknown, field: string, fail: Fail): string[] {
  const list = stringArray(value, field, fail);
  if (list.length === 0) fail(`${field} must not be empty`);
  return list;
}

/** The placeholders a stage's argv may hold as elements of their own (images/README.md, "Runtimes", "Limit placeholders"). */
const WHOLE_ELEMENT_PLACEHOLDERS = ['{files}', '{entry}', '{args}'];

/** A stage's argv: its placeholders ours (placeholderProblem), each where it expands. */
function stageArgv(value: unknown, field: string, fail: Fail): string[] {
  const list = argv(value, field, fail);
  list.forEach((part, i) => {
    const problem = placeholderProblem(part, WHOLE_ELEMENT_PLACEHOLDERS);
    if (problem) fail(`${field}[${i}]: ${problem}`);
  });
  return list;
}

/** Enough for any interpreter's or compiler's start-up (GHC's is the longest: ~2240, half of them
 * the loader's CPU-dependent directories under its many library directories; go build's ~2000, as
 * it hashes the sources of every standard package its hello world imports); the pool looks each
 * one up per root. */
const MAX_STARTUP_PATHS = 4000;

/** A stage's startupPaths: absolute, normalised paths inside the image (no "..", "//" or trailing "/"). */
function startupPaths(value: unknown, field: string, fail: Fail): string[] {
  const list = stringArray(value, field, fail);
  if (list.length > MAX_STARTUP_PATHS) fail(`${field} has ${list.length} paths; at most ${MAX_STARTUP_PATHS}`);
  list.forEach((path, i) => {
    const normal = path.startsWith('/') && !path.includes('\0') && posix.normalize(path) === path && !path.split('/').includes('..');
    if (!normal || (path.length > 1 && path.endsWith('/')) || path.length > 4096) {
      fail(`${field}[${i}] must be an absolute, normalised path inside the image (no "..")`);
    }
  });
  return list;
}

/** A compile step (the runtime's `compile`, or a variant's); `field` names it in errors. */
function parseCompile(value: unknown, field: string, fail: Fail): CompileStage {
  const c = record(value, field, fail);
  onlyKeys(c, ['argv', 'sourceSuffixes', 'limits', 'startupPaths'], field, fail);
  const compile: CompileStage = { argv: stageArgv(c.argv, `${field}.argv`, fail) };
  if (c.sourceSuffixes !== undefined) {
    compile.sourceSuffixes = stringArray(c.sourceSuffixes, `${field}.sourceSuffixes`, fail);
    if (compile.sourceSuffixes.length === 0) fail(`${field}.sourceSuffixes must not be empty (leave it out to compile every file)`);
    compile.sourceSuffixes.forEach((suffix, i) => {
      if (!/^\.[A-Za-z0-9+_-]{1,16}$/.test(suffix)) fail(`${field}.sourceSuffixes[${i}] must be a dot and 1-16 letters, digits, "+", "_" or "-" (".c")`);
    });
  }
  if (c.startupPaths !== undefined) compile.startupPaths = startupPaths(c.startupPaths, `${field}.startupPaths`, fail);
  if (compile.argv.includes('{files}') === compile.argv.includes('{entry}')) {
    fail(`${field}.argv must contain "{files}" (where the submitted sources go) or "{entry}" (the first of them alone), not both`);
  }
  if (c.limits !== undefined) compile.limits = parsePartialLimits(c.limits, `${field}.limits`, fail);
  return compile;
}

/** A run step (the runtime's `run`, or a variant's). */
function parseRun(value: unknown, field: string, fail: Fail): RunStage {
  const r = record(value, field, fail);
  onlyKeys(r, ['argv', 'startupPaths'], field, fail);
  const run: RunStage = { argv: stageArgv(r.argv, `${field}.argv`, fail) };
  if (run.argv.includes('{files}')) fail(`${field}.argv may not contain "{files}" (only a compile's argv may)`);
  if (r.startupPaths !== undefined) run.startupPaths = startupPaths(r.startupPaths, `${field}.startupPaths`, fail);
  return run;
}

/** `variants`: each a name (as an id is named) and its stages, written as the runtime's own; a
 * variant without `compile` runs without one. */
function parseVariants(value: unknown, fail: Fail): Record<string, RuntimeVariant> {
  const raw = record(value, 'variants', fail);
  const variants: Record<string, RuntimeVariant> = {};
  for (const [name, definition] of Object.entries(raw)) {
    const field = `variants.${name}`;
    if (!NAME_PATTERN.test(name)) fail(`${field}: a variant's name must match ${NAME_PATTERN}`);
    const v = record(definition, field, fail);
    onlyKeys(v, ['$comment', 'compile', 'run'], field, fail);
    const variant: RuntimeVariant = { run: parseRun(v.run, `${field}.run`, fail) };
    if (v.compile !== undefined) variant.compile = parseCompile(v.compile, `${field}.compile`, fail);
    variants[name] = variant;
  }
  return variants;
}

/** Parses one runtime file's text; `file` names it in errors. */
export function parseRuntime(text: string, file: string): Runtime {
  const fail: Fail = (problem) => {
    throw new RuntimeDefinitionError(file, problem);
  };
  const raw = record(parseJson(text, fail), 'runtime', fail);
  onlyKeys(raw, ['$comment', 'id', 'language', 'version', 'aliases', 'image', 'sourceFile', 'compile', 'run', 'variants', 'env', 'defaultLimits', 'maxLimits', 'minLimits', 'versionArgv', 'helloWorld'], 'runtime', fail);
  const id = string(raw.id, 'id', fail, NAME_PATTERN);
  if (basename(file) !== `${id}.json`) fail(`file must be named ${id}.json after its id`);

  const compile = raw.compile === undefined ? undefined : parseCompile(raw.compile, 'compile', fail);
  const run = parseRun(raw.run, 'run', fail);
  const variants = raw.variants === undefined ? undefined : parseVariants(raw.variants, fail);

  const envRaw = record(raw.env ?? {}, 'env', fail);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(envRaw)) {
    if (!ENV_NAME_PATTERN.test(k)) fail(`env name "${k}" is not a valid variable name`);
    if (typeof v !== 'string') fail(`env.${k} must be a string`);
    // A value may name the stage's limits, expanded per stage as its argv's are.
    const problem = placeholderProblem(v as string, []);
    if (problem) fail(`env.${k}: ${problem}`);
    env[k] = v as string;
  }

  const defaultLimits = parseLimits(raw.defaultLimits, 'defaultLimits', fail);
  const maxLimits = parseLimits(raw.maxLimits, 'maxLimits', fail);
  // The engine refuses a longer time limit (src/sandbox/spec.ts): a maximum above it would let the
  // API take jobs that every worker then fails. The defaults and the stages' limits are at most
  // the maxima (below).
  for (const name of ['cpuTimeMs', 'wallTimeMs'] as const) {
    if (maxLimits[name] > MAX_TIME_LIMIT_MS) fail(`maxLimits.${name} (${maxLimits[name]}) exceeds the engine's most, ${MAX_TIME_LIMIT_MS} (2^31 - 1 ms, 24.8 days)`);
  }
  for (const name of LIMIT_NAMES) {
    if (defaultLimits[name] > maxLimits[name]) fail(`defaultLimits.${name} (${defaultLimits[name]}) exceeds maxLimits.${name} (${maxLimits[name]})`);
  }
  const minLimits = raw.minLimits === undefined ? undefined : parsePartialLimits(raw.minLimits, 'minLimits', fail);
  for (const name of LIMIT_NAMES) {
    const least = minLimits?.[name];
    if (least !== undefined && least > defaultLimits[name]) fail(`minLimits.${name} (${least}) exceeds defaultLimits.${name} (${defaultLimits[name]})`);
  }
  const compiles = new Map<string, CompileStage | undefined>([['compile', compile]]);
  for (const [name, variant] of Object.entries(variants ?? {})) compiles.set(`variants.${name}.compile`, variant.compile);
  for (const [field, stage] of compiles) {
    for (const name of LIMIT_NAMES) {
      const v = stage?.limits?.[name];
      if (v !== undefined && v > maxLimits[name]) fail(`${field}.limits.${name} (${v}) exceeds maxLimits.${name} (${maxLimits[name]})`);
    }
  }

  const hello = record(raw.helloWorld, 'helloWorld', fail);
  onlyKeys(hello, ['source', 'stdout'], 'helloWorld', fail);
  const runtime: Runtime = {
    id,
    language: string(raw.language, 'language', fail),
    version: string(raw.version, 'version', fail, VERSION_PATTERN),
    aliases: stringArray(raw.aliases ?? [], 'aliases', fail, ALIAS_PATTERN),
    image: string(raw.image, 'image', fail, NAME_PATTERN),
    sourceFile: string(raw.sourceFile, 'sourceFile', fail, SOURCE_FILE_PATTERN),
    run,
    env,
    defaultLimits,
    maxLimits,
    helloWorld: { source: string(hello.source, 'helloWorld.source', fail), stdout: typeof hello.stdout === 'string' ? hello.stdout : fail('helloWorld.stdout must be a string') },
  };
  if (compile) runtime.compile = compile;
  if (variants) runtime.variants = variants;
  if (minLimits) runtime.minLimits = minLimits;
  if (raw.versionArgv !== undefined) runtime.versionArgv = argv(raw.versionArgv, 'versionArgv', fail);
  return runtime;
}

/** Numeric-aware comparison of dotted versions: 3.10 > 3.9. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const d = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (d !== 0) return d;
  }
  return 0;
}

/** A runtime version of one to three numeric parts: the releases it stands for are SemVer's
 * reading of it as a range. */
const NUMERIC_VERSION = /^\d+(\.\d+){0,2}$/;

/** The releases a runtime's version stands for, as a SemVer range. A version of one or two parts
 * names a release line, not a release: "18.20" is whichever Node.js 18.20.x Debian's archive had
 * when the image was built (images/runtimes/javascript.json's $comment), so every 18.20.x
 * (>=18.20.0 <18.21.0-0); "21" every 21.x.y. Three parts name one release. Any other (four parts,
 * letters: "1.0rc1") stands for the release it begins with, as SemVer coerces it. */
function releasesOf(version: string): string | null {
  if (NUMERIC_VERSION.test(version)) return semver.validRange(version);
  return semver.coerce(version)?.version ?? null;
}

/** The version rule of every front: a runtime matches a request when the request names its
 * version exactly, or a release it stands for (releasesOf) is one the request's SemVer range
 * takes. So a runtime of "18.20" matches "18", "18.20", "18.20.4", "18.x" and Piston's "^18.1";
 * not "18.2" (no 18.2.x is an 18.20.x: parts are numbers, not text) nor "18.21.0". One of
 * "3.11.2" matches "3", "3.11" and "3.11.2", not "3.11.3". A range that is not one (SemVer's
 * parser refuses it) matches only the version it spells. */
export function versionInRange(version: string, range: string): boolean {
  if (version === range) return true;
  const releases = releasesOf(version);
  const wanted = semver.validRange(range);
  return releases !== null && wanted !== null && semver.intersects(releases, wanted);
}

/** /v1's version selector, read as its SemVer X-range: one to three dotted parts, the numbers first
 * and the wildcards ("x", "X", "*") last ("3", "3.11", "3.x", "3.11.x", "x"), each number as SemVer
 * reads one (no leading zero, at most 15 digits). SemVer's parser refuses any other shape ("x.11",
 * "3.x.2", "03", sixteen digits): so a selector this takes always has a range, and what the rule
 * says (README, `version`) is what it does. */
const SELECTOR_PATTERN = /^(?=[^.]+(\.[^.]+){0,2}$)((0|[1-9]\d{0,14})(\.(0|[1-9]\d{0,14}))*(\.[xX*])*|[xX*](\.[xX*])*)$/;

/** Whether /v1's `version` is a selector (SELECTOR_PATTERN), found by the releases it takes;
 * anything else (a comparator, a fourth part, a wildcard before a number) names a version exactly. */
export function isVersionSelector(selector: string): boolean {
  return SELECTOR_PATTERN.test(selector);
}

/** Whether a runtime of `version` is what /v1's `selector` asks for: absent, "*" or "latest" match
 * all; otherwise by versionInRange, the rule Piston's ranges are matched by too. */
export function versionMatches(version: string, selector: string | undefined): boolean {
  if (selector === undefined || selector === '' || selector === '*' || selector === 'latest') return true;
  return isVersionSelector(selector) ? versionInRange(version, selector) : version === selector;
}

export interface LoadRuntimesOptions {
  /** When given, each runtime's image must have a definition there. */
  definitionsDir?: string;
}

/** All runtime definitions of `dir` (default images/runtimes), validated. */
export function loadRuntimes(dir: string = defaultRuntimesDir(), opts: LoadRuntimesOptions = { definitionsDir: defaultDefinitionsDir() }): Runtime[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new RuntimeDefinitionError(dir, `cannot read the runtimes directory: ${(err as Error).message}`);
  }
  const runtimes = files.map((n) => parseRuntime(readFileSync(join(dir, n), 'utf8'), join(dir, n)));
  if (opts.definitionsDir) {
    const images = ImageDefinitions.load(opts.definitionsDir);
    for (const r of runtimes) {
      if (!images.has(r.image)) throw new RuntimeDefinitionError(join(dir, `${r.id}.json`), `image "${r.image}" has no definition in ${opts.definitionsDir}`);
    }
  }
  new RuntimeRegistry(runtimes, dir); // checks names across files
  return runtimes;
}

/** Lookup of runtimes by id or alias and version. */
export class RuntimeRegistry {
  private readonly byName = new Map<string, Runtime[]>();

  constructor(
    private readonly runtimes: Runtime[],
    dir = '(runtimes)',
  ) {
    for (const r of runtimes) {
      for (const name of new Set([r.id, ...r.aliases])) {
        const same = this.byName.get(name) ?? [];
        const clash = same.find((o) => o.id === r.id || o.version === r.version);
        if (clash) {
          throw new RuntimeDefinitionError(join(dir, `${r.id}.json`), `name "${name}" version ${r.version} is also runtime "${clash.id}" version ${clash.version}`);
        }
        same.push(r);
        same.sort((a, b) => compareVersions(b.version, a.version));
        this.byName.set(name, same);
      }
    }
  }

  list(): Runtime[] {
    return [...this.runtimes];
  }

  /** The newest runtime named `name` (id or alias, case-insensitive) whose version matches. */
  find(name: string, version?: string): Runtime | undefined {
    return this.byName.get(name.toLowerCase())?.find((r) => versionMatches(r.version, version));
  }

  resolve(name: string, version?: string): Runtime {
    const runtime = this.find(name, version);
    if (!runtime) throw new UnknownRuntimeError(name, version);
    return runtime;
  }
}

export function loadRuntimeRegistry(dir?: string): RuntimeRegistry {
  return new RuntimeRegistry(loadRuntimes(dir), dir);
}
