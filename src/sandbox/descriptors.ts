// How many of the worker process's file descriptors one container holds, counted from what the
// engine opens for it: what a worker's open files limit (RLIMIT_NOFILE) must leave room for
// (src/executor/descriptors.ts counts a job's and a worker's from these). No native code is
// loaded here: the supervisor's start-up check reads it.
//
// native/src/container.cc createContainerState opens, for each container: a descriptor per cgroup
// hierarchy the program's child joins through (v1: `tasks` of cpu, cpuacct, memory and pids,
// four where none are co-mounted) or, on v2, the run cgroup's `cgroup.procs` and its directory
// (CLONE_INTO_CGROUP); the
// CPU usage file (init polls it), the memory sample file (v2 before memory.peak), the CPU weight
// file; stdin, stdout and stderr (memfds, or copies of a connected run's pipe ends); and three
// pipes (report, go, cancel), six ends. Once init has a descriptor table of its own, the
// supervisor closes init's ends of the pipes and the join or directory descriptors; only then
// (the container ready) do the cgroup backends (src/sandbox/cgroups/v1.ts, v2.ts) open three
// accounting files more, read at the run's end. 11 per prepared container on v1 with four
// hierarchies, in a probe by hand (a worker with 5 ready held 55 more than without);
// test/sandbox/leaks.test.ts holds it at most PREPARED_CONTAINER_DESCRIPTORS.

/** At most while the container is prepared: v1's 4 join files + CPU usage + CPU weight + 3 streams
 * + 6 pipe ends = 15 (v2: cgroup.procs + directory + CPU usage + memory sample + CPU weight + 3 +
 * 6 = 14), and 3 to spare (the accounting files, which open after the join files close, did not
 * need them). */
export const PREPARING_CONTAINER_DESCRIPTORS = 18;

/** From its preparation's end to its teardown (a ready slot's, a run's): CPU usage, memory sample
 * (v2 without memory.peak), CPU weight, 3 streams, 3 pipe ends (report's read end, go's and
 * cancel's write ends), 3 accounting files. */
export const PREPARED_CONTAINER_DESCRIPTORS = 12;
