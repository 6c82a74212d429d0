// What a machine needs before it runs workers, checked by the process that would start them (a
// supervisor checks before it forks, rather than restarting workers that cannot run): root, the
// kernel the engine runs on, the cgroups the sandboxes need, and the language images. Each problem is one line saying what to
// do. And what it should not have: host accounts with the sandbox uids, which a worker runs with
// a warning.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import type { Config } from '../config.js';
import { openImageStore } from '../images/store.js';
import type { Runtime } from '../images/types.js';
import { SANDBOX_GID, SANDBOX_UID } from '../pool/root.js';
import { SANDBOX_UID_COUNT } from '../pool/uid-leases.js';
import { SandboxError, type CgroupBase } from '../sandbox/types.js';
import { MiB } from '../units.js';

export class WorkerPreflightError extends Error {
  override readonly name = 'WorkerPreflightError';
}

/** An account of the host's user database. */
export interface HostAccount {
  name: string;
  uid: number;
}

/** The host's user database as passwd(5) lines, and where they were read. */
export interface PasswdText {
  source: string;
  text: string;
}

export interface WorkerMachineReport {
  /** Runtimes whose image is not built here: their jobs fail on this machine (the caller warns). */
  missingImages: Runtime[];
  /** Host accounts whose uid is a sandbox uid (the caller warns: sandboxUidAccountsWarning). */
  sandboxUidAccounts: HostAccount[];
  /** Where the accounts were read; undefined when no user database could be read. */
  passwdSource?: string;
}

/** Enumerating a large directory (LDAP through sssd, say) may take long: the check is worth less
 * than a worker's start held up by it. */
const GETENT_TIMEOUT_MS = 1000;
const GETENT_MAX_OUTPUT_BYTES = 64 * MiB;
const DECIMAL = /^[0-9]{1,10}$/;
/** Accounts the warning names (systemd-homed alone may have hundreds in the range). */
const NAMED_ACCOUNTS = 16;

/** The host's user database: `getent passwd`, which lists every NSS source that enumerates
 * (systemd-homed's users are in none of /etc's files; sssd and winbind list none by default), else /etc/passwd (no getent, or it failed or took too long);
 * undefined when neither could be read. */
export function readHostPasswd(getent = 'getent', passwdFile = '/etc/passwd'): PasswdText | undefined {
  const listed = spawnSync(getent, ['passwd'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: GETENT_TIMEOUT_MS,
    // Not SIGTERM, which an NSS helper may ignore: spawnSync waits for the child's end.
    killSignal: 'SIGKILL',
    maxBuffer: GETENT_MAX_OUTPUT_BYTES,
  });
  if (listed.error === undefined && listed.status === 0) return { source: `${getent} passwd`, text: listed.stdout };
  try {
    return { source: passwdFile, text: readFileSync(passwdFile, 'utf8') };
  } catch {
    return undefined;
  }
}

/** The accounts of `passwd` (passwd(5) lines) whose uid is a sandbox uid, but the sandbox user's
 * own entries as the images have them (named "sandbox", group SANDBOX_GID:
 * images/build/finalize-root.sh), which a worker's own root made that way would list. Malformed
 * lines, and NIS compat lines (+, -), are skipped. */
