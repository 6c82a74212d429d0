// CPU bandwidth from `cpuCores`: quota per period, the same numbers for v1 (cfs_quota_us,
// cfs_period_us) and v2 (cpu.max "quota period").
import { msToUs } from '../../units.js';

const PERIOD_MS = 100;
/** The kernel refuses quotas under 1 ms. */
const MIN_QUOTA_MS = 1;

export function cpuQuota(cpuCores: number): { quotaUs: number; periodUs: number } {
  const periodUs = msToUs(PERIOD_MS);
  const quotaUs = Math.max(msToUs(MIN_QUOTA_MS), Math.round(cpuCores * periodUs));
  return { quotaUs, periodUs };
}
