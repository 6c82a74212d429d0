// The cgroup backend for this host, detected once.
import type { CgroupBackend } from './backend.js';
import { detectCgroupLayout } from './detect.js';
import { CgroupV1Backend } from './v1.js';
import { CgroupV2Backend, type V2BackendOptions } from './v2.js';

/** `parentName` is relative to each hierarchy's mount point ("cellblock" by default). */
export function createCgroupBackend(parentName = 'cellblock', v2Options: V2BackendOptions = {}): CgroupBackend {
  const layout = detectCgroupLayout();
  return layout.version === 'v2'
    ? new CgroupV2Backend(layout.mountPoint, parentName, v2Options)
    : new CgroupV1Backend(layout.mountPoints, parentName);
}

export type { CgroupBackend, CgroupUsage, CgroupVersion, RunCgroup } from './backend.js';
export { CgroupError } from './backend.js';
