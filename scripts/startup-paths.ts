// Keeps the runtimes' start-up path lists (compile.startupPaths and run.startupPaths, and those of
// each variant's stages: images/README.md, "Start-up paths") true to their images. For each runtime
// (and each of its variants) it runs the hello world in a root made as the pool makes one (an
// overlay of the image's layers with a tmpfs upper; /proc, /dev and /tmp mounted over it; the work
// dir holding the source; the sandbox user; the runtime's env), each stage under `strace -f -e
// trace=%file`, and takes every path the stage's program and its children look up from its exec
// on, found or not, normalised, less those under the container's own mounts (whose lookups the
// overlay never sees).
//
//   node --import tsx scripts/startup-paths.ts [--write] [--data-dir DIR] [--runtimes-dir DIR] [runtime id...]
//   npm run -s startup-paths -- [--write] [runtime id...]
//
// Without --write it compares each list with its trace and exits 1 when one differs (the test
// suite runs this check); with --write it rewrites the runtime files' lists. The images must be
// built (scripts/setup.sh builds them); strace is one of setup's packages. No container, cgroup or
// limit is made: the trace runs in a private mount namespace (util-linux's unshare) that takes its
// mounts with it when it ends.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { compileArgv, runArgv, stageEnv } from '../src/executor/argv.js';
import { defaultStageLimits } from '../src/executor/limits.js';
import { dataDirFromEnv, defaultRuntimesDir, repoRoot } from '../src/images/paths.js';
import { parseRuntime } from '../src/images/runtimes.js';
import { openImageStore, overlayLowerdir } from '../src/images/store.js';
import type { Runtime } from '../src/images/types.js';
import { variantOf } from '../src/images/variants.js';
import { DEFAULT_WORK_DIR, ENGINE_MOUNT_POINTS, SANDBOX_GID, SANDBOX_UID } from '../src/pool/index.js';

const execFileAsync = promisify(execFile);
/** From the repository, also when this runs compiled from dist/scripts. */
const TRACE_SCRIPT = join(repoRoot(), 'scripts', 'startup-paths-trace.sh');

export type Stage = 'compile' | 'run';

export interface StagePaths {
  /** Sorted, unique. */
  paths: string[];
  /** Relative paths looked up from a directory fd, which a trace without -y cannot place. */
  unplaced: number;
}

/** Which arguments of a syscall are paths, each with the index of its dirfd argument (-1: none,
 * relative to the cwd). %file's syscalls that x86_64 programs make; others are counted as unknown. */
const PATH_ARGS: Record<string, Array<[path: number, dirfd: number]>> = {};
for (const name of ['open', 'creat', 'stat', 'lstat', 'access', 'readlink', 'execve', 'chdir', 'chroot', 'mkdir', 'rmdir', 'unlink',
  'truncate', 'statfs', 'chmod', 'chown', 'lchown', 'utime', 'utimes', 'mknod', 'getxattr', 'lgetxattr', 'listxattr',
  'llistxattr', 'setxattr', 'lsetxattr', 'removexattr', 'lremovexattr', 'uselib', 'acct', 'umount2', 'swapon', 'swapoff', 'quotactl']) {
  PATH_ARGS[name] = [[0, -1]];
}
for (const name of ['openat', 'openat2', 'newfstatat', 'faccessat', 'faccessat2', 'readlinkat', 'mkdirat', 'mknodat', 'unlinkat', 'fchownat',
  'fchmodat', 'fchmodat2', 'futimesat', 'utimensat', 'execveat', 'statx', 'name_to_handle_at', 'open_tree', 'fspick', 'mount_setattr']) {
  PATH_ARGS[name] = [[1, 0]];
}
PATH_ARGS.rename = [[0, -1], [1, -1]];
PATH_ARGS.link = [[0, -1], [1, -1]];
PATH_ARGS.symlink = [[1, -1]];
PATH_ARGS.symlinkat = [[2, 1]];
PATH_ARGS.renameat = [[1, 0], [3, 2]];
PATH_ARGS.renameat2 = [[1, 0], [3, 2]];
PATH_ARGS.linkat = [[1, 0], [3, 2]];
PATH_ARGS.pivot_root = [[0, -1], [1, -1]];
PATH_ARGS.mount = [[0, -1], [1, -1]];
PATH_ARGS.inotify_add_watch = [[1, -1]];
PATH_ARGS.fanotify_mark = [[4, 3]];
PATH_ARGS.getcwd = []; // in %file, but its string is the answer, not a lookup

