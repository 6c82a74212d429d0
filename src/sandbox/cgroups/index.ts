// The cgroup backend for this host, detected once.
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupBase } from '../types.js';
import type { CgroupBackend } from './backend.js';
import { cgroupDirUnder, cgroupMountRoots, detectCgroupLayout, delegatedV2Base, parseProcessCgroups, V1_CONTROLLERS, type V1Controller } from './detect.js';
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
  for (const controller of V1_CONTROLLERS) {
    const mountPoint = layout.mountPoints[controller];
    const base = own ? cgroupDirUnder(mountPoint, roots.get(mountPoint) ?? '/', own.byController.get(controller) ?? '/') : mountPoint;
    parents[controller] = path.join(base, parentName);
  }
  return new CgroupV1Backend(parents);
}

export type { CgroupBackend, CgroupUsage, CgroupVersion, RunCgroup } from './backend.js';
export { CgroupError } from './backend.js';
