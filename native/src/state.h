// One container's state: filled by the supervisor (JS thread) before clone and before "go", read by
// the container's init and the program's pre-exec child (which share this memory through
// CLONE_VM), and written back by init with what it observed. Everything the clone side needs is
// laid out here in advance so that nothing is allocated after clone.
#pragma once

#include <stdint.h>
#include <sys/resource.h>

#include <atomic>
#include <string>
#include <vector>

#include "steps.h"

namespace cb {

/** What init and the program's child send to the supervisor on the report pipe. */
struct ReportRecord {
  uint32_t kind;  // kReportReady, kReportFailure or kReportDone
  uint32_t step;
  int32_t err;
};
constexpr uint32_t kReportReady = 1;
constexpr uint32_t kReportFailure = 2;
/** init: the run is over, every process of it is dead and reaped, what init recorded is final. */
constexpr uint32_t kReportDone = 3;

/** Why init killed the run; bits of ContainerState::killReasons. */
constexpr uint32_t kKilledCpu = 1;
constexpr uint32_t kKilledWall = 2;
constexpr uint32_t kKilledOutput = 4;
constexpr uint32_t kKilledCancel = 8;

/** The handover between init and the program's child, a futex word in the shared memory. The
 * child is cloned while preparing and joins the run's cgroup then (v2: is cloned into it), so
 * that the attach (an RCU grace period after idle on the default cgroup mode, see
 * kernel-costs.md) is off the job's critical path; it then waits for init to pass on "go". */
constexpr int32_t kGateJoining = 0;  // the child joins the cgroup, sets stdio, signals, seccomp
constexpr int32_t kGateJoined = 1;   // ... and waits for "go"
constexpr int32_t kGateFailed = 2;   // a step of that failed; the child reported it and exits
constexpr int32_t kGateGo = 3;       // init released the child: it sets up and execs

/** Whose descriptor table init runs on (ContainerState::fdTableWord, a futex word). */
constexpr int32_t kFdTableInitGone = 0;  // written by the kernel when init exits (CLONE_CHILD_CLEARTID)
constexpr int32_t kFdTableShared = 1;    // the supervising process's, from clone on
constexpr int32_t kFdTableOwn = 2;       // a copy of init's own, after its first step

/** How the program ended, as init observed it. */
constexpr int32_t kProgramNotRun = 0;
constexpr int32_t kProgramExited = 1;
constexpr int32_t kProgramSignaled = 2;

struct BindMount {
  std::string source;  // host path
  std::string target;  // host path under the new root, before pivot_root
};

struct Symlink {
  std::string target;    // link contents
  std::string linkPath;  // host path under the new root, before pivot_root
};

struct ResourceLimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

struct ContainerState {
  // ---- prepare: filesystem and identity of the container (paths are host paths before pivot).
  std::string rootDir;
  std::string workDirHost;
  std::string workDirTarget;
  std::string workDir;  // the same, as the program sees it ("/box")
  std::string procTarget;
  std::string devTarget;
  std::string tmpTarget;
  std::string devMountOptions;
  std::string tmpMountOptions;
  int64_t preparedTmpBytes = 0;
  std::string hostname;
  std::vector<std::string> procReadonlyTargets;
  std::vector<BindMount> procMasks;  // /dev/null bound over files a program never needs
  std::vector<BindMount> devNodes;
  std::vector<Symlink> devSymlinks;
  /** The network namespace's TCP memory (docs/theory-of-operation.md, "TCP memory"): init writes
   * tcpRmemText to tcp_rmem while /proc/sys is still writable, and opens somaxconn then for the
   * program's child, which writes the run's own value after "go" (a container prepared ahead
   * does not know its limits). Host paths under the new root's /proc, before pivot. */
  std::string tcpRmemPath;
  std::string tcpRmemText;
  std::string somaxconnPath;
  /** Opened by init, in its own descriptor table (the supervisor has no copy to close); the
   * program's child inherits it with the rest of init's table at its clone. */
  int somaxconnFd = -1;

