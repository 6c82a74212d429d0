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
