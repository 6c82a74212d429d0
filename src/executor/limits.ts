// A run's limits: the runtime's defaults overlaid with the request's (a CPU time limit named
// without a wall time limit raises the wall time limit with it), then clamped to the runtime's
// maxima. The API rejects requests above the maxima; the clamp here is the executor's
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

/** What each stage of a job that names no limits runs with: its compile's limits
 * (defaultCompileLimits; absent for a runtime without a compile) and its run's (the runtime's
 * defaultLimits). What a stage's argv and env are expanded with where no job is at hand: Judge0's
 * /languages/:id, the start-up path traces, the load test's bare runs. */
export function defaultStageLimits(runtime: Runtime): { compile?: Limits; run: Limits } {
  const compile = defaultCompileLimits(runtime);
  return compile ? { compile, run: runtime.defaultLimits } : { run: runtime.defaultLimits };
}

/** The wall time limit of a run whose limits name a CPU time limit (`cpuTimeMs`) but no wall time
 * limit: the defaults' wall time, or more, so that a run given more CPU time also has the time to
 * use it — the runtime's own ratio of wall to CPU time applied to the CPU time it has (up to its
 * maximum) — up to the maximum wall time. A program needing 6 s of CPU under `cpuTimeMs: 8000`
 * would otherwise be killed at the default 5 s of wall time. */
export function wallTimeMsForCpuTimeMs(defaults: Limits, maxima: Limits, cpuTimeMs: number): number {
  const scaledMs = Math.ceil((Math.min(cpuTimeMs, maxima.cpuTimeMs) * defaults.wallTimeMs) / defaults.cpuTimeMs);
  return Math.min(Math.max(defaults.wallTimeMs, scaledMs), maxima.wallTimeMs);
}

export function effectiveLimits(defaults: Limits, maxima: Limits, ...overrides: (Partial<Limits> | undefined)[]): Limits {
  // The runtime's defaults are complete (checked when runtimes load): their keys are the limits.
  const keys = Object.keys(defaults) as (keyof Limits)[];
  const limits = { ...defaults };
  let cpuTimeNamed = false;
  let wallTimeNamed = false;
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
    cpuTimeNamed ||= override.cpuTimeMs !== undefined;
    wallTimeNamed ||= override.wallTimeMs !== undefined;
  }
  if (cpuTimeNamed && !wallTimeNamed) limits.wallTimeMs = wallTimeMsForCpuTimeMs(defaults, maxima, limits.cpuTimeMs);
  for (const key of keys) limits[key] = Math.min(limits[key], maxima[key]);
  return limits;
}
