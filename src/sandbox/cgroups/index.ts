// The cgroup backend for this host, detected once.
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupBase } from '../types.js';
import type { CgroupBackend } from './backend.js';
import { cgroupDirUnder, cgroupMountRoots, detectCgroupLayout, delegatedV2Base, parseCgroupMounts, parseProcessCgroups, V1_CONTROLLERS, type ProcessCgroups, type V1Controller } from './detect.js';
import { findDelegatedCgroup } from './cgroupfs.js';
import { CgroupV1Backend } from './v1.js';
import { CgroupV2Backend, V2_HOST_PROCESSES_LEAF, type V2BackendOptions } from './v2.js';

export interface CgroupBackendOptions extends V2BackendOptions {
  /** Under each hierarchy's root (default), or under this process's own cgroup (see CgroupBase). */
  base?: CgroupBase;
}

/** `parentName` is relative to each hierarchy's base ("cellblock" by default): its mount point,
 * or with `base: 'delegated'` the cgroup this process was started in. */
export function createCgroupBackend(parentName = 'cellblock', options: CgroupBackendOptions = {}): CgroupBackend {
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const layout = detectCgroupLayout(mountinfo);
  const delegated = options.base === 'delegated';
  if (layout.version === 'v2') {
    if (!delegated) return new CgroupV2Backend(layout.mountPoint, parentName, options);
    const own = parseProcessCgroups(fs.readFileSync('/proc/self/cgroup', 'utf8')).unified ?? '/';
    const mountRoot = cgroupMountRoots(mountinfo).get(layout.mountPoint) ?? '/';
    const ownDir = cgroupDirUnder(layout.mountPoint, mountRoot, delegatedV2Base(own, parentName, V2_HOST_PROCESSES_LEAF));
    // The hierarchy's root (a container's own cgroup namespace): nothing to confirm, as `root`.
    if (ownDir === layout.mountPoint) return new CgroupV2Backend(ownDir, parentName, { ...options, delegated: true });
    const marked = findDelegatedCgroup(ownDir, layout.mountPoint);
    const base = marked?.dir ?? ownDir;
    return new CgroupV2Backend(base, parentName, { ...options, delegated: true, delegation: { base, ...(marked ? { mark: marked.mark } : {}) } });
  }
  const own = delegated ? parseProcessCgroups(fs.readFileSync('/proc/self/cgroup', 'utf8')) : undefined;
  const roots = cgroupMountRoots(mountinfo);
  const parents = {} as Record<V1Controller, string>;
  let belowRoot = false;
  for (const controller of V1_CONTROLLERS) {
    const mountPoint = layout.mountPoints[controller];
    const base = own ? cgroupDirUnder(mountPoint, roots.get(mountPoint) ?? '/', own.byController.get(controller) ?? '/') : mountPoint;
    belowRoot ||= base !== mountPoint;
    parents[controller] = path.join(base, parentName);
  }
  // Every controller's cgroup the hierarchy's root (a container's own cgroup namespace): nothing to
  // confirm, as on v2.
  if (!own || !belowRoot) {
    return new CgroupV1Backend(parents);
  }
  return new CgroupV1Backend(parents, { ...v1DelegationMark(mountinfo, own), parents: { ...parents } });
}

/** Where a v1 host's service manager marks the cgroup it delegated: systemd sets trusted.delegate
 * on the unit's cgroup in its own hierarchy (cg_set_xattr on SYSTEMD_CGROUP_CONTROLLER: the
 * name=systemd one, or on a hybrid layout the unified one), not in the controllers' hierarchies.
 * This process's cgroup there, or its parent (findDelegatedCgroup), marked or not. */
function v1DelegationMark(mountinfo: string, own: ProcessCgroups): { base: string; mark?: string } {
  const candidates: string[] = [];
  for (const mount of parseCgroupMounts(mountinfo)) {
    const ownPath = mount.fsType === 'cgroup2' ? own.unified : mount.superOptions.includes('name=systemd') ? own.byController.get('name=systemd') : undefined;
    if (ownPath === undefined) continue;
    try {
      const dir = cgroupDirUnder(mount.mountPoint, mount.root, ownPath);
      const marked = findDelegatedCgroup(dir, mount.mountPoint);
      if (marked) return { base: marked.dir, mark: marked.mark };
      candidates.push(dir);
    } catch {
      // This process's cgroup is not shown there: no mark to read.
    }
  }
  return { base: candidates[0] ?? '(no name=systemd or unified hierarchy mounted)' };
}

export type { CgroupBackend, CgroupUsage, CgroupVersion, RunCgroup } from './backend.js';
export { CgroupError } from './backend.js';
