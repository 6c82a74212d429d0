// Every unit conversion in cellblock lives here, so that a number's unit is decided once.
// Names elsewhere carry their unit (`cpuTimeMs`, `memoryBytes`); this module is where one
// unit turns into another.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const nsToMs = (ns: number | bigint): number => Number(ns) / 1e6;
export const usToMs = (us: number | bigint): number => Number(us) / 1e3;
export const msToUs = (ms: number): number => Math.round(ms * 1e3);
export const msToSeconds = (ms: number): number => ms / 1e3;
export const secondsToMs = (seconds: number): number => Math.round(seconds * 1e3);
/** Whole seconds, rounded up: for interfaces (RLIMIT_CPU) that only take seconds. */
export const msToWholeSecondsCeil = (ms: number): number => Math.ceil(ms / 1e3);
export const bytesToKiB = (bytes: number): number => Math.round(bytes / KiB);
export const kibToBytes = (kib: number): number => Math.round(kib * KiB);
export const mibToBytes = (mib: number): number => Math.round(mib * MiB);
export const bytesToMiB = (bytes: number): number => bytes / MiB;

/** The greatest cpuTimeMs and wallTimeMs a run may have (2^31 - 1 ms, 24.8 days, Node's longest
 * timer; the runtimes' maxima are seconds). The engine counts them in nanoseconds in a signed
 * 64-bit integer, and init adds the wall limit to a CLOCK_MONOTONIC reading: from 2^63 ns
 * (~9.2e12 ms) on they would wrap, and a wrapped limit kills the run at once. Here, beside the
 * units, so that both the engine (src/sandbox/spec.ts, which refuses a longer limit) and the
 * runtime files' check (src/images/runtimes.ts, which refuses a longer maximum, else the API
 * would take jobs the engine refuses) read it without one layer importing the other. */
export const MAX_TIME_LIMIT_MS = 2 ** 31 - 1;
