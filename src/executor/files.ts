// Putting a submission into a fresh work dir: the submitted files (owned by the sandbox user),
// or a copy of what the compile step left in its work dir. The compile ran untrusted code, so
// its work dir is walked without following a single symlink: links are copied as links (they
// resolve inside the next container, not on the host), special files are skipped.
import { chownSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { SourceFile } from './types.js';
import { ExecutorError } from './errors.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** A submitted file name as a safe relative path, or an ExecutorError. */
export function checkedFileName(name: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(name)} is empty or has a NUL byte`);
  }
  const normal = posix.normalize(name);
  if (posix.isAbsolute(normal) || normal === '.' || normal === '..' || normal.startsWith('../') || name.split('/').includes('..')) {
    throw new ExecutorError('bad_request', `file name ${JSON.stringify(name)} must be a relative path inside the work dir`);
  }
  return normal;
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

/** Copies the tree under `fromDir` into `toDir` (both work dirs of ours), owned by `owner`. */
export async function copyWorkDir(fromDir: string, toDir: string, owner: Owner): Promise<void> {
  for (const entry of await readdir(fromDir, { withFileTypes: true })) {
    const from = join(fromDir, entry.name);
    const to = join(toDir, entry.name);
    const stat = await lstat(from);
    if (stat.isDirectory()) {
      await mkdir(to, 0o755);
      await copyWorkDir(from, to, owner);
      await chmod(to, stat.mode & 0o7777 & ~0o6000);
    } else if (stat.isFile()) {
      await copyFile(from, to, constants.COPYFILE_EXCL);
      await chmod(to, stat.mode & 0o777);
    } else if (stat.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else {
      continue; // fifos, sockets, devices: nothing a later run needs
    }
    await lchown(to, owner.uid, owner.gid); // lchown: never through a link
  }
}
