// Which cgroup hierarchy this host uses, from /proc/self/mountinfo: v2 when a cgroup2 mount
// offers the cpu, memory and pids controllers; else v1 with cpu, cpuacct, memory and pids each
// mounted somewhere (often /sys/fs/cgroup/<controller>, sometimes co-mounted as cpu,cpuacct).
import fs from 'node:fs';
import path from 'node:path';
import { CgroupError } from './backend.js';

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
export const V2_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

export type CgroupLayout =
  | { version: 'v2'; mountPoint: string }
  | { version: 'v1'; mountPoints: Record<V1Controller, string> };

interface CgroupMount {
  mountPoint: string;
  /** The cgroup the mount shows as its root (mountinfo's fourth field): `/` but where a subtree
   * was mounted (a container's own hierarchy mounted without a cgroup namespace, say). */
  root: string;
  fsType: string;
  superOptions: string[];
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const before = line.slice(0, separator).split(' ');
    const after = line.slice(separator + 3).split(' ');
    const fsType = after[0];
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    mounts.push({
      mountPoint: unescapeMountPath(before[4] ?? ''),
      root: unescapeMountPath(before[3] ?? '/'),
      fsType,
      superOptions: (after[2] ?? '').split(','),
    });
  }
  return mounts;
}

function v2Controllers(mountPoint: string): string[] {
  try {
    return fs.readFileSync(path.join(mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** Why neither hierarchy serves, and what to do. The v2 backend works from the mount point
 * down (our cgroups go under `<mount point>/cellblock`), so what counts is the mount point's own
 * cgroup.controllers: on a host, the kernel's; in a container with its own cgroup namespace, what
 * its runtime delegated to it. */
function unusable(mounts: CgroupMount[], v1Missing: V1Controller[]): string {
  const v2 = mounts.find((mount) => mount.fsType === 'cgroup2');
  const v1Mounted = mounts.some((mount) => mount.fsType === 'cgroup');
  const v1 = v1Mounted ? `cgroup v1 lacks ${v1Missing.join(', ')}` : 'no cgroup v1 hierarchy is mounted';
  if (v2 === undefined) return `no cgroup2 mount, and ${v1}`;
  const available = v2Controllers(v2.mountPoint);
  const absent = V2_CONTROLLERS.filter((controller) => !available.includes(controller));
  return (
    `cgroup v2 at ${v2.mountPoint} lacks ${absent.join(', ')} (its cgroup.controllers: ${available.join(' ') || 'none'}), and ${v1}. ` +
    'On a host: a controller disabled on the kernel command line (cgroup_disable=), or held by a v1 hierarchy of a hybrid layout ' +
    '(boot with systemd.unified_cgroup_hierarchy=1); in a container or a pod: its runtime did not delegate the controller to it'
  );
}

/** The cgroup directory under `mountPoint` that is the cgroup `cgroupPath` (as /proc/self/cgroup
 * names it), given the cgroup the mount shows as its root; a CgroupError when the mount does not
 * show it (outside the mounted subtree, or outside this process's cgroup namespace: `/..`). */
export function cgroupDirUnder(mountPoint: string, mountRoot: string, cgroupPath: string): string {
  // A cgroup outside this process's cgroup namespace is named with `..` (`/../../x`), which a
  // path's normalisation would silently fold away.
  const relative = path.posix.relative(mountRoot, cgroupPath);
  if (cgroupPath.split('/').includes('..') || relative === '..' || relative.startsWith('../') || path.posix.isAbsolute(relative)) {
    throw new CgroupError(
      'delegate',
      '/proc/self/cgroup',
      'EINVAL',
      `this process's cgroup ${cgroupPath} is not under the hierarchy mounted at ${mountPoint} (which shows ${mountRoot}): CELLBLOCK_CGROUP_BASE=delegated needs the cgroup it was started in visible there`,
    );
  }
  return relative === '' ? mountPoint : path.join(mountPoint, relative);
}

/** The root each cgroup mount shows, by mount point. */
export function cgroupMountRoots(mountinfo: string): Map<string, string> {
  return new Map(parseCgroupMounts(mountinfo).map((mount) => [mount.mountPoint, mount.root]));
}

export function detectCgroupLayout(mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo);
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup2') continue;
    const available = v2Controllers(mount.mountPoint);
    if (V2_CONTROLLERS.every((c) => available.includes(c))) return { version: 'v2', mountPoint: mount.mountPoint };
  }
  const found: Partial<Record<V1Controller, string>> = {};
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup') continue;
    for (const controller of V1_CONTROLLERS) {
      if (mount.superOptions.includes(controller) && found[controller] === undefined) {
        found[controller] = mount.mountPoint;
      }
    }
  }
  const missing = V1_CONTROLLERS.filter((c) => found[c] === undefined);
  if (missing.length > 0) {
    throw new CgroupError('detect', '/proc/self/mountinfo', 'ENOENT', `no usable cgroup hierarchy: ${unusable(mounts, missing)}`);
  }
  return { version: 'v1', mountPoints: found as Record<V1Controller, string> };
}

/** This process's cgroups from /proc/self/cgroup (cgroups(7)): `hierarchy-id:controllers:path`
 * lines; the v2 one is `0::path`. */
export interface ProcessCgroups {
  /** The cgroup v2 path, when the process is in a v2 hierarchy. */
  unified?: string;
  /** The path in each v1 hierarchy, by controller ("cpu", "memory", ...). */
  byController: Map<string, string>;
}

export function parseProcessCgroups(text: string): ProcessCgroups {
  const found: ProcessCgroups = { byController: new Map() };
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const cgroupPath = line.slice(second + 1);
    if (!cgroupPath.startsWith('/')) continue;
    if (line.slice(0, first) === '0' && controllers === '') found.unified = cgroupPath;
    else for (const controller of controllers.split(',')) if (controller !== '') found.byController.set(controller, cgroupPath);
  }
  return found;
}

/** The v2 cgroup (relative to the mount point) that a delegated base is: this process's own,
 * except where an earlier worker of the same service already moved the base's processes to its
 * leaf (`<base>/<parentName>/<leaf>`, see CgroupV2Backend.enableControllers) and this process
 * was born there (a supervised worker restarted, say): the base is then two levels up. */
export function delegatedV2Base(ownPath: string, parentName: string, leafName: string): string {
  const parts = ownPath.split('/').filter(Boolean);
  const parentParts = parentName.split('/').filter(Boolean);
  const tail = [...parentParts, leafName];
  const inLeaf = parts.length >= tail.length && tail.every((part, i) => parts[parts.length - tail.length + i] === part);
  return `/${(inLeaf ? parts.slice(0, parts.length - tail.length) : parts).join('/')}`;
}
