// Hand-built runtimes and stored results for the translation unit tests: the input the compat
// fronts translate, written out so that each expectation can be checked by eye.
import type { Runtime } from '../../src/images/types.js';
import type { JobRecord, JobResult, StoredStage } from '../../src/jobs/model.js';
import type { Limits } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';

const limits: Limits = {
  cpuTimeMs: 3000,
  wallTimeMs: 5000,
  memoryBytes: 256 * MiB,
  pids: 64,
  outputBytes: MiB,
  fileSizeBytes: MiB,
  openFiles: 64,
  stackBytes: 8 * MiB,
  tmpBytes: 16 * MiB,
  cpuCores: 1,
};
const maxLimits: Limits = { ...limits, cpuTimeMs: 10_000, wallTimeMs: 20_000, memoryBytes: 512 * MiB, pids: 128, outputBytes: 4 * MiB, fileSizeBytes: 4 * MiB, stackBytes: 64 * MiB };

export function runtime(fields: Partial<Runtime> & Pick<Runtime, 'id' | 'language' | 'version'>): Runtime {
  return {
    aliases: [],
    image: fields.id,
    sourceFile: 'main.txt',
    run: { argv: ['/bin/true'] },
    env: {},
    defaultLimits: limits,
    maxLimits,
    helloWorld: { source: '', stdout: '' },
    ...fields,
  };
}

export const python311 = runtime({ id: 'python', language: 'python', version: '3.11.2', aliases: ['py', 'python3'], sourceFile: 'main.py' });
export const python39 = runtime({ id: 'python39', language: 'python', version: '3.9.4', aliases: ['py'], sourceFile: 'main.py' });
export const gcc = runtime({
  id: 'c',
  language: 'c',
  version: '12.2.0',
  aliases: ['gcc'],
  sourceFile: 'main.c',
  compile: { argv: ['gcc', '{args}', '{files}'] },
});
export const go = runtime({ id: 'go', language: 'go', version: '1.19', aliases: ['golang'], sourceFile: 'main.go' });
export const runtimes = [python311, python39, gcc, go];

const b64 = (text: string): string => Buffer.from(text).toString('base64');

export function stage(fields: Partial<StoredStage> & { stdout?: string; stderr?: string } = {}): StoredStage {
  const { stdout = '', stderr = '', ...rest } = fields;
  return {
    verdict: 'ok',
    exitCode: 0,
    signal: null,
    signalName: null,
    stdoutBase64: b64(stdout),
    stderrBase64: b64(stderr),
    stdoutTruncated: false,
    stderrTruncated: false,
    cpuTimeMs: 12,
    wallTimeMs: 20,
    peakMemoryBytes: 3 * MiB,
    ...rest,
  };
}

export function done(result: Partial<JobResult>, runtimeUsed: Runtime = python311): JobRecord {
  return {
    id: 'job-1',
    status: 'done',
    createdAt: '2026-11-23T09:00:00.000Z',
    startedAt: '2026-11-23T09:00:00.100Z',
    finishedAt: '2026-11-23T09:00:00.300Z',
    result: {
      verdict: 'ok',
      runtime: { id: runtimeUsed.id, language: runtimeUsed.language, version: runtimeUsed.version },
      queueWaitMs: 100,
      ...result,
    },
  };
}
