// A run's limits: the runtime's defaults overlaid with the request's, then clamped to the
// runtime's maxima. The API rejects requests above the maxima; the clamp here is the executor's
// own defence, so that a caller that skipped validation still cannot exceed them.
import type { Runtime } from '../images/types.js';
import type { Limits } from '../sandbox/types.js';
import { ExecutorError } from './errors.js';

/** A compile's limits before the request's own: the runtime's defaults overlaid with its
 * compile's, clamped to the maxima (the pool prepares compile slots with these); undefined for a
 * runtime without a compile. */
export function defaultCompileLimits(runtime: Runtime): Limits | undefined {
  return runtime.compile ? effectiveLimits(runtime.defaultLimits, runtime.maxLimits, runtime.compile.limits) : undefined;
}

export function effectiveLimits(defaults: Limits, maxima: Limits, ...overrides: (Partial<Limits> | undefined)[]): Limits {
  // The runtime's defaults are complete (checked when runtimes load): their keys are the limits.
  const keys = Object.keys(defaults) as (keyof Limits)[];
  const limits = { ...defaults };
  for (const override of overrides) {
    if (!override) continue;
    for (const key of keys) {
      const value = override[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
        throw new ExecutorError('bad_request', `limit ${key} must be a positive number, got ${String(value)}`);
      }
      limits[key] = value;
    }
  }
  for (const key of keys) limits[key] = Math.min(limits[key], maxima[key]);
  return limits;
}
