#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "sys.h"
#include "syscall_numbers.h"

namespace cb {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
constexpr bool kRejectX32 = true;
constexpr uint32_t kX32SyscallBit = 0x40000000;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
constexpr bool kRejectX32 = false;
constexpr uint32_t kX32SyscallBit = 0;
#endif

// System calls numbered from here on are refused with ENOSYS, as a kernel without them would: a
// kernel newer than this policy has calls nobody has judged (the list below refuses the known
// dangerous ones, so an unknown call would otherwise be allowed). Since Linux 5.1 (424,
// pidfd_send_signal) every architecture numbers new calls alike. Reviewed through 469,
// file_setattr (Linux 6.17).
constexpr uint32_t kFirstUnreviewedSyscall = 470;

// Refused with EPERM. Policy as data: one entry per system call. The older calls by the headers'
// names, which every header since Linux 4.3 (userfaultfd) has on x86_64 and aarch64: a build
// against headers lacking one fails here rather than allowing it. Guarded only where aarch64 has
// no such call (iopl, ioperm, uselib, _sysctl) or the kernel has dropped it (nfsservctl,
// lookup_dcookie: ENOSYS from the kernel itself, whatever headers may still name). The calls from
// 424 on by syscall_numbers.h's numbers, which no header can lack: a refusal left out for a
// missing name would leave the call allowed (clone3 could pass CLONE_NEWUSER, which only clone's
// flags are checked for; io_uring would run calls out of this filter's sight).
const long kRefusedSyscalls[] = {
    SYS_mount,
    SYS_umount2,
    SYS_pivot_root,
    SYS_chroot,
    SYS_ptrace,
    SYS_kexec_load,
    SYS_kexec_file_load,
    SYS_reboot,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_bpf,
    SYS_perf_event_open,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
    SYS_unshare,
    SYS_setns,
    SYS_userfaultfd,
    SYS_swapon,
    SYS_swapoff,
    SYS_acct,
    SYS_settimeofday,
    SYS_clock_settime,
    SYS_clock_adjtime,
    SYS_adjtimex,
    SYS_syslog,
    SYS_open_by_handle_at,
    SYS_name_to_handle_at,
    kFsopen,
    kFsmount,
    kMoveMount,
    kOpenTree,
    kOpenTreeAttr,
    kFspick,
    kFsconfig,
    kMountSetattr,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    kPidfdGetfd,
#ifdef SYS_iopl
    SYS_iopl,
#endif
#ifdef SYS_ioperm
    SYS_ioperm,
#endif
    SYS_quotactl,
    kQuotactlFd,
#ifdef SYS_lookup_dcookie
    SYS_lookup_dcookie,
#endif
    SYS_vhangup,
    SYS_sethostname,
    SYS_setdomainname,
#ifdef SYS_uselib
    SYS_uselib,
#endif
#ifdef SYS__sysctl
    SYS__sysctl,
#endif
    // io_uring performs system calls on the program's behalf, out of this filter's sight.
    kIoUringSetup,
    kIoUringEnter,
    kIoUringRegister,
    SYS_fanotify_init,
#ifdef SYS_nfsservctl
    SYS_nfsservctl,
#endif
};

constexpr uint32_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET;

// socket() and socketpair() only for these address families; any other fails with
// EAFNOSUPPORT, as on a kernel built without it. The network namespace confines the IP families
// (a loopback of the container's own) and netlink; it does not confine AF_VSOCK (a VM's channel
// to its hypervisor, reachable from any namespace), and the rest (AF_ALG, AF_PACKET, AF_KEY,
// AF_TIPC, AF_RDS, AF_BLUETOOTH...) are no submission's business and the kernel's most exposed
// code.
// Within a family, only these protocols (the third argument); any other fails with
// EPROTONOSUPPORT. The kernel loads the module of a protocol it lacks for anyone who asks for a
// socket of it (request_module for "net-pf-2-proto-132": SCTP; L2TP, DCCP; a netlink protocol
// or generic netlink family), so that one submission could bring rarely used code, with its
// history of privilege escalations, into the kernel every job shares. What a program makes of
// its own loopback: TCP, UDP and ping sockets (0 picks the type's default), and the routing
// netlink that getaddrinfo and getifaddrs read. protocolCount 0: any (unix sockets load nothing).
struct SocketFamily {
  uint32_t family;
  uint32_t protocols[4];
  uint8_t protocolCount;
};
const SocketFamily kSocketFamilies[] = {
    {AF_UNIX, {}, 0},
    {AF_INET, {0, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP}, 4},
    {AF_INET6, {0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6}, 4},
    {AF_NETLINK, {NETLINK_ROUTE}, 1},
};
constexpr size_t kSocketFamilyCount = sizeof kSocketFamilies / sizeof kSocketFamilies[0];

// ioctl() requests refused with EPERM whatever the descriptor: a terminal's line discipline
// (TIOCSETD: the kernel loads the discipline's module, n_hdlc and n_gsm among them, for any
// terminal's owner), typing into a terminal's input (TIOCSTI) and the virtual console's
// multiplexed requests (TIOCLINUX). A terminal run's program owns its pseudo-terminal.
const uint32_t kRefusedIoctls[] = {TIOCSETD, TIOCSTI, TIOCLINUX};
constexpr size_t kRefusedIoctlCount = sizeof kRefusedIoctls / sizeof kRefusedIoctls[0];

// setsockopt(fd, SOL_SOCKET, one of these, ...) succeeds without effect, whatever the socket: a
// listening socket's receive buffer is what each connection it has not yet accepted may queue,
// and until the accept that memory is charged to no cgroup (docs/theory-of-operation.md, "TCP
// memory"). SO_RCVBUF would raise it to net.core.rmem_max (global, the host's: 4 MiB queued
// per such connection was measured), SO_RCVLOWAT to about tcp_rmem's maximum; the network
// namespace's tcp_rmem default is what every socket has instead, and reading sockets grow it by
// the kernel's autotuning as before (charged, up to tcp_rmem's maximum). Success, not an error:
// both are hints a program must work without (the kernel clamps the one, and a read may return
// less than the other's mark all the same). SO_RCVBUFFORCE needs CAP_NET_ADMIN: refused anyway.
const uint32_t kIgnoredSocketOptions[] = {SO_RCVBUF, SO_RCVLOWAT};
constexpr size_t kIgnoredSocketOptionCount = sizeof kIgnoredSocketOptions / sizeof kIgnoredSocketOptions[0];

// The core dump limit the engine sets (RLIMIT_CORE 1, fixCoreDumpLimit in rlimits.h) is not
// changed: setrlimit(RLIMIT_CORE, ...) and prlimit64(pid, RLIMIT_CORE, new, NULL) succeed without
// effect; prlimit64 with both a new and an old limit is refused (EPERM: the old one would be left
// unread); reading the limit works. Where core_pattern pipes dumps to a helper (systemd-coredump,
// apport), the kernel ignores any limit but 1 and starts the helper as root on the host, outside
// the container and its cgroups, for every crash: a program lowering its limit to 0 could start
// it 128 processes at a time. 1 is also below the least core file the kernel writes (a page): no
// core file either, which is what a program lowering the limit asks for. Success, not EPERM: the
// sanitizers (ASan, TSan, MSan) lower it at start-up and abort when they cannot.
constexpr uint32_t kFixedRlimit = RLIMIT_CORE;

sock_filter stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}

