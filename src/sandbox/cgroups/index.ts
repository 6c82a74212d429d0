// The cgroup backend for this host, detected once.
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupBackend } from './backend.js';
import type { CgroupBase } from '../types.js';
import { detectCgroupLayout, delegatedV2Base, parseProcessCgroups, V1_CONTROLLERS, type V1Controller } from './detect.js';
import { CgroupV1Backend } from './v1.js';
import { CgroupV2Backend, V2_HOST_PROCESSES_LEAF, type V2BackendOptions } from './v2.js';

export interface CgroupBackendOptions extends V2BackendOptions {
  /** Under each hierarchy's root (default), or under this process's own cgroup (see CgroupBase). */
  base?: CgroupBase;
}

/** `parentName` is relative to each hierarchy's base ("cellblock" by default): its mount point,
 * or with `base: 'delegated'` the cgroup this process was started in. */
export function createCgroupBackend(parentName = 'cellblock', options: CgroupBackendOptions = {}): CgroupBackend {
  const layout = detectCgroupLayout();
  const own = options.base === 'delegated' ? parseProcessCgroups(fs.readFileSync('/proc/self/cgroup', 'utf8')) : undefined;
  if (layout.version === 'v2') {
    const base = own?.unified === undefined ? '/' : delegatedV2Base(own.unified, parentName, V2_HOST_PROCESSES_LEAF);
    return new CgroupV2Backend(layout.mountPoint, path.join(layout.mountPoint, base), parentName, options);
  }
  const parents = {} as Record<V1Controller, string>;
  for (const controller of V1_CONTROLLERS) {
    parents[controller] = path.join(layout.mountPoints[controller], own?.byController.get(controller) ?? '/', parentName);
  }
  return new CgroupV1Backend(parents);
}

export type { CgroupBackend, CgroupUsage, CgroupVersion, RunCgroup } from './backend.js';
export { CgroupError } from './backend.js';
