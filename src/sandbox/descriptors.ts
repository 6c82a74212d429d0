// How many of the worker process's file descriptors one container holds, counted from what the
// engine opens for it: what a worker's open files limit (RLIMIT_NOFILE) must leave room for
// (src/bin/host-limits.ts), and the default jobs at once fit in (src/config.ts). No native code is
// loaded here: the supervisor's start-up check reads it.
//
// native/src/container.cc createContainerState opens, for each container: a descriptor per cgroup
// hierarchy the program's child joins through (v1: `tasks` of cpu, cpuacct, memory and pids,
// four where none are co-mounted) or the run cgroup's directory (v2, CLONE_INTO_CGROUP); the
// CPU usage file (init polls it), the memory sample file (v2 before memory.peak), the CPU weight
// file; stdin, stdout and stderr (memfds, or copies of a connected run's pipe ends); and three
// pipes (report, go, cancel), six ends. The cgroup backends (src/sandbox/cgroups/v1.ts, v2.ts)
// open three accounting files more, read at the run's end. Once init has a descriptor table of
// its own, the supervisor closes init's ends of the pipes and the join or directory descriptors.
// Measured on v1 with four hierarchies: 11 per prepared container (a worker with 5 ready held 55
// more than without).

import { MOST_SLOTS_PER_JOB } from '../executor/slot-keys.js';

/** While the container is prepared: v1's 4 join files + CPU usage + CPU weight + 3 streams + 6
 * pipe ends + 3 accounting files (v2: 1 directory + CPU usage + memory sample + CPU weight + 3 + 6
 * + 3 = 16). */
export const PREPARING_CONTAINER_DESCRIPTORS = 18;

/** From its preparation's end to its teardown (a ready slot's, a run's): CPU usage, memory sample
 * (v2 without memory.peak), CPU weight, 3 streams, 3 pipe ends (report's read end, go's and
 * cancel's write ends), 3 accounting files. */
export const PREPARED_CONTAINER_DESCRIPTORS = 12;

/** A worker process's descriptors besides its containers and jobs: Node's own (stdio, epoll,
 * eventfds, libuv's), its Redis connections but its jobs' (commands, cancels, live input, BullMQ's,
 * the notifier's), its mount agent's pipes, its instance lock. 30-37 were counted on an idle
 * worker; twice that leaves a margin. */
export const WORKER_OWN_DESCRIPTORS = 64;

/** The most one job holds at once: MOST_SLOTS_PER_JOB containers while they are prepared (an
 * interactive test's two runs beside its two compiles), the pipes of a connected or live run (6),
 * a file being copied (2) and its BullMQ Worker's connection to Redis (1). An upper bound: most
 * jobs hold two prepared containers (a compile's and a run's). */
export const JOB_DESCRIPTORS = MOST_SLOTS_PER_JOB * PREPARING_CONTAINER_DESCRIPTORS + 9;


/** The most jobs at once (a worker's and its lane's) a worker process fits in the hard open files
 * limit `limit`, beside its own descriptors and `refillConcurrency` containers prepared at once
 * (what bin/host-limits.ts's openFilesPlan counts); Infinity where the limit is. */
export function jobsWithinOpenFiles(limit: number, refillConcurrency: number): number {
  if (limit === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  return Math.floor((limit - WORKER_OWN_DESCRIPTORS - refillConcurrency * PREPARING_CONTAINER_DESCRIPTORS) / JOB_DESCRIPTORS);
}
