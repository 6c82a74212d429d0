// Putting a submission into a fresh work dir: the submitted files (owned by the sandbox user),
// or a copy of what the compile step left in its work dir. The compile ran untrusted code, so
// its work dir is walked without following a single symlink: links are copied as links (they
// resolve inside the next container, not on the host), special files are skipped.
import { chmodSync, chownSync, closeSync, constants, copyFileSync, fchownSync, fstatSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Limits } from '../sandbox/index.js';
import type { SourceFile } from './types.js';
import { ExecutorError } from './errors.js';
import { MiB } from '../units.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** A file name the compile's command would read as an option rather than a file: `{files}`
 * expands to the names as given, and gcc's `-wrapper`, `-fplugin=`, `@file` or javac's
 * `-processorpath` would run code of the submission's choosing in the compile or change its
 * output. */
export const OPTION_LIKE_FILE_NAME = /^[-@]/;

/** Linux's NAME_MAX: the longest name of one directory entry, in bytes (UTF-8 here). */
export const NAME_MAX_BYTES = 255;

/** The longest file name, a path of parts each at most NAME_MAX_BYTES, in bytes. The worker writes
 * it under its work dir's host path (under the operator's data dir: <dataDir>/pool/<owner>/slots/
 * <slot>/rw/box), and a whole path is at most Linux's PATH_MAX, 4096 bytes: a quarter of that for
 * the name leaves the rest to the host path. */
export const FILE_NAME_MAX_BYTES = 1024;

/** A file name as a message quotes it: its start, where it is long (a name up to a request's body
 * limit, or a zip entry's 64 KiB, is not echoed back whole), cut between characters. */
export function shownFileName(name: string): string {
  return shownUnits(name);
}

/** `units` joined, as a message quotes a name: where they pass SHOWN_FILE_NAME_CHARS, the most of
 * them that fit, then "...". A unit is never cut: a character (a surrogate pair is one), or what a
 * caller shows one byte as (`\xff`). */
export function shownUnits(units: Iterable<string>): string {
  let shown = '';
  for (const unit of units) {
    if (shown.length + unit.length > SHOWN_FILE_NAME_CHARS) return `${shown}...`;
    shown += unit;
  }
  return shown;
}
const SHOWN_FILE_NAME_CHARS = 64;

/** A UTF-16 surrogate with no partner (with the u flag a pair is one code point, not matched). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Whether a name holds a lone UTF-16 surrogate: valid JSON, but no Unicode; written to disk it
 * becomes U+FFFD, so two names that differ as strings would be one file. */
export function hasLoneSurrogate(name: string): boolean {
  return LONE_SURROGATE.test(name);
}

/** A submitted file name as a safe relative path, or an ExecutorError. */
export function checkedFileName(name: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(name))} is empty or has a NUL byte`);
  }
  if (hasLoneSurrogate(name)) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(name))} is not valid Unicode (it holds a lone surrogate)`);
  }
  const normal = posix.normalize(name);
  if (posix.isAbsolute(normal) || normal === '.' || normal === '..' || normal.startsWith('../') || name.split('/').includes('..')) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(name))} must be a relative path inside the work dir`);
  }
  if (OPTION_LIKE_FILE_NAME.test(normal)) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(name))} must not start with "-" or "@": the compiler would read it as an option`);
  }
  if (normal.split('/').some((segment) => Buffer.byteLength(segment) > NAME_MAX_BYTES)) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(name))} has a part longer than ${NAME_MAX_BYTES} bytes, more than a file system takes`);
  }
  const bytes = Buffer.byteLength(normal);
  if (bytes > FILE_NAME_MAX_BYTES) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(shownFileName(normal))} is ${bytes} bytes long, more than ${FILE_NAME_MAX_BYTES}`);
  }
  return normal;
}

/** Why files of these names (checkedFileName's) cannot all be written into one work dir, or
 * undefined: a name given twice, or a file that another one needs as its directory. Said by
 * checkSubmission, so that the API refuses such a job rather than queueing one that would fail. */
export function fileNamesConflict(names: readonly string[]): string | undefined {
  const files = new Set<string>();
  const directories = new Set<string>();
  for (const name of names) {
    if (files.has(name)) return `file ${JSON.stringify(name)} is given twice`;
    if (directories.has(name)) return `file ${JSON.stringify(name)} is also the directory of another file`;
    const parts = name.split('/');
    for (let end = 1; end < parts.length; end++) {
      const directory = parts.slice(0, end).join('/');
      if (files.has(directory)) return `file ${JSON.stringify(name)} needs ${JSON.stringify(directory)}, another file, as its directory`;
      directories.add(directory);
    }
    files.add(name);
  }
  return undefined;
}