constexpr uint32_t kRefuse = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
constexpr uint32_t kNoSys = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
constexpr uint32_t kNoFamily = SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA);
constexpr uint32_t kNoProtocol = SECCOMP_RET_ERRNO | (EPROTONOSUPPORT & SECCOMP_RET_DATA);
// An "error" of 0: the call returns 0, as if it had succeeded, having done nothing.
constexpr uint32_t kNoEffect = SECCOMP_RET_ERRNO | 0;

/** What the filter does with one system call number; every other number is allowed. */
struct Rule {
  uint32_t nr;
  enum Kind { kRefused, kNotImplemented, kCloneFlagsChecked, kSocketFamilyChecked, kSocketOptionChecked, kIoctlRequestChecked, kSetrlimitChecked, kPrlimitChecked } kind;
};

std::vector<Rule> sortedRules() {
  std::vector<Rule> rules;
  for (long nr : kRefusedSyscalls) rules.push_back({static_cast<uint32_t>(nr), Rule::kRefused});
  rules.push_back({kClone3, Rule::kNotImplemented});
  rules.push_back({SYS_clone, Rule::kCloneFlagsChecked});
  rules.push_back({SYS_socket, Rule::kSocketFamilyChecked});
  rules.push_back({SYS_socketpair, Rule::kSocketFamilyChecked});
  rules.push_back({SYS_setsockopt, Rule::kSocketOptionChecked});
  rules.push_back({SYS_ioctl, Rule::kIoctlRequestChecked});
#ifdef SYS_setrlimit
  rules.push_back({SYS_setrlimit, Rule::kSetrlimitChecked});
#endif
  rules.push_back({SYS_prlimit64, Rule::kPrlimitChecked});
  std::sort(rules.begin(), rules.end(), [](const Rule& a, const Rule& b) { return a.nr < b.nr; });
  rules.erase(std::unique(rules.begin(), rules.end(), [](const Rule& a, const Rule& b) { return a.nr == b.nr; }),
              rules.end());
  return rules;
}

