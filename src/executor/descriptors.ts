// A worker's and a job's file descriptors, from the sandbox's per container (src/sandbox/
// descriptors.ts) and the most slots a job holds (slot-keys.ts): what a worker's open files limit
// (RLIMIT_NOFILE) must leave room for (src/bin/host-limits.ts), and the default jobs at once fit
// in (src/config.ts). Here, not in the sandbox, which may use nothing of ours above it.
import { PREPARING_CONTAINER_DESCRIPTORS } from '../sandbox/descriptors.js';
import { MOST_SLOTS_PER_JOB } from './slot-keys.js';

/** A worker process's descriptors besides its containers and jobs: Node's own (stdio, epoll,
 * eventfds, libuv's), its Redis connections but its jobs' (commands, cancels, live input, BullMQ's,
 * the notifier's), its mount agent's pipes, its instance lock. 30-37 were counted on an idle
 * worker in a probe by hand; twice that leaves a margin. */
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
