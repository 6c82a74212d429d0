// The cost of loading the program's seccomp filter, in the shape the engine builds it (a binary
// search on the system call's number) against the same policy as a linear list of tests (the
// engine's shape until 2026-12-03), alternating, each load in a fresh forked child after a short
// idle gap. The kernel runs a filter for every system call number when it is loaded, to cache
// the calls it always allows; the engine loads one per container, in the program's child while
// preparing (off the job's path, not off the machine). Not a test: figures only.
//
//   npm run bench:seccomp [-- ROUNDS]
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "seccomp.h"

namespace {

/** The same verdicts, every rule tested one after the other. */
std::vector<sock_filter> linearFilter(const cb::SeccompPolicy& policy) {
  const uint32_t refuse = SECCOMP_RET_ERRNO | 1 /* EPERM */;
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.auditArch, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  if (policy.x32SyscallBit != 0) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, policy.x32SyscallBit, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  }
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, policy.firstUnreviewedNr, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 38 /* ENOSYS */));
  for (uint32_t nr : policy.refused) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
  }
  for (uint32_t nr : policy.notImplemented) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 38 /* ENOSYS */));
  }
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.cloneNr, 0, 4));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, policy.cloneNamespaceFlags, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  // socket, socketpair: the family's tests, each jumping to its protocols' block (as the engine's).
  const size_t families = policy.socketFamilies.size();
  auto blockLength = [](const cb::SeccompPolicy::SocketFamily& family) -> size_t {
    return family.protocols.empty() ? 1 : family.protocols.size() + 3;
  };
  size_t length = 2 + families + 1;
  for (const auto& family : policy.socketFamilies) length += blockLength(family);
  for (uint32_t nr : policy.socketNrs) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, static_cast<uint8_t>(length - 1)));
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
    size_t blockStart = 2 + families + 1;
    for (size_t i = 0; i < families; i++) {
      f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.socketFamilies[i].family, static_cast<uint8_t>(blockStart - (2 + i) - 1), 0));
      blockStart += blockLength(policy.socketFamilies[i]);
    }
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 97 /* EAFNOSUPPORT */));
    for (const auto& family : policy.socketFamilies) {
      if (family.protocols.empty()) {
        f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        continue;
      }
      const size_t count = family.protocols.size();
      f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])));
      for (size_t j = 0; j < count; j++) {
        f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, family.protocols[j], static_cast<uint8_t>(count - j), 0));
      }
      f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 93 /* EPROTONOSUPPORT */));
      f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
  }
  const size_t requests = policy.refusedIoctls.size();
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.ioctlNr, 0, static_cast<uint8_t>(requests + 3)));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
  for (size_t i = 0; i < requests; i++) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.refusedIoctls[i], static_cast<uint8_t>(requests - i), 0));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
  // setrlimit and prlimit64 of the fixed resource (the engine's verdicts: no effect, or refused
  // when the old limit is asked for too).
  const uint32_t noEffect = SECCOMP_RET_ERRNO | 0;
  if (policy.setrlimitNr != 0) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.setrlimitNr, 0, 4));
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.fixedRlimit, 1, 0));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, noEffect));
  }
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.prlimitNr, 0, 14));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, policy.fixedRlimit, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  for (size_t arg : {2, 3}) {
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(offsetof(struct seccomp_data, args) + arg * 8)));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(offsetof(struct seccomp_data, args) + arg * 8 + 4)));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, arg == 2 ? SECCOMP_RET_ALLOW : noEffect));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return f;
}

double nowMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/** Milliseconds the seccomp() call took in a fresh child, as the engine's child makes it. */
double loadOnce(const sock_fprog& program) {
  int pipeFds[2];
  if (pipe(pipeFds) != 0) exit(1);
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    double start = nowMs();
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
    double took = r == 0 ? nowMs() - start : -1;
    if (write(pipeFds[1], &took, sizeof took) != sizeof took) _exit(1);
    _exit(0);
  }
  double took = -1;
  if (read(pipeFds[0], &took, sizeof took) != sizeof took || took < 0) {
    fprintf(stderr, "seccomp() failed in the child\n");
    exit(1);
  }
  waitpid(child, nullptr, 0);
  close(pipeFds[0]);
  close(pipeFds[1]);
  return took;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 400;
  cb::SeccompPolicy policy = cb::seccompPolicy();
  // The engine's own program, exactly as the program's child loads it.
  const sock_fprog& engine = *static_cast<const sock_fprog*>(cb::seccompProgram());
  std::vector<sock_filter> linearInstructions = linearFilter(policy);
  const sock_fprog linear = {static_cast<unsigned short>(linearInstructions.size()), linearInstructions.data()};
  std::vector<double> engineMs, linearMs;
  for (int i = 0; i < rounds; i++) {
    // Alternate which goes first, with a 2 ms idle gap before each load.
    for (int turn = 0; turn < 2; turn++) {
      bool engineTurn = (i + turn) % 2 == 0;
      usleep(2000);
      (engineTurn ? engineMs : linearMs).push_back(loadOnce(engineTurn ? engine : linear));
    }
  }
  printf("# seccomp filter load, %d rounds, alternating, 2 ms gaps; ms\n", rounds);
  printf("%-44s %6s %7s %7s\n", "shape", "insns", "p50", "p90");
  printf("%-44s %6zu %7.3f %7.3f\n", "binary search (the engine's)", static_cast<size_t>(engine.len), percentile(engineMs, 0.5), percentile(engineMs, 0.9));
  printf("%-44s %6zu %7.3f %7.3f\n", "linear list (the same policy)", static_cast<size_t>(linear.len), percentile(linearMs, 0.5), percentile(linearMs, 0.9));
  return 0;
}