/** Loads argument `arg`'s low word, then one test per value jumping to `verdict`, then "allow",
 * `verdict`: count + 3 instructions, every path returning. */
void emitArgumentIn(std::vector<sock_filter>& f, size_t arg, const uint32_t* values, size_t count, uint32_t verdict) {
  f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(offsetof(struct seccomp_data, args) + arg * 8)));
  for (size_t i = 0; i < count; i++) {
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, values[i], static_cast<uint8_t>(count - i), 0));
  }
  f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(stmt(BPF_RET | BPF_K, verdict));
}

/** The rule's test and its verdicts; falls through to the next instruction for other numbers. */
void emitRule(std::vector<sock_filter>& f, const Rule& rule) {
  switch (rule.kind) {
    case Rule::kRefused:
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, 1));
      f.push_back(stmt(BPF_RET | BPF_K, kRefuse));
      break;
    case Rule::kNotImplemented:
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, 1));
      f.push_back(stmt(BPF_RET | BPF_K, kNoSys));
      break;
    case Rule::kCloneFlagsChecked:
      // clone(flags, ...): flags is the first argument on x86_64 and aarch64; every CLONE_NEW*
      // bit is in its low 32 bits (little-endian: the first word). Loading it replaces the
      // number in A: every path below returns.
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, 4));
      f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
      f.push_back(jump(BPF_JMP | BPF_JSET | BPF_K, kCloneNamespaceFlags, 0, 1));
      f.push_back(stmt(BPF_RET | BPF_K, kRefuse));
      f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
      break;
    case Rule::kSocketFamilyChecked: {
      // socket(family, type, protocol), socketpair(family, type, protocol, ...): ints, read as
      // their arguments' low words. After the family's load: one test per family jumping to
      // that family's block, then "refuse". A block is "allow" for a family that takes any
      // protocol, else the protocol's load, one test per protocol jumping to "allow", "refuse",
      // "allow". Every path returns.
      auto blockLength = [](const SocketFamily& family) -> size_t {
        return family.protocolCount == 0 ? 1 : family.protocolCount + 3u;
      };
      size_t length = 2 + kSocketFamilyCount + 1;
      for (const SocketFamily& family : kSocketFamilies) length += blockLength(family);
      const size_t start = f.size();
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, static_cast<uint8_t>(length - 1)));
      f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
      size_t blockStart = 2 + kSocketFamilyCount + 1;  // from start
      for (size_t i = 0; i < kSocketFamilyCount; i++) {
        const size_t at = 2 + i;
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kSocketFamilies[i].family, static_cast<uint8_t>(blockStart - at - 1), 0));
        blockStart += blockLength(kSocketFamilies[i]);
      }
      f.push_back(stmt(BPF_RET | BPF_K, kNoFamily));
      for (const SocketFamily& family : kSocketFamilies) {
        if (family.protocolCount == 0) {
          f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
          continue;
        }
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])));
        for (uint8_t j = 0; j < family.protocolCount; j++) {
          f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, family.protocols[j], static_cast<uint8_t>(family.protocolCount - j), 0));
        }
        f.push_back(stmt(BPF_RET | BPF_K, kNoProtocol));
        f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
      }
      // The policy is fixed data: a slip in the lengths above fails the first container (and
      // the seccomp test) outright.
      if (f.size() - start != length || length > 255) std::abort();
      break;
    }
    case Rule::kSocketOptionChecked:
      // setsockopt(fd, level, optname, ...): ints, their arguments' low words. After the level's
      // load: not SOL_SOCKET jumps over the option's test (to its "allow").
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, static_cast<uint8_t>(kIgnoredSocketOptionCount + 5)));
      f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, static_cast<uint8_t>(kIgnoredSocketOptionCount + 1)));
      emitArgumentIn(f, 2, kIgnoredSocketOptions, kIgnoredSocketOptionCount, kNoEffect);
      break;
    case Rule::kIoctlRequestChecked:
      // ioctl(fd, request, ...): the request is an unsigned int, the second argument's low word.
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, static_cast<uint8_t>(kRefusedIoctlCount + 3)));
      emitArgumentIn(f, 1, kRefusedIoctls, kRefusedIoctlCount, kRefuse);
      break;
    case Rule::kSetrlimitChecked:
      // setrlimit(resource, new): the resource is an unsigned int, the first argument.
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, 4));
      f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kFixedRlimit, 1, 0));
      f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
      f.push_back(stmt(BPF_RET | BPF_K, kNoEffect));
      break;
    case Rule::kPrlimitChecked: {
      // prlimit64(pid, resource, new, old), for the fixed resource: `new` NULL (a pointer: both
      // words zero) reads the limit: allowed; else `old` NULL: no effect; else refused.
      const size_t start = f.size();
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, rule.nr, 0, 14));
      f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kFixedRlimit, 1, 0));
      f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
      // Argument `arg` is NULL (both words zero): return `ifNull`; else on to the five after.
      auto ifNullReturn = [&f](size_t arg, uint32_t ifNull) {
        const uint32_t low = static_cast<uint32_t>(offsetof(struct seccomp_data, args) + arg * 8);
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, low));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, low + 4));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
        f.push_back(stmt(BPF_RET | BPF_K, ifNull));
      };
      ifNullReturn(2, SECCOMP_RET_ALLOW);  // no new limit: a read
      ifNullReturn(3, kNoEffect);          // no old limit asked for
      f.push_back(stmt(BPF_RET | BPF_K, kRefuse));
      if (f.size() - start != 15) std::abort();
      break;
    }
  }
}