export function accountsWithSandboxUids(passwd: string): HostAccount[] {
  const found = new Map<string, HostAccount>();
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length !== 7) continue;
    const [name, , uidField, gidField] = fields as [string, string, string, string];
    if (name === '' || name.startsWith('+') || name.startsWith('-') || !DECIMAL.test(uidField)) continue;
    const uid = Number(uidField);
    if (uid < SANDBOX_UID || uid >= SANDBOX_UID + SANDBOX_UID_COUNT) continue;
    if (name === 'sandbox' && DECIMAL.test(gidField) && Number(gidField) === SANDBOX_GID) continue;
    // One account listed by two sources (files and a directory) is named once.
    found.set(`${uid}:${name}`, { name, uid });
  }
  return [...found.values()].sort((a, b) => a.uid - b.uid || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The one line a worker logs when host accounts have sandbox uids; past the first
 * NAMED_ACCOUNTS, the log line's `accounts` has the rest. */
export function sandboxUidAccountsWarning(accounts: HostAccount[]): string {
  const more = accounts.length - NAMED_ACCOUNTS;
  const named =
    accounts
      .slice(0, NAMED_ACCOUNTS)
      .map((account) => `${account.uid} (${account.name})`)
      .join(', ') + (more > 0 ? ` and ${more} more` : '');
  return (
    `host accounts have sandbox uids (${SANDBOX_UID}-${SANDBOX_UID + SANDBOX_UID_COUNT - 1}): ${named}. ` +
    "A job's program may run as one of these uids: that account's processes can then signal it, and the two share the kernel's per-user limits " +
    '(processes, inotify instances, pending signals, pipe buffers). Give those accounts uids outside the range, or run workers on another machine'
  );
}

/** The least kernel a worker runs on: each container's init closes the descriptors it inherited
 * with close_range (Linux 5.9; native/src/recipe.cc). Below it every job would fail at that step
 * (close_inherited_fds, ENOSYS) while the worker looked ready. */
const LEAST_KERNEL = { major: 5, minor: 9 } as const;

/** Throws WorkerPreflightError for a kernel release (uname -r, os.release()) below LEAST_KERNEL. A
 * release that does not begin with major.minor is let through: no kernel of ours names itself so,
 * and a guess would refuse a machine that may run. */
export function checkKernelRelease(release: string): void {
  const parsed = /^(\d+)\.(\d+)/.exec(release);
  if (!parsed) return;
  const [major, minor] = [Number(parsed[1]), Number(parsed[2])];
  if (major > LEAST_KERNEL.major || (major === LEAST_KERNEL.major && minor >= LEAST_KERNEL.minor)) return;
  const least = `${LEAST_KERNEL.major}.${LEAST_KERNEL.minor}`;
  throw new WorkerPreflightError(
    `this machine runs Linux ${release}, below ${least}, the least kernel a worker runs on: each container's init closes the descriptors it inherited with close_range (${least}), so every job would fail; run the workers on a newer kernel (\`cellblock api\` alone runs on any)`,
  );
}

/** The sandbox's own check of its cgroups (checkSandboxCgroups), loaded when called: the sandbox
 * loads the native addon, which `cellblock api`, importing this module, may not have. */
async function checkSandboxCgroupsLoaded(cgroupBase: CgroupBase): Promise<void> {
  const { checkSandboxCgroups } = await import('../sandbox/index.js');
  checkSandboxCgroups({ cgroupBase });
}

/** Throws WorkerPreflightError where no worker could run a job here; reports what a worker runs
 * with here but the caller should warn of. */
export async function checkWorkerMachine(
  config: Pick<Config, 'dataDir' | 'cgroupBase'>,
  runtimes: Runtime[],
  euid = process.geteuid?.(),
  readPasswd: () => PasswdText | undefined = readHostPasswd,
  checkCgroups: (cgroupBase: CgroupBase) => void | Promise<void> = checkSandboxCgroupsLoaded,
  kernelRelease: string = osRelease(),
): Promise<WorkerMachineReport> {
  if (euid !== 0) {
    throw new WorkerPreflightError(
      'a worker needs root: it makes namespaces, mounts and cgroups for every job (run it as root; `cellblock api` alone does not need root)',
    );
  }
  checkKernelRelease(kernelRelease);
  // The cgroups each worker's sandbox would make, checked by the same code, making and removing
  // one under each parent (no other change): no usable hierarchy (a container's namespace without
  // memory, say), a read-only cgroup mount, or a delegated base its manager gave too few
  // controllers. Each worker would otherwise fail at its start, and a
  // supervisor restart it for ever while the API took jobs.
  try {
    await checkCgroups(config.cgroupBase);
  } catch (error) {
    if (error instanceof SandboxError) throw new WorkerPreflightError(error.message);
    throw error;
  }
  const store = openImageStore(config.dataDir);
  const missingImages = runtimes.filter((runtime) => store.get(runtime.image) === undefined);
  if (runtimes.length > 0 && missingImages.length === runtimes.length) {
    throw new WorkerPreflightError(
      `no language image is built in ${config.dataDir} (CELLBLOCK_DATA_DIR): build them with scripts/setup.sh or \`cellblock images build\``,
    );
  }
  let passwd: PasswdText | undefined;
  try {
    passwd = readPasswd();
  } catch {
    // A warning's input: the worker starts all the same.
    passwd = undefined;
  }
  return {
    missingImages,
    sandboxUidAccounts: passwd ? accountsWithSandboxUids(passwd.text) : [],
    ...(passwd ? { passwdSource: passwd.source } : {}),
  };
}
