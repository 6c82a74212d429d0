// cgroups, the native part: joining, and init's reading of the CPU time while the program runs
// (recipe.cc also lowers the CPU weight through it). Creating, limiting, the run's accounting and
// removing cgroups are TypeScript (src/sandbox/cgroups/), which names the files; they were opened
// before clone.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

/** Clones the program's child (CLONE_VM, on `stackTop`, running fn(arg)) straight into the run's
 * cgroup with clone3's CLONE_INTO_CGROUP (v2, Linux 5.7+, x86_64): no migration afterwards,
 * so none of the cgroup.procs write's cost (it takes the global threadgroup lock for writing,
 * which waits for an RCU grace period after idle and for every fork in flight, a fork bomb's
 * included) and no write lock that stalls every other fork on the machine meanwhile.
 * Returns the pid, or -errno; -ENOSYS also where this build or the kernel cannot (the caller
 * then clones and joins through the files). Sets s.joinedAtClone on success. */
long cloneIntoCgroup(ContainerState& s, int (*fn)(void*), void* stackTop, size_t stackBytes);

/** How the program's children of this process's containers got into their cgroups, since the
 * addon was loaded: cloned into it, or cloned and then joined through the files. */
struct JoinCounts {
  int64_t clonedInto;
  int64_t joined;
};
JoinCounts joinCounts();
/** Counts one child (init calls it once the child is in its cgroup). */
void countJoin(bool clonedInto);

/** Moves the calling process (the program's child, before execve) into the run's cgroup in every
 * hierarchy; what it forks is born there. Nothing to do when it was cloned into it.
 *
 * init must stay out: it shares the supervisor's memory (CLONE_VM), and when the memory cgroup's
 * OOM killer picks a victim it kills every process sharing the victim's memory. init's share is
 * Node's whole heap, so it would be picked, and Node would die with it. (Exempting init with
 * oom_score_adj -1000 needs CAP_SYS_RESOURCE, which hosts do not always grant.) */
Failure joinCgroups(const ContainerState& s);

/** The cgroup's CPU time in ns: the first integer of the CPU usage file (cpuacct.usage on v1,
 * cpu.stat's usage_usec on v2) times its scale. -1 when unreadable. */
int64_t readCgroupCpuNs(const ContainerState& s);

/** Raises s.sampledPeakMemoryBytes to the memory sample file's reading (no file: nothing). Init,
 * at each poll of the run: no allocation. */
void sampleCgroupMemory(ContainerState& s);

}  // namespace cb
