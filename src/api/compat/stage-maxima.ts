// The largest limits a compat request may ask for, per stage: the runtime's maxima, widened for
// compiles by the runtime's own compile limits (the same rule as /v1).
import type { Runtime } from '../../images/types.js';
import type { Limits } from '../../sandbox/types.js';

export function stageMaxima(runtime: Runtime, stage: 'compile' | 'run'): Limits {
  if (stage === 'run') return runtime.maxLimits;
  const widened = { ...runtime.maxLimits };
  for (const key of Object.keys(runtime.compile?.limits ?? {}) as (keyof Limits)[]) {
    widened[key] = Math.max(widened[key], runtime.compile!.limits![key]!);
  }
  return widened;
}