/** Up to this many rules are tested one after the other; more are split in two by number. */
constexpr size_t kRulesPerLeaf = 4;

/** rules[lo, hi) as a binary search on the number in A, each leaf a few tests then "allow". The
 * kernel runs a filter for every system call number when it is loaded (to cache the calls it
 * always allows): ~0.05 ms per container this way, ~0.11 ms as a linear list of the same tests
 * (`npm run bench:seccomp`). */
void emitTree(std::vector<sock_filter>& f, const std::vector<Rule>& rules, size_t lo, size_t hi) {
  if (hi - lo <= kRulesPerLeaf) {
    for (size_t i = lo; i < hi; i++) emitRule(f, rules[i]);
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    return;
  }
  size_t mid = lo + (hi - lo) / 2;
  size_t split = f.size();
  f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, rules[mid].nr, 0, 0));
  emitTree(f, rules, lo, mid);
  // Over the lower half. A jump's offset has 8 bits; the policy is fixed data, so this either
  // always holds or fails the first container (and the seccomp test) outright.
  size_t over = f.size() - split - 1;
  if (over > 255) std::abort();
  f[split].jt = static_cast<uint8_t>(over);
  emitTree(f, rules, mid, hi);
}

std::vector<sock_filter> buildFilter() {
  std::vector<sock_filter> f;
  f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0));
  f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  if (kRejectX32) {
    f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, 0, 1));
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  }
  f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, kFirstUnreviewedSyscall, 0, 1));
  f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
  std::vector<Rule> rules = sortedRules();
  emitTree(f, rules, 0, rules.size());
  return f;
}

