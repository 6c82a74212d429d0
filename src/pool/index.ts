export { createPool, DEFAULT_SIZING } from './pool.js';
export type { Pool, PoolOptions, PoolSlot, ContainerPreparer } from './pool.js';
export type { PreparedRoot, RootSpec } from './root.js';
export { SANDBOX_UID, SANDBOX_GID, DEFAULT_WORK_DIR, ENGINE_MOUNT_POINTS } from './root.js';
export type { ReclaimReport } from './state-dir.js';
export { noRoomError } from './state-dir.js';
export { isUidShortage } from './uid-leases.js';
export { PoolError } from './types.js';
export type { PoolSizing, PoolStats, ImagePoolStats } from './types.js';
