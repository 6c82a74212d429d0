#include "cgroup_join.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>

#include <atomic>

#include "clone_vm.h"
#include "sys.h"
#include "syscall_numbers.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL  // linux/sched.h, Linux 5.7
#endif

namespace cb {

// x86_64 only: aarch64's clone3 into a cgroup has not been run. clone3 by its number
// (syscall_numbers.h), so a build against headers older than 5.3 still has it.
#if defined(__x86_64__)

namespace {

/** struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2), as linux/sched.h lays it out. */
struct CloneArgs {
  uint64_t flags, pidfd, childTid, parentTid, exitSignal, stack, stackSize, tls, setTid, setTidSize, cgroup;
};

}  // namespace

long cloneIntoCgroup(ContainerState& s, int (*fn)(void*), void* stackTop, size_t stackBytes) {
  if (s.cgroupDirFd < 0) return -ENOSYS;
  CloneArgs args{};
  args.flags = CLONE_VM | CLONE_INTO_CGROUP;
  args.exitSignal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(static_cast<char*>(stackTop) - stackBytes);
  args.stackSize = stackBytes;
  args.cgroup = static_cast<uint64_t>(s.cgroupDirFd);
  // Before the clone: the child reads it (shared memory) to skip the join.
  s.joinedAtClone = true;
  // clone3 with CLONE_VM: the child cannot return into C code (clone_vm.h).
  long pid = cbRawCloneVm(kClone3, reinterpret_cast<long>(&args), static_cast<long>(sizeof args), fn, &s);
  // ENOSYS: no clone3 (before 5.3); E2BIG or EINVAL: no CLONE_INTO_CGROUP (before 5.7).
  if (pid < 0) s.joinedAtClone = false;
  if (pid == -E2BIG || pid == -EINVAL) return -ENOSYS;
  return pid;
}

#else

long cloneIntoCgroup(ContainerState&, int (*)(void*), void*, size_t) { return -ENOSYS; }

#endif

namespace {
// Lock-free atomics: init (which shares this memory) bumps them without a call into libc.
std::atomic<int64_t> gClonedInto{0};
std::atomic<int64_t> gJoined{0};
}  // namespace

JoinCounts joinCounts() { return JoinCounts{gClonedInto.load(), gJoined.load()}; }

void countJoin(bool clonedInto) { (clonedInto ? gClonedInto : gJoined).fetch_add(1, std::memory_order_relaxed); }

Failure joinCgroups(const ContainerState& s) {
  if (s.joinedAtClone) return ok();
  // "0" (the writer itself), never the pid's number, even our own: the kernel skips its global
  // threadgroup lock, whose RCU grace period stalls an attach after idle, only for a single
  // thread moving itself (cgroup_procs_write_start: locked = pid || threadgroup; v1's `tasks`
  // is the single-thread file). `npm run bench:attach`, after 50 ms idle: own pid's number via
  // `tasks` 7.6 ms p50, "0" 0.02 ms (6.18, 2026-12-03).
  for (int fd : s.cgroupJoinFds) {
    CB_TRY(step_cgroup_join, sys(SYS_write, fd, "0", 1));
    sys(SYS_close, fd);
  }
  return ok();
}

namespace {

/** The first decimal integer in the file (read from its start), or -1. */
int64_t readFirstInteger(int fd) {
  char buf[256];
  long n = sys(SYS_pread64, fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  int64_t value = 0;
  bool seen = false;
  for (long i = 0; i < n; i++) {
    char c = buf[i];
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      seen = true;
    } else if (seen) {
      break;
    }
  }
  return seen ? value : -1;
}

}  // namespace

int64_t readCgroupCpuNs(const ContainerState& s) {
  int64_t value = readFirstInteger(s.cpuUsageFd);
  return value < 0 ? -1 : value * s.cpuUsageScaleNs;
}

void sampleCgroupMemory(ContainerState& s) {
  if (s.memorySampleFd < 0) return;
  int64_t bytes = readFirstInteger(s.memorySampleFd);
  if (bytes > s.sampledPeakMemoryBytes) s.sampledPeakMemoryBytes = bytes;
}

}  // namespace cb