const std::vector<sock_filter>& filter() {
  static const std::vector<sock_filter> built = buildFilter();
  return built;
}

}  // namespace

const void* seccompProgram() {
  static const sock_fprog program = {static_cast<unsigned short>(filter().size()),
                                     const_cast<sock_filter*>(filter().data())};
  return &program;
}

SeccompPolicy seccompPolicy() {
  SeccompPolicy policy;
  for (const sock_filter& insn : filter()) {
    policy.filter.push_back({insn.code, insn.jt, insn.jf, insn.k});
  }
  for (long nr : kRefusedSyscalls) policy.refused.push_back(static_cast<uint32_t>(nr));
  policy.notImplemented.push_back(kClone3);
  policy.cloneNr = SYS_clone;
  policy.socketNrs = {SYS_socket, SYS_socketpair};
  for (const SocketFamily& family : kSocketFamilies) {
    policy.socketFamilies.push_back({family.family, std::vector<uint32_t>(family.protocols, family.protocols + family.protocolCount)});
  }
  policy.setsockoptNr = SYS_setsockopt;
  policy.socketOptionLevel = SOL_SOCKET;
  policy.ignoredSocketOptions.assign(kIgnoredSocketOptions, kIgnoredSocketOptions + kIgnoredSocketOptionCount);
  policy.ioctlNr = SYS_ioctl;
  policy.refusedIoctls.assign(kRefusedIoctls, kRefusedIoctls + kRefusedIoctlCount);
#ifdef SYS_setrlimit
  policy.setrlimitNr = SYS_setrlimit;
#endif
  policy.prlimitNr = SYS_prlimit64;
  policy.fixedRlimit = kFixedRlimit;
  policy.cloneNamespaceFlags = kCloneNamespaceFlags;
  policy.auditArch = kAuditArch;
  policy.x32SyscallBit = kRejectX32 ? kX32SyscallBit : 0;
  policy.firstUnreviewedNr = kFirstUnreviewedSyscall;
  return policy;
}

// No SECCOMP_FILTER_FLAG_SPEC_ALLOW: where the host's administrator chose speculation mitigations
// for seccomp'd tasks (spec_store_bypass_disable=seccomp, spectre_v2_user=seccomp), an untrusted
// program is what they are for. Elsewhere the flag changes nothing. runc sets it only on request.
Failure installSeccomp(ContainerState& s) {
  long listener = sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, s.seccompProgram);
  // EINVAL: a kernel without listeners (before 5.0). EBUSY: the worker itself runs under a filter
  // that has a listener (a container manager's), and a task may sit under only one such.
  if (listener == -EINVAL || listener == -EBUSY) {
    listener = sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, s.seccompProgram);
  }
  CB_TRY(step_seccomp, listener);
  s.filterListenerFd = listener > 0 ? static_cast<int>(listener) : -1;
  return ok();
}

void holdProgramFilter(const ContainerState& s, int childPid) {
  if (s.filterListenerFd < 0) return;
  long pidfd = sys(kPidfdOpen, childPid, 0);
  if (pidfd < 0) return;
  // Never closed: it goes with init's exit (the copy is close-on-exec, and init never execs).
  sys(kPidfdGetfd, pidfd, s.filterListenerFd, 0);
  sys(SYS_close, pidfd);
}

}  // namespace cb
