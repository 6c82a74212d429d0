// cgroups, the native part: only joining. Creating, limiting, reading and removing cgroups is
// TypeScript (src/sandbox/cgroups/); the cgroup.procs files were opened before clone.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

/** Moves the calling process (init) into the run's cgroup in every hierarchy. Its children
 * (the program) are born there. */
Failure joinCgroups(const ContainerState& s);

/** The cgroup's CPU time in ns: the first integer of the CPU usage file (cpuacct.usage on v1,
 * cpu.stat's usage_usec on v2) times its scale. -1 when unreadable. */
int64_t readCgroupCpuNs(const ContainerState& s);

}  // namespace cb
