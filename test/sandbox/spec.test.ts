// The engine's spec check alone (no kernel, no root): what it refuses before anything is made.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLimits } from '../../src/sandbox/spec.js';
import { SandboxSpecError, type Limits } from '../../src/sandbox/types.js';
import { MAX_TIME_LIMIT_MS, MiB } from '../../src/units.js';

const LIMITS: Limits = { cpuTimeMs: 1000, wallTimeMs: 2000, memoryBytes: 64 * MiB, pids: 16, outputBytes: MiB, fileSizeBytes: MiB, openFiles: 64, stackBytes: 8 * MiB, tmpBytes: 16 * MiB, cpuCores: 1 };

describe('the engine checks limits', () => {
  it('takes time limits up to 2^31 - 1 ms and refuses any longer, naming the field (the engine counts 64-bit nanoseconds)', () => {
    assert.equal(MAX_TIME_LIMIT_MS, 2 ** 31 - 1);
    for (const field of ['cpuTimeMs', 'wallTimeMs'] as const) {
      assert.equal(checkLimits({ ...LIMITS, [field]: MAX_TIME_LIMIT_MS })[field], MAX_TIME_LIMIT_MS);
      // 9.3e12 ms is past 2^63 ns: once a wrapped limit that killed the run at once.
      for (const value of [MAX_TIME_LIMIT_MS + 1, 9.3e12, Number.MAX_VALUE]) {
        assert.throws(
          () => checkLimits({ ...LIMITS, [field]: value }),
          (error: unknown) => error instanceof SandboxSpecError && error.field === `limits.${field}` && /at most 2147483647/.test(error.message),
          `${field} ${value}`,
        );
      }
    }
  });
});
