// Judge0's service information: GET /about, GET /config_info (Rails.configuration.api, documented
// in docs/api/system_and_configuration/configuration_info.md) and GET /workers
// (HealthController#workers). Clients read config_info for the limits they may send; here limits
// are per runtime, so each figure is the one every listed language accepts: the smallest default
// and the smallest maximum over them (Java's are larger: GET /languages/:id does not say them,
// as in Judge0, but a submission up to the runtime's own maxima is accepted).
import type { Limits } from '../../sandbox/types.js';
import { KiB, bytesToKiB, msToSeconds } from '../../units.js';
import type { QueueCounts } from '../../queue/client.js';
import type { WorkerLiveness } from '../../queue/heartbeat.js';
import type { Judge0Languages } from './judge0-languages.js';
import { CALLBACK_ATTEMPTS, CALLBACK_TIMEOUT_MS } from './judge0-callback.js';
import { JUDGE0_MAX_CPU_EXTRA_TIME_SECONDS, judge0CompilerOptionLanguages, judge0DefaultFileSizeBytes, judge0MaxNumberOfRuns } from './judge0-request.js';
import { stageMaxima } from './stage-maxima.js';

/** The Judge0 CE version whose API this front follows (docs/compat.md). */
export const JUDGE0_API_VERSION = '1.13.1';

export interface Judge0ConfigSources {
  languages: Judge0Languages;
  /** CELLBLOCK_MAX_QUEUED_JOBS. */
  maxQueuedJobs: number;
  /** CELLBLOCK_MAX_TESTS: a submission's number_of_runs are its tests. */
  maxTests: number;
  maxBatchSize: number;
  /** The most a submission's additional_files may unpack to (JUDGE0_MAX_EXTRACT_BYTES, or less). */
  maxExtractBytes: number;
}

/** GET /about: Judge0's fields; the version is that of the Judge0 API followed (clients check
 * it), the others are a Judge0 operator's settings, which this service has none of. */
export function judge0About(): Record<string, string | null> {
  return { version: JUDGE0_API_VERSION, homepage: null, source_code: null, maintainer: null };
}

export function judge0ConfigInfo(sources: Judge0ConfigSources): Record<string, unknown> {
  const runtimes = sources.languages.listed.map((language) => language.runtime);
  const smallest = (figure: (runtime: (typeof runtimes)[number]) => number): number =>
    runtimes.length === 0 ? 0 : Math.min(...runtimes.map(figure));
  const byDefault = (key: keyof Limits) => smallest((runtime) => runtime.defaultLimits[key]);
  const atMost = (key: keyof Limits) => smallest((runtime) => stageMaxima(runtime, 'run')[key]);
  return {
    enable_wait_result: true,
    enable_compiler_options: true,
    // Empty: every compiled language takes them.
    allowed_languages_for_compile_options: judge0CompilerOptionLanguages(sources.languages),
    enable_command_line_arguments: true,
    enable_submission_delete: false,
    max_queue_size: sources.maxQueuedJobs,
    cpu_time_limit: msToSeconds(byDefault('cpuTimeMs')),
    max_cpu_time_limit: msToSeconds(atMost('cpuTimeMs')),
    // Validated, never applied: the CPU limit is hard (docs/compat.md).
    cpu_extra_time: 0,
    max_cpu_extra_time: JUDGE0_MAX_CPU_EXTRA_TIME_SECONDS,
    wall_time_limit: msToSeconds(byDefault('wallTimeMs')),
    max_wall_time_limit: msToSeconds(atMost('wallTimeMs')),
    memory_limit: bytesToKiB(byDefault('memoryBytes')),
    max_memory_limit: bytesToKiB(atMost('memoryBytes')),
    stack_limit: bytesToKiB(byDefault('stackBytes')),
    max_stack_limit: bytesToKiB(atMost('stackBytes')),
    max_processes_and_or_threads: byDefault('pids'),
    max_max_processes_and_or_threads: atMost('pids'),
    // Limits are per run (its cgroup), never per process: asking for either is refused.
    enable_per_process_and_thread_time_limit: false,
    allow_enable_per_process_and_thread_time_limit: false,
    enable_per_process_and_thread_memory_limit: false,
    allow_enable_per_process_and_thread_memory_limit: false,
    // Not the runtimes' file size: Judge0's default, which bounds stdout too (judge0DefaultFileSizeBytes).
    max_file_size: bytesToKiB(smallest((runtime) => judge0DefaultFileSizeBytes(stageMaxima(runtime, 'run')))),
    max_max_file_size: bytesToKiB(atMost('fileSizeBytes')),
    number_of_runs: 1,
    max_number_of_runs: judge0MaxNumberOfRuns(sources.maxTests),
    redirect_stderr_to_stdout: false,
    enable_batched_submissions: true,
    max_submission_batch_size: sources.maxBatchSize,
    enable_callbacks: true,
    callbacks_max_tries: CALLBACK_ATTEMPTS,
    callbacks_timeout: msToSeconds(CALLBACK_TIMEOUT_MS),
    enable_additional_files: true,
    // Down, not to the nearest (bytesToKiB): a bound read back must not promise more than it allows.
    max_extract_size: Math.floor(sources.maxExtractBytes / KiB),
    allow_enable_network: false,
    enable_network: false,
    maintenance_mode: false,
    // Judge0 caches a finished submission's answer this many seconds; nothing is cached here.
    submission_cache_duration: 0,
    use_docs_as_homepage: false,
  };
}

/** GET /workers (docs/api/health_check/workers.md): one queue (every language is served by every
 * worker), `size` its submissions waiting, then its live workers' slots (`total` as the controller
 * has it beside the documented fields).
 * Judge0 answers 500 when fewer workers run than configured; here the unhealthy case is no worker
 * at all, answered 503 as /readyz answers it (no 500 comes from anything but a bug). */
export function judge0Workers(workers: WorkerLiveness[], counts: QueueCounts): { status: number; body: Record<string, unknown>[] } {
  const slots = workers.reduce((sum, worker) => sum + worker.concurrency, 0);
  const working = workers.reduce((sum, worker) => sum + worker.running, 0);
  const size = counts.waiting + counts.prioritized + counts.delayed;
  const body = [{ queue: 'cellblock', size, total: slots, available: slots, idle: Math.max(0, slots - working), working, paused: 0, failed: 0 }];
  return { status: workers.length === 0 ? 503 : 200, body };
}