function mkdirOwned(workDir: string, relativeDir: string, owner: Owner): void {
  let current = workDir;
  for (const part of relativeDir.split('/').filter((p) => p !== '' && p !== '.')) {
    current = join(current, part);
    try {
      mkdirSync(current, 0o755);
      chownSync(current, owner.uid, owner.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Synchronous on purpose: on the job's critical path, each trip through libuv's thread pool
 * cost more than the write itself (submissions are small; the API caps their size). */
export function writeSourceFiles(workDir: string, files: SourceFile[], owner: Owner): void {
  for (const file of files) {
    const name = checkedFileName(file.name);
    mkdirOwned(workDir, dirname(name), owner);
    const path = join(workDir, name);
    try {
      // wx: a name given twice, or through a directory of the same name, is the caller's mistake.
      writeFileSync(path, file.content, { mode: 0o644, flag: 'wx' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ExecutorError('bad_request', `cannot write ${JSON.stringify(file.name)}: ${code}`);
    }
    chownSync(path, owner.uid, owner.gid);
  }
}

/** A test's files for its judge program (the input, a checker's output, the answer) at the top of
 * a work dir: whatever the
 * compile left under any of the `reserved` names is removed first (so that none of them holds a
 * file of another test or of the compile's), and each file is created anew (O_EXCL, and owned
 * through its descriptor), so that a symlink left there is never followed from the host. */
export function writeTestFiles(workDir: string, reserved: readonly string[], files: { name: string; content: Uint8Array | string }[], owner: Owner): void {
  for (const name of reserved) rmSync(join(workDir, name), { recursive: true, force: true });
  for (const file of files) {
    const fd = openSync(join(workDir, file.name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeFileSync(fd, file.content);
      fchownSync(fd, owner.uid, owner.gid);
    } finally {
      closeSync(fd);
    }
  }
}

/** Files up to this size are copied synchronously; a bigger one goes through libuv's thread
 * pool so that it does not hold up the event loop (other jobs' results) for long. */
const SYNC_COPY_MAX_BYTES = 1024 * 1024;
/** A tree with more entries than this lets the event loop run between every so many. */
const ENTRIES_BETWEEN_YIELDS = 256;

/** Why a compile's work dir could not be copied into a run's, where the tree it left is the
 * cause (ENOSPC: more bytes than a work dir holds, through hard links to one file, say;
 * ENAMETOOLONG: a path nested past PATH_MAX): the job's verdict is then `compile_error`. */
export class CompiledFilesError extends Error {
  override readonly name = 'CompiledFilesError';
}

/** Errors of a copy that the copied tree causes, not the host. */
const TREE_COPY_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP', 'EMLINK', 'EFBIG']);

/** What copyWorkDir counts for each entry it copies, besides a file's bytes or a link's target:
 * a block, as a file system gives each one at least (its inode and name besides). */
export const TREE_ENTRY_BYTES = 4096;

/** A tree that copyWorkDir's limit stopped: more entries or bytes than the copy may write. */
export class TreeLimitError extends Error {
  override readonly name = 'TreeLimitError';
}

/** Most a compile's work dir may hold to be copied into a run's, counting each file's whole size
 * (a sparse file's holes are written out as zeros) and TREE_ENTRY_BYTES an entry. The worker
 * writes the copy, so the run's tmpfs pages are charged to the worker's memory, not to the
 * run's limit: without this bound a compile could leave 256 MiB of holes for each run slot to
 * fill. A compiled program is a few megabytes (GHC's or rustc's largest here: tens). */
export const MAX_COMPILED_TREE_BYTES = 128 * MiB;

/** copyWorkDir for the compile's work dir, at most MAX_COMPILED_TREE_BYTES: a failure the tree
 * causes is a CompiledFilesError. */
export async function copyCompiledWorkDir(fromDir: string, toDir: string, owner: Owner, maxBytes = MAX_COMPILED_TREE_BYTES): Promise<void> {
  try {
    await copyWorkDir(fromDir, toDir, owner, { maxBytes, maxEntries: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    if (err instanceof TreeLimitError) {
      throw new CompiledFilesError(`the compile's files are more than ${maxBytes} bytes, each file counted at its whole size: too large to copy into the run's work dir`);
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !TREE_COPY_ERRORS.has(code)) throw err;
    throw new CompiledFilesError(`the compile's files could not be copied into the run's work dir (${code}): too large, too many or too deeply nested`);
  }
}

/** Copies the tree under `fromDir` into `toDir` (both dirs of ours), owned by `owner`, and returns
 * the bytes it wrote (TREE_ENTRY_BYTES for each entry, and each file's size or link's target).
 * With a `limit`, a tree that passes it stops the copy with a TreeLimitError before the entry that
 * would (each hard link is a file of its own here, a sparse file all its size): the copy is then
 * the caller's to remove. Synchronous calls, like writeSourceFiles: a compile leaves a few small
 * files, and each trip through the thread pool cost more than the call (~2.5 ms for a C program's
 * two files, async); only big files and big trees give the event loop a turn. */
export async function copyWorkDir(fromDir: string, toDir: string, owner: Owner, limit?: { maxBytes: number; maxEntries: number }): Promise<number> {
  let bytes = 0;
  let entries = 0;
  let entriesSinceYield = 0;
  // Paths as bytes: a name the program made need not be UTF-8 (a byte 0xff, say), and read as a
  // string it would come back with U+FFFD in its place, naming no file.
  const copyTree = async (from: Buffer, to: Buffer): Promise<void> => {
    for (const entry of readdirSync(from, { withFileTypes: true, encoding: 'buffer' })) {
      if (++entriesSinceYield >= ENTRIES_BETWEEN_YIELDS) {
        entriesSinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const source = childPath(from, entry.name);
      const target = childPath(to, entry.name);
      const stat = lstatSync(source);
      entries++;
      bytes += TREE_ENTRY_BYTES + (stat.isFile() || stat.isSymbolicLink() ? stat.size : 0);
      if (limit && (entries > limit.maxEntries || bytes > limit.maxBytes)) {
        throw new TreeLimitError(`more than ${limit.maxEntries} entries or ${limit.maxBytes} bytes under ${fromDir}`);
      }
      if (stat.isDirectory()) {
        mkdirSync(target, 0o755);
        await copyTree(source, target);
        chmodSync(target, stat.mode & 0o7777 & ~0o6000);
      } else if (stat.isFile()) {
        if (stat.size <= SYNC_COPY_MAX_BYTES) copyFileSync(source, target, constants.COPYFILE_EXCL);
        else await copyFile(source, target, constants.COPYFILE_EXCL);
        chmodSync(target, stat.mode & 0o777);
      } else if (stat.isSymbolicLink()) {
        symlinkSync(readlinkSync(source, { encoding: 'buffer' }), target);
      } else {
        continue; // fifos, sockets, devices: nothing a later run needs
      }
      lchownSync(target, owner.uid, owner.gid); // lchown: never through a link
    }
  };
  await copyTree(Buffer.from(fromDir), Buffer.from(toDir));
  return bytes;
}

const SLASH = Buffer.from('/');
const childPath = (dir: Buffer, name: Buffer): Buffer => Buffer.concat([dir, SLASH, name]);

/** A file the program left in its work dir, asked for by name (ExecuteRequest.outputFiles). */
export interface OutputFile {
  name: string;
  /** Its first `maxBytes` bytes; null when it could not be read (`problem`). */
  content: Buffer | null;
  /** Its whole size, of which `content` may be the start. */
  sizeBytes: number;
  truncated: boolean;
  /** Why nothing was read: no such file, or something else than a regular file there (a
   * directory, a symbolic link, a fifo), or on the way there (a link as a directory). */
  problem?: 'not_found' | 'not_a_regular_file';
}

/** O_NONBLOCK: a fifo of the program's opens at once (and is then refused) instead of waiting for
 * a writer. O_NOFOLLOW: a link is never followed, here on the host. */
const OUTPUT_FILE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The most of an output file returned: the run's output limit, and never past its file size
 * limit, which a file may pass by one byte where that is at most outputBytes (the program's
 * RLIMIT_FSIZE, native/src/container.cc): such a file is then `truncated`, as written past it. */
export function outputFileMaxBytes(limits: Pick<Limits, 'outputBytes' | 'fileSizeBytes'>): number {
  return Math.min(limits.outputBytes, limits.fileSizeBytes);
}

/** Reads the named files from a work dir after its run: every process of the run is dead by then
 * (init killed what was left), so what is checked here cannot change before it is read; the
 * directories on the way are checked not to be links, each file opened without following one. */
export function readOutputFiles(workDir: string, names: readonly string[], maxBytes: number): OutputFile[] {
  return names.map((name) => readOutputFile(workDir, name, maxBytes));
}

function readOutputFile(workDir: string, name: string, maxBytes: number): OutputFile {
  const missing = (problem: NonNullable<OutputFile['problem']>): OutputFile => ({ name, content: null, sizeBytes: 0, truncated: false, problem });
  const parts = name.split('/');
  for (let end = 1; end < parts.length; end++) {
    let stat;
    try {
      stat = lstatSync(join(workDir, ...parts.slice(0, end)));
    } catch {
      return missing('not_found');
    }
    if (!stat.isDirectory()) return missing(stat.isSymbolicLink() ? 'not_a_regular_file' : 'not_found');
  }
  let fd: number;
  try {
    fd = openSync(join(workDir, name), OUTPUT_FILE_OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return missing('not_found');
    if (code === 'ELOOP' || code === 'ENXIO') return missing('not_a_regular_file');
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return missing('not_a_regular_file');
    const content = Buffer.alloc(Math.min(stat.size, maxBytes));
    let read = 0;
    while (read < content.length) {
      const n = readSync(fd, content, read, content.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return { name, content: content.subarray(0, read), sizeBytes: stat.size, truncated: stat.size > read };
  } finally {
    closeSync(fd);
  }
}
