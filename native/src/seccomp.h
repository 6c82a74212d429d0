// The seccomp filter of the program: refuses (EPERM) the system calls a submission never needs,
// makes clone3 fail with ENOSYS (libc then falls back to clone, whose flags a classic BPF filter
// can inspect), refuses clone with any CLONE_NEW* flag, lets socket and socketpair make only
// unix, IP and netlink sockets (EAFNOSUPPORT for the rest: AF_VSOCK, AF_ALG...) of the
// protocols the kernel has built in (EPROTONOSUPPORT for SCTP, L2TP...: no module is loaded on a
// submission's word), makes setsockopt's SO_RCVBUF and SO_RCVLOWAT succeed without effect (a
// listener's buffer is what its connections not yet accepted may queue, charged to no cgroup),
// refuses the terminal ioctls that load a line discipline or type input
// (EPERM), makes a change of the core dump limit succeed without effect (a swap of it: EPERM),
// and kills the process on a foreign audit architecture or an x32 system call.
#pragma once

#include <stdint.h>

#include <vector>

#include "state.h"
#include "steps.h"

namespace cb {

/** The filter program, built once (struct sock_fprog*). */
const void* seccompProgram();

/** The filter's instructions and the policy it was built from, for the tests that check the one
 * against the other (the filter is a binary search on the call's number, see emitTree). */
struct SeccompPolicy {
  struct Instruction {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
  };
  std::vector<Instruction> filter;
  std::vector<uint32_t> refused;         // EPERM
  std::vector<uint32_t> notImplemented;  // ENOSYS
  uint32_t cloneNr = 0;                  // EPERM when its flags hold any of cloneNamespaceFlags
  uint32_t cloneNamespaceFlags = 0;
  std::vector<uint32_t> socketNrs;  // EAFNOSUPPORT unless the family is in socketFamilies
  struct SocketFamily {
    uint32_t family;
    std::vector<uint32_t> protocols;  // EPROTONOSUPPORT for any other; empty: any
  };
  std::vector<SocketFamily> socketFamilies;
  /** setsockopt: no effect, returns 0, when its level is socketOptionLevel and its option one of
   * ignoredSocketOptions. */
  uint32_t setsockoptNr = 0;
  uint32_t socketOptionLevel = 0;
  std::vector<uint32_t> ignoredSocketOptions;
  uint32_t ioctlNr = 0;               // EPERM when its request is one of refusedIoctls
  std::vector<uint32_t> refusedIoctls;
  uint32_t setrlimitNr = 0;  // fixedRlimit: no effect, returns 0 (0: no such call here)
  uint32_t prlimitNr = 0;    // fixedRlimit with a new limit: no effect, or EPERM with an old one too
  uint32_t fixedRlimit = 0;
  uint32_t auditArch = 0;      // any other architecture: the process is killed
  uint32_t x32SyscallBit = 0;  // 0: none; numbers with it set: the process is killed
  uint32_t firstUnreviewedNr = 0;  // it and every number above (below x32SyscallBit): ENOSYS
};
SeccompPolicy seccompPolicy();

/** Installs the filter; requires no_new_privs (set by dropCapabilityBounds). Where the kernel
 * can (5.0+), it also opens a listener on the filter (s.filterListenerFd, close-on-exec): a
 * descriptor that holds a reference to it, for holdProgramFilter. The filter never asks the
 * listener anything. */
Failure installSeccomp(ContainerState& s);

/** init: takes a copy of the program's child's listener (pidfd_getfd, 5.6+) and keeps it until
 * it exits. Otherwise the program's exit drops the filter's last reference, and its release
 * queues the BPF program's free on a kworker that preempts the exiting program before its
 * parent hears of the exit (~0.01 ms of the job's critical path); held, that comes with init's
 * exit, at the container's teardown. Best effort: where it cannot, the filter goes as before. */
void holdProgramFilter(const ContainerState& s, int childPid);

}  // namespace cb