type Arg = { string: string } | { raw: string };

/** Reads the C-escaped string strace printed from text[start] (its opening quote): the value and
 * the index of its closing quote. */
function readQuoted(text: string, start: number): [value: string, end: number] {
  let value = '';
  let i = start + 1;
  for (; i < text.length && text[i] !== '"'; i++) {
    if (text[i] !== '\\') {
      value += text[i];
      continue;
    }
    const next = text[++i] ?? '';
    if (next === 'x') {
      value += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(next)) {
      const octal = /^[0-7]{1,3}/.exec(text.slice(i))![0];
      value += String.fromCharCode(parseInt(octal, 8));
      i += octal.length - 1;
    } else value += ({ n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' } as Record<string, string>)[next] ?? next;
  }
  return [value, i];
}

/** A syscall's top-level arguments as strace prints them (the text after "name("): a lone string
 * decoded, anything else ([...] arrays, {...} structs, flags, numbers) as printed. */
export function splitArgs(text: string): Arg[] {
  const args: Arg[] = [];
  let depth = 0;
  let raw = '';
  let lone: string | undefined;
  const push = () => {
    if (raw.trim() !== '') args.push(lone !== undefined ? { string: lone } : { raw: raw.trim() });
    raw = '';
    lone = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const [value, end] = readQuoted(text, i);
      lone = depth === 0 && raw.trim() === '' ? value : undefined;
      raw += text.slice(i, end + 1);
      i = end;
      continue;
    }
    if (depth === 0 && (c === ')' || c === ',' || text.startsWith('<unfinished', i))) {
      push();
      if (c === ',') continue;
      break;
    }
    if (c === '[' || c === '{' || c === '(') depth++;
    else if (c === ']' || c === '}' || c === ')') depth--;
    if (c.trim() !== '') lone = undefined;
    raw += c;
  }
  return args;
}

/** The paths a stage looked up, from `strace -f -e trace=%file -o FILE` output: every syscall of
 * any pid from the stage's successful execve of argv0 on (what ran before, the launcher, is not
 * the stage), resolved against the work dir where relative, normalised, less `excluded` dirs'
 * contents (the container's own mounts) and "/" itself. */
export function pathsFromTrace(trace: string, argv0: string, workDir: string, excluded: readonly string[]): StagePaths {
  const found = new Set<string>();
  let unplaced = 0;
  let started = false;
  const unknown = new Set<string>();
  for (const line of trace.split('\n')) {
    const call = /^\d+\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (!call) continue;
    const [, name, rest] = call as unknown as [string, string, string];
    const args = splitArgs(rest);
    if (!started) {
      const first = args[0];
      started = name === 'execve' && first !== undefined && 'string' in first && first.string === argv0 && /\)\s+=\s+0\s*$/.test(rest);
      if (!started) continue;
    }
    const spec = PATH_ARGS[name];
    if (!spec) {
      unknown.add(name);
      continue;
    }
    for (const [pathIndex, dirfdIndex] of spec) {
      const arg = args[pathIndex];
      if (!arg || !('string' in arg) || arg.string === '') continue;
      let path = arg.string;
      if (!path.startsWith('/')) {
        const dirfd = dirfdIndex >= 0 ? args[dirfdIndex] : undefined;
        if (dirfd && 'raw' in dirfd && dirfd.raw !== 'AT_FDCWD') {
          unplaced++;
          continue;
        }
        path = posix.join(workDir, path);
      }
      path = posix.normalize(path).replace(/(.)\/+$/, '$1');
      if (path === '/' || excluded.some((dir) => path === dir || path.startsWith(dir + '/'))) continue;
      found.add(path);
    }
  }
  if (!started) throw new Error(`the trace has no successful execve of ${argv0}`);
  if (unknown.size > 0) throw new Error(`the trace has syscalls whose path arguments this script does not know: ${[...unknown].join(', ')}`);
  return { paths: [...found].sort(), unplaced };
}

/** Traces a runtime's hello world in its image: the paths each of its stages looks up, in a root
 * with the engine's mounts (mountPoints: the engine's, a parameter only for the test of a mount
 * point the trace script does not know). */