  // ---- prepare: descriptors opened before clone.
  std::vector<int> cgroupJoinFds;  // "0" is written to each by the program's child
  int cgroupDirFd = -1;  // v2: the run's cgroup, which clone3 puts the program's child into
  bool joinedAtClone = false;  // set by init: the child was born in the cgroup, it writes no join
  int cpuUsageFd = -1;              // polled by init; first integer in the file
  int64_t cpuUsageScaleNs = 1;      // ns per unit of that integer
  int memorySampleFd = -1;          // PrepareOptions.memorySamplePath; -1: not sampled
  int cpuWeightFd = -1;             // written by init: the background weight, once
  std::string backgroundWeightText;  // that weight as the file takes it
  int stdinFd = -1, stdoutFd = -1, stderrFd = -1;
  /** stdin / stdout / stderr is a pipe (PrepareOptions.stdinPipeFd) to another container's program
   * or to the caller, not a memfd: nothing is written to it or read from it here, its output is
   * not measured (the reader bounds it), and init and the supervisor close their copies once the
   * program's child holds its own, so that the other end sees end of file (or SIGPIPE) as soon as
   * the program is gone. */
  bool stdinIsPipe = false, stdoutIsPipe = false, stderrIsPipe = false;
  bool programIgnoresSigpipe = false;  // PrepareOptions.ignoreSigpipe
  bool controllingTerminal = false;    // PrepareOptions.controllingTerminal
  int reportRead = -1, reportWrite = -1;
  int goRead = -1, goWrite = -1;
  int cancelRead = -1, cancelWrite = -1;
  std::vector<int> initKeepFds;  // sorted; init closes every other inherited descriptor

  void* initStack = nullptr;
  size_t initStackBytes = 0;
  void* programStack = nullptr;
  size_t programStackBytes = 0;

  // ---- start: the program, written before "go".
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::vector<char*> argvPointers;  // NULL-terminated
  std::vector<char*> envPointers;   // NULL-terminated
  std::string searchPath;           // PATH used when argv[0] has no '/'
  std::string cwd;
  char execPath[4096] = {0};
  bool remountTmp = false;
  /** Init stays after "done" until the cancel pipe is written or closed (cancelContainer), so
   * that its exit, which tears the namespaces down, does not run ahead of the result. False
   * when the JS thread could not watch the report pipe: "exit" then comes with init's reap. */
  bool initWaitsAfterDone = false;
  std::string tmpRemountOptions;
  std::vector<ResourceLimit> rlimits;
  std::string somaxconnText;  // StartOptions.somaxconn, as the file takes it
  uint32_t uid = 60000, gid = 60000;
  int64_t cpuLimitNs = 0;
  int64_t wallLimitNs = 0;
  int64_t outputBytes = 0;
  int64_t fileSizeBytes = 0;  // Limits.fileSizeBytes: bounds each output memfd too (outputOverLimit)
  int64_t pollIntervalNs = 5000000;
  int64_t backgroundAfterCpuNs = 0;  // 0: never move to the background weight
  bool stderrToStdout = false;      // StartOptions.stderrToStdout
  std::vector<int> accountingFds;  // StartOptions.accountingFds: not ours to close
  int capLastCap = 40;
  const void* seccompProgram = nullptr;  // struct sock_fprog*

  // ---- written by init (and the program's child), read by the supervisor after init is reaped.
  int32_t programStatusKind = kProgramNotRun;
  int32_t programStatusValue = 0;
  uint32_t killReasons = 0;
  int64_t wallTimeNs = 0;
  int64_t execNs = 0;  // from "go" to the program's execve (the child's setup after "go")
  int64_t sampledPeakMemoryBytes = 0;  // the greatest reading of memorySampleFd during the run
  int32_t programGate = kGateJoining;  // futex word; see kGate*
  /** Futex word: kFdTableShared while init still runs on the supervising process's descriptor
   * table, kFdTableOwn once it has a copy of its own; the kernel writes 0 and wakes it when init
   * exits (CLONE_CHILD_CLEARTID). The supervisor closes its copies of init's ends only once it
   * is no longer kFdTableShared: before, closing them would close them for init too. */
  int32_t fdTableWord = kFdTableShared;
  int64_t execStartNs = 0;             // CLOCK_MONOTONIC just before the program's execve
  /** The program's child: its listener on its seccomp filter, a descriptor in its own table
   * (-1: none), copied by init to keep the filter alive (holdProgramFilter). */
  int filterListenerFd = -1;

  // ---- supervisor bookkeeping (JS thread and supervisor thread).
  int initPid = -1;
  /** The supervisor closed its copies of init's ends (report write, go read, cancel read,
   * cgroup.procs), once init had a descriptor table of its own (fdTableWord); the fields keep
   * their values because init reads them. */
  bool initEndsClosed = false;
  bool counted = false;  // counted in resourceCounts().openStates until released
  /** JS thread: readRunEnd read init's "done". A started run whose init is reaped without it was
   * cut short from outside (collectRunReport): what init recorded is not the run's end. */
  bool doneRead = false;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};

  ~ContainerState();
  /** Closes every descriptor and unmaps the stacks; on the JS thread, once init is reaped. */
  void release();
};

}  // namespace cb
