#include "recipe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup_join.h"
#include "clone_vm.h"
#include "credentials.h"
#include "mounts.h"
#include "namespaces.h"
#include "rlimits.h"
#include "seccomp.h"
#include "state.h"
#include "sys.h"

namespace cb {
namespace {

constexpr int kKernelSigsetBytes = 8;

void report(const ContainerState& s, uint32_t kind, Failure f) {
  ReportRecord record{kind, f.step, f.err};
  sysWriteAll(s.reportWrite, &record, sizeof record);
}

[[noreturn]] void failAndExit(const ContainerState& s, Failure f, int exitCode) {
  report(s, kReportFailure, f);
  sysExit(exitCode);
}

/** init starts on the supervising process's descriptor table (kInitCloneFlags): it takes a
 * copy of its own and at once closes every descriptor in it but its own, so that it holds a
 * Node descriptor (a file being written, a socket) only for the microseconds between the two;
 * then it lets the supervisor close its ends of the pipes. (Waking the supervisor first could
 * put init off its core between the two.) */
Failure takeOwnFdTable(ContainerState& s) {
  CB_TRY(step_unshare_files, sys(SYS_unshare, CLONE_FILES));
  unsigned int next = 0;
  for (int keep : s.initKeepFds) {
    if (static_cast<unsigned int>(keep) > next) {
      CB_TRY(step_close_inherited_fds, sys(SYS_close_range, next, keep - 1, 0));
    }
    next = static_cast<unsigned int>(keep) + 1;
  }
  CB_TRY(step_close_inherited_fds, sys(SYS_close_range, next, ~0U, 0));
  __atomic_store_n(&s.fdTableWord, kFdTableOwn, __ATOMIC_SEQ_CST);
  // Not FUTEX_PRIVATE_FLAG: the supervisor's wait must also hear the kernel's wake at init's
  // exit (CLONE_CHILD_CLEARTID), which is a shared-futex wake.
  sys(SYS_futex, &s.fdTableWord, FUTEX_WAKE, 1, 0, 0, 0);
  return ok();
}

// ---- the handover between init and the program's child (a futex word both share)

int32_t gateValue(const ContainerState& s) { return __atomic_load_n(&s.programGate, __ATOMIC_SEQ_CST); }

void setGate(ContainerState& s, int32_t value) {
  __atomic_store_n(&s.programGate, value, __ATOMIC_SEQ_CST);
  sys(SYS_futex, &s.programGate, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

/** Sleeps while the gate holds `value`, at most `timeoutNs` per sleep (0: no timeout). */
void waitGateWhile(ContainerState& s, int32_t value, int64_t timeoutNs) {
  struct { long sec; long nsec; } timeout = {static_cast<long>(timeoutNs / 1000000000LL),
                                             static_cast<long>(timeoutNs % 1000000000LL)};
  if (gateValue(s) == value) {
    sys(SYS_futex, &s.programGate, FUTEX_WAIT_PRIVATE, value, timeoutNs > 0 ? &timeout : nullptr, 0, 0);
  }
}

// ---- the program's child (pid 2), between clone and execve

Failure resetSignals(const ContainerState& s) {
  // Dispositions set by Node (SIGPIPE ignored, ...) and init's all-blocked mask must not reach
  // the program: ignored signals and the mask survive execve. SIGPIPE stays ignored only where
  // the container was prepared so (PrepareOptions.ignoreSigpipe).
  struct Action { void* handler; unsigned long flags; void* restorer; uint64_t mask; };
  Action dfl = {nullptr /* SIG_DFL */, 0, nullptr, 0};
  Action ign = {reinterpret_cast<void*>(1) /* SIG_IGN */, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const Action* action = sig == SIGPIPE && s.programIgnoresSigpipe ? &ign : &dfl;
    long r = sys(SYS_rt_sigaction, sig, action, 0, kKernelSigsetBytes);
    if (r < 0 && r != -EINVAL) return Failure{step_reset_signals, static_cast<int32_t>(-r)};
  }
  uint64_t none = 0;
  CB_TRY(step_reset_signals, sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, kKernelSigsetBytes));
  return ok();
}

Failure redirectStdio(const ContainerState& s) {
  CB_TRY(step_dup_stdio, sys(SYS_dup3, s.stdinFd, 0, 0));
  CB_TRY(step_dup_stdio, sys(SYS_dup3, s.stdoutFd, 1, 0));
  CB_TRY(step_dup_stdio, sys(SYS_dup3, s.stderrFd, 2, 0));
  return ok();
}

bool hasSlash(const char* p) {
  for (; *p; p++)
    if (*p == '/') return true;
  return false;
}

/** An execve refused with ETXTBSY is tried again after 1, 2, 4, ... ms, this many times (~1 s
 * in all). The file is then open for writing somewhere, and in a work dir of ours that is
 * always a passing copy of the descriptor Node wrote it through (a compile's output copied into
 * this work dir, say): another container's init between its copy of the descriptor table and
 * its close_range (takeOwnFdTable: microseconds; before, clone made the copy, which
 * init closed only once it ran, milliseconds later: `npm run loadtest`, c true in a closed loop,
 * ~1 job in 1,000 failed then without this retry), or a child Node forks, until its exec. */
constexpr int kTextBusyRetries = 10;
constexpr int64_t kTextBusyFirstPauseNs = 1000000;

long execAt(ContainerState& s, const char* file, char* const* argv, char* const* envp) {
  int64_t pauseNs = kTextBusyFirstPauseNs;
  for (int retry = 0;; retry++) {
    // The wall time starts here (init reads it after the program is reaped).
    __atomic_store_n(&s.execStartNs, sysMonotonicNs(), __ATOMIC_SEQ_CST);
    long r = sys(SYS_execve, file, argv, envp);
    if (r != -ETXTBSY || retry == kTextBusyRetries) return r;
    struct { long sec; long nsec; } pause = {static_cast<long>(pauseNs / 1000000000LL),
                                             static_cast<long>(pauseNs % 1000000000LL)};
    sys(SYS_clock_nanosleep, 1 /* CLOCK_MONOTONIC */, 0, &pause, 0);
    pauseNs *= 2;
  }
}

/** execve, searching the PATH when argv[0] has no '/', like execvpe but without allocating. */
Failure execProgram(ContainerState& s) {
  const char* file = s.argvPointers[0];
  char* const* argv = s.argvPointers.data();
  char* const* envp = s.envPointers.data();
  if (hasSlash(file)) {
    return check(step_execve, execAt(s, file, argv, envp));
  }
  const size_t fileLength = __builtin_strlen(file);
  bool sawAccessDenied = false;
  const char* p = s.searchPath.c_str();
  for (;;) {
    const char* end = p;
    while (*end && *end != ':') end++;
    size_t dirLength = static_cast<size_t>(end - p);
    if (dirLength + 1 + fileLength + 1 <= sizeof s.execPath) {
      size_t n = 0;
      for (size_t i = 0; i < dirLength; i++) s.execPath[n++] = p[i];
      if (n == 0) s.execPath[n++] = '.';
      s.execPath[n++] = '/';
      for (size_t i = 0; i < fileLength; i++) s.execPath[n++] = file[i];
      s.execPath[n] = 0;
      long r = execAt(s, s.execPath, argv, envp);
      if (r == -EACCES) {
        sawAccessDenied = true;
      } else if (r != -ENOENT && r != -ENOTDIR) {
        return check(step_execve, r);
      }
    }
    if (*end == 0) break;
    p = end + 1;
  }
  return Failure{step_execve, sawAccessDenied ? EACCES : ENOENT};
}

/** path is dir or lies under it, compared by its characters (dir may end in '/'). */
bool withinDir(const char* path, const std::string& dir) {
  size_t n = dir.size();
  while (n > 1 && dir[n - 1] == '/') n--;
  for (size_t i = 0; i < n; i++)
    if (path[i] != dir[i]) return false;
  return path[n] == 0 || path[n] == '/';
}

bool hasDotDotComponent(const char* p) {
  for (const char* c = p; *c; c++) {
    bool starts = c == p || c[-1] == '/';
    if (starts && c[0] == '.' && c[1] == '.' && (c[2] == 0 || c[2] == '/')) return true;
  }
  return false;
}

/** argv[0] names a file of the work dir (the submission's, or its compile's), by a path with a
 * '/' that cannot leave it: "./main" from a cwd inside it, or "/box/main". A name searched in
 * the PATH is the image's. */
bool namesWorkDirFile(const ContainerState& s, const char* file) {
  if (!hasSlash(file) || hasDotDotComponent(file)) return false;
  if (file[0] == '/') return withinDir(file, s.workDir);
  return withinDir(s.cwd.c_str(), s.workDir) && !hasDotDotComponent(s.cwd.c_str());
}

/** An execve's errno that the file it named is to blame for, as a shell words it; nullptr for
 * the others (ENOMEM, ETXTBSY, E2BIG, ...), which are the sandbox's. */
const char* execFailureText(int err) {
  switch (err) {
    case ENOENT: return "No such file or directory";
    case ENOTDIR: return "Not a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EACCES: return "Permission denied";
    case ENOEXEC: return "Exec format error";
    case ELIBBAD: return "Accessing a corrupted shared library";
    case EINVAL: return "Invalid argument";
    default: return nullptr;
  }
}

/** An execve of a work dir file that failed for the file's sake (not an ELF or script this
 * kernel runs, not executable, a missing interpreter or dynamic linker, no such file) is the
 * program's failure, not the sandbox's: the child ends as a shell ends a command it could not
 * run (POSIX, "Command Search and Execution"; bash's exit codes): the reason on stderr, status
 * 127 when the file does not exist (ENOENT, and no such file), 126 otherwise. Judge0 and Piston, whose programs start through bash, answer
 * the same. Does not return for such a failure. */
void exitIfProgramsOwnExecFailure(const ContainerState& s, Failure f) {
  const char* file = s.argvPointers[0];
  const char* text = execFailureText(f.err);
  if (f.step != step_execve || text == nullptr || !namesWorkDirFile(s, file)) return;
  // Only ENOENT can mean the file itself is missing (else the interpreter it names is).
  bool exists = f.err != ENOENT || sys(SYS_faccessat, AT_FDCWD, file, F_OK, 0) == 0;
  static constexpr char kCannot[] = ": cannot execute: ";
  sysWriteAll(2, file, __builtin_strlen(file));
  sysWriteAll(2, kCannot, sizeof kCannot - 1);
  sysWriteAll(2, text, __builtin_strlen(text));
  sysWriteAll(2, "\n", 1);
  sysExit(exists ? 126 : 127);
}

/** What does not depend on the program, done while the container waits for it. The seccomp
 * filter is the costly part (~0.2 ms: the kernel checks it against every system call number to
 * build its cache); it refuses nothing that the steps after "go" need. The capability bounds
 * are some 45 system calls (one per capability), each through that filter once it is loaded:
 * here rather than after "go", where they took tens of microseconds of the job's critical path. */
Failure prepareBeforeGo(ContainerState& s) {
  // A session of its own: the child may wait a long time, and it must not share Node's process
  // group meanwhile (a Ctrl-C on the terminal of `cellblock start` would kill every waiting one).
  CB_TRY(step_setsid, sys(SYS_setsid));
  CB_TRY_FAILURE(joinCgroups(s));
  // A cgroup namespace rooted where the child now is, the run's cgroup: the program reads "/" as
  // its cgroup (/proc/self/cgroup), not the host's path to it, which names the service and its
  // instance, as containers with a cgroup namespace of their own do (Docker's default on v2).
  CB_TRY(step_unshare_cgroup, sys(SYS_unshare, CLONE_NEWCGROUP));
  CB_TRY_FAILURE(redirectStdio(s));
  // A new session has no controlling terminal: this takes stdin's (TIOCSCTTY needs the session
  // leader, and a terminal no other session holds: a fresh peer, opened with O_NOCTTY).
  if (s.controllingTerminal) CB_TRY(step_controlling_terminal, sys(SYS_ioctl, 0, TIOCSCTTY, 0));
  CB_TRY_FAILURE(resetSignals(s));
  CB_TRY_FAILURE(dropCapabilityBounds(s));
  CB_TRY_FAILURE(fixCoreDumpLimit());
  CB_TRY_FAILURE(installSeccomp(s));
  return ok();
}

/** After "go": what depends on the program and its limits. somaxconn and rlimits come before the
 * change of user: the sysctl is root's to write in the namespace, and raising a hard limit
 * needs CAP_SYS_RESOURCE. */
Failure prepareProgram(ContainerState& s) {
  CB_TRY_FAILURE(setListenBacklog(s));
  CB_TRY_FAILURE(applyResourceLimits(s));
  CB_TRY(step_chdir_cwd, sys(SYS_chdir, s.cwd.c_str()));
  // Here, not with the other descriptors before "go": a pre-warmed container does not know yet
  // whether its program's stderr is a stream of its own. Sharing stdout's open file (and offset)
  // keeps the two in the order the program wrote them.
  if (s.stderrToStdout) CB_TRY(step_dup_stdio, sys(SYS_dup3, 1, 2, 0));
  CB_TRY_FAILURE(becomeSandboxUser(s));
  // Everything above 2 is close-on-exec from here: the report pipe stays usable for an execve
  // failure and disappears with a successful one. A second guard: every descriptor this child
  // holds above 2 was made close-on-exec (the supervisor's O_CLOEXEC, MFD_CLOEXEC, pipe2 and
  // F_DUPFD_CLOEXEC; init's signalfd and somaxconn copy; the filter's listener), and init closed
  // all it inherited from Node. So EINVAL, a kernel before 5.11 without CLOSE_RANGE_CLOEXEC
  // (Debian 11's 5.10), is no failure; before 5.9 (no close_range) init failed long before this.
  long cloexec = sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (cloexec != -EINVAL) CB_TRY(step_close_fds, cloexec);
  Failure f = execProgram(s);
  exitIfProgramsOwnExecFailure(s, f);
  return f;
}

int programMain(void* arg) {
  ContainerState& s = *static_cast<ContainerState*>(arg);
  Failure early = prepareBeforeGo(s);
  if (early.failed()) {
    report(s, kReportFailure, early);
    setGate(s, kGateFailed);
    sysExit(127);
  }
  setGate(s, kGateJoined);
  // Waits here, already in the cgroup, until the run starts; if the container is destroyed
  // instead, init exits and the kernel kills this child with the PID namespace.
  while (gateValue(s) != kGateGo) waitGateWhile(s, kGateJoined, 0);
  Failure f = prepareProgram(s);
  failAndExit(s, f, 127);
}

// ---- init (pid 1)

Failure setUpContainer(ContainerState& s) {
  CB_TRY_FAILURE(takeOwnFdTable(s));
  CB_TRY(step_parent_death_signal, sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
  CB_TRY_FAILURE(buildFilesystem(s));
  CB_TRY_FAILURE(bringLoopbackUp());
  CB_TRY_FAILURE(setHostname(s));
  return ok();
}

struct Watch {
  int signalFd;
  int programPid;
  int64_t startNs;
  int64_t cpuBaselineNs;
  bool inBackground = false;
  /** waitid said init has no child left: no process but init is left in the PID namespace
   * (orphans become init's children), so there is nothing to kill. */
  bool noneLeft = false;
};

/** When the program exec'd, or "go" while its child has not got that far. */
int64_t execStartNs(const ContainerState& s, const Watch& w) {
  int64_t execNs = __atomic_load_n(&s.execStartNs, __ATOMIC_SEQ_CST);
  return execNs > 0 ? execNs : w.startNs;
}

void recordStatus(ContainerState& s, const siginfo_t& info, int64_t nowNs, const Watch& w) {
  s.wallTimeNs = nowNs - execStartNs(s, w);
  // The supervisor may release the child before init wakes to "go": then the child's setup
  // overlapped init's wake-up entirely.
  int64_t setupNs = execStartNs(s, w) - w.startNs;
  s.execNs = setupNs > 0 ? setupNs : 0;
  if (info.si_code == CLD_EXITED) {
    s.programStatusKind = kProgramExited;
  } else {
    s.programStatusKind = kProgramSignaled;
  }
  s.programStatusValue = info.si_status;
}

/** Reaps every exited child; true once the program itself has been reaped. */
bool reapChildren(ContainerState& s, Watch& w) {
  bool programDone = false;
  for (;;) {
    siginfo_t info;
    info.si_pid = 0;
    long r = sys(SYS_waitid, P_ALL, 0, &info, WEXITED | WNOHANG | __WALL, 0);
    if (r == -ECHILD) w.noneLeft = true;
    if (r < 0 || info.si_pid == 0) break;
    if (info.si_pid == w.programPid) {
      recordStatus(s, info, sysMonotonicNs(), w);
      programDone = true;
    }
  }
  return programDone;
}

/** A stream's memfd size; -1 for a pipe, or where fstat fails. */
int64_t memfdSize(int fd, bool isPipe) {
  if (isPipe) return -1;
  struct stat st;
  if (sys(SYS_fstat, fd, &st) < 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

/** Whether the run's memfds hold more than outputBytes together, or one of them more than
 * fileSizeBytes (which its RLIMIT_FSIZE lets it pass by one byte where that is at most
 * outputBytes: see configureProgram). A stream that is a pipe is not measured: init no longer
 * holds it (its descriptor number may be another file's by now), and its reader bounds it (a
 * connected run's peer reads it as input; a streaming run's caller counts it). fstat only: no
 * allocation here, in init. */
bool outputOverLimit(const ContainerState& s) {
  const int64_t out = memfdSize(s.stdoutFd, s.stdoutIsPipe);
  const int64_t err = memfdSize(s.stderrFd, s.stderrIsPipe);
  if (out > s.fileSizeBytes || err > s.fileSizeBytes) return true;
  return (out > 0 ? out : 0) + (err > 0 ? err : 0) > s.outputBytes;
}

/** Kills everything in the PID namespace but init and reaps it all (orphans are init's
 * children), recording the program's status if it is among them. */
void killEverything(ContainerState& s, Watch& w) {
  // kill(-1) walks every process of the host to find the namespace's: not when none is left.
  if (w.noneLeft) return;
  sys(SYS_kill, -1, SIGKILL);
  for (;;) {
    siginfo_t info;
    info.si_pid = 0;
    long r = sys(SYS_waitid, P_ALL, 0, &info, WEXITED | __WALL, 0);
    if (r == -EINTR) continue;
    if (r < 0) break;  // ECHILD: everything reaped
    if (info.si_pid == w.programPid) recordStatus(s, info, sysMonotonicNs(), w);
  }
  w.noneLeft = true;
}

void killRun(ContainerState& s, Watch& w, uint32_t reason) {
  s.killReasons |= reason;
  killEverything(s, w);
}

/** Lowers the run's CPU weight (docs/theory-of-operation.md, "Long runs and the background").
 * A matter of fairness, not of the result: a refused write leaves the default weight. */
void moveToBackground(const ContainerState& s) {
  sys(SYS_pwrite64, s.cpuWeightFd, s.backgroundWeightText.data(), s.backgroundWeightText.size(), 0);
}

void watchProgram(ContainerState& s, Watch& w) {
  struct pollfd fds[2] = {{w.signalFd, POLLIN, 0}, {s.cancelRead, POLLIN, 0}};
  for (;;) {
    // The wall limit counts from the program's execve (from "go" until the child gets there).
    const int64_t deadlineNs = execStartNs(s, w) + s.wallLimitNs;
    int64_t nowNs = sysMonotonicNs();
    if (nowNs >= deadlineNs) return killRun(s, w, kKilledWall);
    int64_t waitNs = deadlineNs - nowNs;
    if (waitNs > s.pollIntervalNs) waitNs = s.pollIntervalNs;
    struct { long sec; long nsec; } timeout = {static_cast<long>(waitNs / 1000000000LL),
                                               static_cast<long>(waitNs % 1000000000LL)};
    fds[0].revents = fds[1].revents = 0;
    sys(SYS_ppoll, fds, 2, &timeout, 0, kKernelSigsetBytes);
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo drained[8];
      sys(SYS_read, w.signalFd, drained, sizeof drained);
    }
    // Before the reap: once the program is gone, so is most of what it charged.
    sampleCgroupMemory(s);
    if (reapChildren(s, w)) return;
    if (fds[1].revents & (POLLIN | POLLHUP)) return killRun(s, w, kKilledCancel);
    int64_t cpuNs = readCgroupCpuNs(s);
    if (cpuNs >= 0 && cpuNs - w.cpuBaselineNs >= s.cpuLimitNs) return killRun(s, w, kKilledCpu);
    if (outputOverLimit(s)) return killRun(s, w, kKilledOutput);
    if (!w.inBackground && s.backgroundAfterCpuNs > 0 && cpuNs >= 0 &&
        cpuNs - w.cpuBaselineNs >= s.backgroundAfterCpuNs) {
      moveToBackground(s);
      w.inBackground = true;
    }
  }
}

/** Clones the program's child (into the run's cgroup where clone3 can, see cloneIntoCgroup) and
 * waits until it has joined the run's cgroup. */
Failure cloneProgramChild(ContainerState& s, int& pid) {
  char* stackTop = static_cast<char*>(s.programStack) + s.programStackBytes;
  long cloned = cloneIntoCgroup(s, programMain, stackTop, s.programStackBytes);
  if (cloned == -ENOSYS) cloned = cloneVm(kProgramCloneFlags | SIGCHLD, stackTop, programMain, &s);
  if (cloned < 0) return Failure{step_clone_program, static_cast<int32_t>(-cloned)};
  pid = static_cast<int>(cloned);
  constexpr int64_t kRecheckNs = 100 * 1000000LL;
  while (gateValue(s) == kGateJoining) {
    waitGateWhile(s, kGateJoining, kRecheckNs);
    // A child that died without a word (killed from outside) must not leave init waiting.
    siginfo_t info;
    info.si_pid = 0;
    long r = sys(SYS_waitid, P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT | __WALL, 0);
    if (gateValue(s) == kGateJoining && r == 0 && info.si_pid == pid) {
      return Failure{step_wait_program, ECHILD};
    }
  }
  return ok();
}

/** Returns once the supervisor writes to or closes the cancel pipe: it has the result. Init's
 * exit would otherwise take this core (the namespaces' teardown) just as the thread that reads
 * the result is woken, often on this same core. */
void waitForTeardown(ContainerState& s) {
  char word = 0;
  while (sys(SYS_read, s.cancelRead, &word, 1) == -EINTR) {
  }
}

[[noreturn]] void runProgram(ContainerState& s, int signalFd, int programPid) {
  // Unless a /tmp resize came first, the supervisor has already released the child: the CPU
  // baseline below may then include what the program used before init woke (microseconds; the
  // reported CPU time comes from the cgroup, reset while preparing, and is exact).
  Failure f = resizeTmp(s);
  if (f.failed()) failAndExit(s, f, 1);
  Watch w{signalFd, programPid, 0, 0};
  w.cpuBaselineNs = readCgroupCpuNs(s);
  if (w.cpuBaselineNs < 0) w.cpuBaselineNs = 0;
  w.startNs = sysMonotonicNs();
  setGate(s, kGateGo);
  watchProgram(s, w);
  // What the program left running dies now rather than with init, so that the supervisor can
  // take the result before the kernel tears the namespaces down (~0.2 ms) as init exits.
  killEverything(s, w);
  report(s, kReportDone, ok());
  if (s.initWaitsAfterDone) waitForTeardown(s);
  sysExit(0);
}

}  // namespace

void releaseProgram(ContainerState& s) { setGate(s, kGateGo); }

int initMain(void* arg) {
  ContainerState& s = *static_cast<ContainerState*>(arg);
  Failure f = setUpContainer(s);
  if (f.failed()) failAndExit(s, f, 1);
  uint64_t childMask = 1ULL << (SIGCHLD - 1);
  long signalFd = sys(SYS_signalfd4, -1, &childMask, kKernelSigsetBytes, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signalFd < 0) failAndExit(s, Failure{step_signalfd, static_cast<int32_t>(-signalFd)}, 1);
  int programPid = -1;
  f = cloneProgramChild(s, programPid);
  if (f.failed()) failAndExit(s, f, 1);
  // The child has already reported why it could not join.
  if (gateValue(s) == kGateFailed) sysExit(1);
  // The child holds the pipe ends as its stdin, stdout and stderr now: init's copies would keep
  // the other end from seeing end of file (or SIGPIPE) once the program is gone.
  if (s.stdinIsPipe) sys(SYS_close, s.stdinFd);
  if (s.stdoutIsPipe) sys(SYS_close, s.stdoutFd);
  if (s.stderrIsPipe) sys(SYS_close, s.stderrFd);
  holdProgramFilter(s, programPid);
  countJoin(s.joinedAtClone);
  report(s, kReportReady, ok());
  char go = 0;
  long n;
  do {
    n = sys(SYS_read, s.goRead, &go, 1);
  } while (n == -EINTR);
  if (n != 1) sysExit(0);  // the supervisor destroyed the container before starting it
  runProgram(s, static_cast<int>(signalFd), programPid);
}

}  // namespace cb