export async function traceStartupPaths(
  runtime: Runtime,
  dataDir = dataDirFromEnv(),
  mountPoints: readonly string[] = ENGINE_MOUNT_POINTS,
): Promise<Partial<Record<Stage, StagePaths>>> {
  const built = openImageStore(dataDir).get(runtime.image);
  if (!built) throw new Error(`image ${runtime.image} is not built in ${dataDir}: run \`cellblock images build ${runtime.image}\``);
  const scratch = mkdtempSync(join(os.tmpdir(), 'cellblock-startup-paths-'));
  try {
    const files = join(scratch, 'files');
    mkdirSync(join(scratch, 'fs'));
    mkdirSync(files);
    writeFileSync(join(files, runtime.sourceFile), runtime.helloWorld.source);
    // Each stage as a job with the default limits runs it: its argv's and env's limit
    // placeholders expanded with its own (the compile's, the run's).
    const limits = defaultStageLimits(runtime);
    const argvs: Partial<Record<Stage, string[]>> = {};
    if (runtime.compile) argvs.compile = compileArgv(runtime.compile, [runtime.sourceFile], [], limits.compile!);
    argvs.run = runArgv(runtime.run.argv, [runtime.sourceFile], [], limits.run);
    const stages = Object.keys(argvs) as Stage[];
    for (const stage of stages) {
      writeFileSync(join(scratch, `${stage}.argv`), argvs[stage]!.map((a) => `${a}\0`).join(''));
      writeFileSync(join(scratch, `${stage}.env`), Object.entries(stageEnv(runtime.env, limits[stage]!)).map(([k, v]) => `${k}=${v}\0`).join(''));
    }
    await execFileAsync('unshare', ['--mount', '--propagation', 'private', '--', 'bash', TRACE_SCRIPT,
      overlayLowerdir(built), scratch, DEFAULT_WORK_DIR, `${SANDBOX_UID}:${SANDBOX_GID}`, mountPoints.join(','), ...stages], { maxBuffer: 1 << 20 });
    // /sys too: the container has no /sys mounted, so a lookup there stops at its first component
    // (a negative dentry made once), and what a program looks for under it depends on the host
    // (node reads its cgroup's memory limit by the host's cgroup version, the JVM its CPU's
    // microcode), which would make the lists differ from machine to machine.
    const excluded = [...mountPoints, DEFAULT_WORK_DIR, 'sys'].map((dir) => `/${dir}`);
    const result: Partial<Record<Stage, StagePaths>> = {};
    for (const stage of stages) {
      const trace = readFileSync(join(scratch, `${stage}.trace`), 'utf8');
      result[stage] = pathsFromTrace(trace, argvs[stage]![0]!, `/${DEFAULT_WORK_DIR}`, excluded);
    }
    return result;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(`tracing ${runtime.id}'s hello world: ${stderr?.trim() || (err as Error).message}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A runtime file's lists against its trace: what the trace adds and what it no longer has. */
export interface StageDiff {
  stage: Stage;
  recorded: number;
  traced: number;
  /** Paths of the list or the trace left out of the comparison (cpuDependent). */
  cpuDependent: number;
  added: string[];
  removed: string[];
}

/** The directories the dynamic loader tries under each library search directory according to the
 * CPU it runs on: glibc-hwcaps/x86-64-v2..v4 as far as the CPU goes, and glibc 2.36's legacy
 * hwcaps (tls, the platform such as haswell or xeon_phi, avx512_1, x86_64), tried in every
 * combination the CPU allows. A list traced on an AMD EPYC has tls/x86_64/x86_64 where one traced on
 * an Intel Xeon with AVX-512 has haswell/avx512_1/...: neither is stale. Only such a chain at the
 * path's end counts, alone or before a shared library's name, so that the files of a source
 * tree's tls directory (Go's crypto/tls/conn.go) are compared as any other path; a lookup of such
 * a directory itself (.../crypto/tls) is not. */
const CPU_DEPENDENT_DIR = /\/(glibc-hwcaps\/x86-64-v[234]|(tls|haswell|xeon_phi|avx512_1|x86_64)(\/(tls|haswell|xeon_phi|avx512_1|x86_64))*)(\/[^/]+\.so(\.[0-9]+)*)?$/;

/** Whether the loader looks `path` up on some CPUs only (CPU_DEPENDENT_DIR). */
export function cpuDependent(path: string): boolean {
  return CPU_DEPENDENT_DIR.test(path);
}

/** A list against its trace. Paths whose lookup depends on the CPU are not compared (a list
 * written on one CPU is current on another); --write still records them as traced. */
export function diffStage(stage: Stage, recorded: readonly string[] | undefined, traced: StagePaths): StageDiff {
  const before = new Set(recorded ?? []);
  const after = new Set(traced.paths);
  let cpuDependentPaths = 0;
  for (const path of new Set([...before, ...after])) if (cpuDependent(path)) cpuDependentPaths++;
  return {
    stage,
    recorded: before.size,
    traced: after.size,
    cpuDependent: cpuDependentPaths,
    added: traced.paths.filter((p) => !before.has(p) && !cpuDependent(p)),
    removed: [...before].filter((p) => !after.has(p) && !cpuDependent(p)).sort(),
  };
}

const USAGE = `usage: node --import tsx scripts/startup-paths.ts [--write] [--data-dir DIR] [--runtimes-dir DIR] [runtime id...]
Traces each runtime's hello world in its image and compares its compile.startupPaths and
run.startupPaths (and its variants') with the trace (exit 1 when one differs); --write rewrites them.`;

async function main(argv: string[]): Promise<number> {
  let write = false;
  let dataDir = dataDirFromEnv();
  let dir = defaultRuntimesDir();
  const ids: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--write') write = true;
    else if (arg === '--data-dir' && argv[i + 1]) dataDir = argv[++i]!;
    else if (arg === '--runtimes-dir' && argv[i + 1]) dir = argv[++i]!;
    else if (arg.startsWith('-')) {
      process.stderr.write(`${arg === '--help' || arg === '-h' ? '' : `unknown option ${arg}\n`}${USAGE}\n`);
      return arg === '--help' || arg === '-h' ? 0 : 2;
    } else ids.push(arg);
  }
  const files = readdirSync(dir).filter((name) => name.endsWith('.json')).sort().map((name) => join(dir, name));
  const runtimes = files.map((file) => ({ file, runtime: parseRuntime(readFileSync(file, 'utf8'), file) }));
  for (const id of ids) {
    if (!runtimes.some(({ runtime }) => runtime.id === id)) {
      process.stderr.write(`no runtime "${id}" in ${dir}\n`);
      return 2;
    }
  }
  let stale = 0;
  for (const { file, runtime } of runtimes) {
    if (ids.length > 0 && !ids.includes(runtime.id)) continue;
    type StagesJson = Record<Stage, { startupPaths?: string[] } | undefined>;
    const json = JSON.parse(readFileSync(file, 'utf8')) as StagesJson & { variants?: Record<string, StagesJson> };
    // The runtime's own stages, then each variant's, each traced in a root of its own (a variant's
    // run finds the work dir as its job leaves it, not with the runtime's compile's output in it).
    const traces: { name: string; stages: Runtime; json: StagesJson }[] = [{ name: runtime.id, stages: runtime, json }];
    for (const variant of Object.keys(runtime.variants ?? {})) {
      traces.push({ name: `${runtime.id} variant ${variant}`, stages: variantOf(runtime, variant)!, json: json.variants![variant]! });
    }
    for (const { name, stages, json: stagesJson } of traces) {
      const traced = await traceStartupPaths(stages, dataDir);
      for (const stage of ['compile', 'run'] as const) {
        const stagePaths = traced[stage];
        if (!stagePaths) continue;
        const diff = diffStage(stage, stages[stage]?.startupPaths, stagePaths);
        const same = diff.added.length === 0 && diff.removed.length === 0;
        if (!same) stale++;
        const unplaced =
          (stagePaths.unplaced > 0 ? `; ${stagePaths.unplaced} relative to a directory fd, left out` : '') +
          (diff.cpuDependent > 0 ? `; ${diff.cpuDependent} that depend on the CPU, not compared` : '');
        process.stdout.write(`${name} ${stage}: ${diff.traced} paths traced, ${diff.recorded} recorded${same ? ', the same' : `: ${diff.added.length} new, ${diff.removed.length} gone`}${unplaced}\n`);
        if (write) stagesJson[stage]!.startupPaths = stagePaths.paths;
        else {
          for (const path of diff.added) process.stdout.write(`  + ${path}\n`);
          for (const path of diff.removed) process.stdout.write(`  - ${path}\n`);
        }
      }
    }
    if (write) {
      const text = JSON.stringify(json, null, 2) + '\n';
      parseRuntime(text, file); // a list the service would refuse (too long, say) is not written
      writeFileSync(file, text);
    }
  }
  if (stale > 0 && !write) {
    process.stdout.write(`${stale} list(s) differ from their trace: \`npm run -s startup-paths -- --write\` rewrites them\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`startup-paths: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
