// Making a directory that a setting names (the pool's state, the private Redis's data), so that a
// bad path is one error saying why, at once: not a hang, not a stack trace of mkdir's.
import { accessSync, constants, mkdirSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The kernel's own filesystems, by statfs(2)'s f_type (linux/magic.h): none holds files of ours,
 * and a mkdir on them fails oddly or succeeds with another meaning. procfs answers ENOENT to a
 * mkdir in a directory that exists, on which Node's recursive mkdirSync loops for ever (Node 22:
 * `/proc/x` spun a worker at 88% CPU for minutes, deaf to SIGTERM); a mkdir in cgroupfs makes a
 * cgroup. Told by type rather than by path (/proc, /sys, /dev), because they can be mounted
 * anywhere (a cgroup hierarchy often is), and a path under /sys can be a real filesystem (the
 * tmpfs at /sys/fs/cgroup).
 */
const KERNEL_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x6165676c, 'pstore'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x43415d53, 'smackfs'],
  [0x1cd1, 'devpts'],
  [0x42494e4d, 'binfmt_misc'],
  [0xde5e81e4, 'efivarfs'],
  [0x65735543, 'fusectl'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
]);

export class DirectoryError extends Error {
  override readonly name = 'DirectoryError';
  constructor(
    readonly dir: string,
    /** Why, without the path: "cannot be made in /x: read-only file system (EROFS)". */
    readonly reason: string,
  ) {
    super(`${dir} ${reason}`);
  }
}

/** "permission denied (EACCES)" of a system call's error; its message less the call and path. */
function why(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const text = message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*$/s, '');
  return code ? `${text} (${code})` : text;
}

/**
 * Makes `dir` (absolute) and its missing parents with `mode`, or finds it there, a directory this
 * process may write in; else a DirectoryError: the path or one of its parents is not a directory,
 * it would be on a kernel filesystem (KERNEL_FILESYSTEMS, looked up on its nearest existing
 * parent before anything is made), or it cannot be made or written (EACCES, EROFS, ...). Parents
 * are made one by one from the nearest existing one, never by a recursive mkdir.
 */
export function makeDirectory(dir: string, mode: number): void {
  const missing: string[] = [];
  let existing = path.resolve(dir);
  for (;;) {
    try {
      if (!statSync(existing).isDirectory()) {
        throw new DirectoryError(dir, existing === path.resolve(dir) ? 'is not a directory' : `cannot be made: ${existing} is not a directory`);
      }
      break;
    } catch (error) {
      if (error instanceof DirectoryError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent is a file, found further up.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new DirectoryError(dir, `cannot be looked up at ${existing}: ${why(error)}`);
      missing.unshift(existing);
      existing = path.dirname(existing);
    }
  }
  const kernel = KERNEL_FILESYSTEMS.get(Number(statfsSync(existing).type));
  if (kernel !== undefined) {
    throw new DirectoryError(dir, `is on the kernel's ${kernel} filesystem (${existing}), which holds no files: choose a directory on a disk or a tmpfs`);
  }
  for (const part of missing) {
    try {
      mkdirSync(part, { mode });
    } catch (error) {
      // Made by another process in the meantime (a second worker starting): as good.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        // EEXIST for a path that stat found missing: a symbolic link to nothing (a disk not
        // mounted yet), which stat follows and mkdir does not.
        const found = statSync(part, { throwIfNoEntry: false });
        if (found?.isDirectory()) continue;
        throw new DirectoryError(dir, found ? `cannot be made: ${part} is not a directory` : `cannot be made: ${part} is a symbolic link to nothing`);
      }
      throw new DirectoryError(dir, `cannot be made in ${path.dirname(part)}: ${why(error)}`);
    }
  }
  try {
    // Root passes EACCES here, but not EROFS: a read-only filesystem is found even so.
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new DirectoryError(dir, `cannot be written: ${why(error)}`);
  }
}
