// The supervisor side of one container: prepares its state before clone (descriptors, stacks,
// paths), runs the dedicated thread that clones init and waits for it, and passes "go",
// cancellation and destruction to init. No JS here (see addon.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "state.h"
#include "steps.h"

namespace cb {

/** A setup step that failed in the supervisor itself, before or instead of clone. */
struct SetupError {
  Failure failure;
};

struct PrepareOptions {
  std::string rootDir;
  std::string workDirHost;
  std::string workDir;  // inside the container, absolute
  std::string hostname;
  int64_t tmpBytes = 0;
  std::vector<std::string> cgroupJoinPaths;
  /** v2: the run cgroup's directory, for clone3's CLONE_INTO_CGROUP (the join files stay the
   * fallback where the kernel lacks it); empty: join through the files. */
  std::string cgroupCloneIntoPath;
  std::string cpuUsagePath;
  int64_t cpuUsageScaleNs = 1;
  /** A file whose first integer is the cgroup's memory use in bytes (v2 memory.current), read
   * by init at every poll of the run, its greatest reading reported as the run's peak: where
   * the kernel keeps no peak (cgroup v2 before Linux 5.19 has no memory.peak). Empty: none. */
  std::string memorySamplePath;
  /** The cgroup's CPU weight file (v1 cpu.shares, v2 cpu.weight) and the background weight init
   * writes to it once the run has used backgroundAfterCpuNs; empty path: never. */
  std::string cpuWeightPath;
  int64_t backgroundCpuWeight = 0;
  /** net.ipv4.tcp_rmem of the container's network namespace ("min default max"), written by
   * init while it sets the container up. */
  std::string tcpRmem;
  /** A pipe end (the caller's, which it keeps and closes) to be the program's stdin, stdout or
   * stderr in place of the memfd: a connected run (an interactive problem's two programs, each
   * one's stdout the other's stdin), or a streaming run (all three pipes to the caller, which
   * reads the output as it is written). -1: the memfd. The state takes a copy of its own. */
  int stdinPipeFd = -1;
  int stdoutPipeFd = -1;
  int stderrPipeFd = -1;
  /** The program starts with SIGPIPE ignored (every other signal at its default): a write to a
   * pipe whose reader is gone fails with EPIPE instead of killing it. */
  bool ignoreSigpipe = false;
  /** The program's stdin is a terminal (openTerminal's peer, given as all three pipe fds): the
   * program's child makes it its controlling terminal (a session of its own already), so that
   * the terminal's Ctrl-C and window changes signal the program as a shell's would. */
  bool controllingTerminal = false;
};

struct StartOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=value"
  std::string searchPath;
  std::string cwd;
  std::string stdinData;
  uint32_t uid = 60000, gid = 60000;
  int64_t cpuTimeNs = 0;
  int64_t wallTimeNs = 0;
  int64_t outputBytes = 0;
  int64_t fileSizeBytes = 0;
  int64_t openFiles = 0;
  int64_t stackBytes = 0;
  int64_t tmpBytes = 0;
  /** The program's RLIMIT_NPROC, the run's Limits.pids where its uid is its own (configureProgram);
   * 0: none set (the worker's inherited), for a uid that runs side by side share. */
  int64_t pids = 0;
  int64_t cpuRlimitSeconds = 0;
  int64_t pollIntervalNs = 0;
  int64_t backgroundAfterCpuNs = 0;  // 0: the run keeps the default CPU weight
  /** net.core.somaxconn of the container's network namespace, written by the program's child. */
  int64_t somaxconn = 0;
  /** The program's fd 2 is its fd 1: one stream, in the order written (stderr's memfd stays empty). */
  bool stderrToStdout = false;
  /** The run cgroup's accounting files, opened (and owned) by the JS side: read at offset 0 when
   * the run's end is collected, so that their texts come with the exit. */
  std::vector<int> accountingFds;
};

/** Everything the supervisor learned once init is gone. */
struct ExitReport {
  Failure failure = ok();  // a setup step of init or of the program's child; init_died: init gone without "done"
  bool started = false;
  int32_t programStatusKind = kProgramNotRun;
  int32_t programStatusValue = 0;
  uint32_t killReasons = 0;
  int64_t wallTimeNs = 0;
  int64_t execNs = 0;
  std::string stdoutData, stderrData;
  int64_t stdoutBytes = 0, stderrBytes = 0;
  /** The accounting files' texts, in StartOptions.accountingFds' order, each followed by a NUL;
   * false when the run did not start or a read failed (the JS side then reads them itself). */
  bool accountingRead = false;
  std::string accountingText;
  /** The greatest of init's readings of PrepareOptions.memorySamplePath; 0 without one. */
  int64_t sampledPeakMemoryBytes = 0;
};

using ReadyCallback = std::function<void()>;
using SetupFailedCallback = std::function<void(ExitReport)>;
using GoneCallback = std::function<void()>;

/** A pipe whose two ends (read, write) are close-on-exec and above 2; throws SetupError. */
void createPipe(int& readEnd, int& writeEnd);

/** A pseudo-terminal of `rows` x `cols`: its master (non-blocking, for the caller) and its peer
 * (the program's, given as PrepareOptions' three pipe fds), both close-on-exec and above 2;
 * throws SetupError. */
void openTerminal(int& master, int& peer, uint16_t rows, uint16_t cols);

/** Sets a terminal's window size (TIOCSWINSZ on its master): the kernel signals SIGWINCH to the
 * terminal's foreground process group. Returns 0 or a positive errno. */
int setTerminalSize(int master, uint16_t rows, uint16_t cols);

/** Opens every descriptor and lays out every path init needs; throws SetupError. */
std::shared_ptr<ContainerState> createContainerState(const PrepareOptions& options);

/** Starts the supervisor thread: clone init, wait for its first report, then for its end.
 * onReady is called once setup succeeded; onSetupFailed instead, when it did not (init or the
 * program's child reported a failed step, or init died first): every process is dead by then.
 * onGone last, once init itself is reaped (its namespaces torn down; the state may be released
 * from then on). After "ready" the supervisor never reads the report pipe again: the run's end
 * is read on the JS thread (readRunEnd), so that nothing hands the result from thread to thread
 * between init's "done" and the JS callback. Throws SetupError (step clone_init) when no thread
 * can be started; no callback is called then. */
void launchSupervisor(std::shared_ptr<ContainerState> state, ReadyCallback onReady,
                      SetupFailedCallback onSetupFailed, GoneCallback onGone);

/** How far the end of a started run has come, from the report pipe. */
enum class RunEnd {
  kPending,  // nothing final yet: wait for the pipe to be readable again
  kDone,     // init reported "done": every process of the run is dead, what init recorded is final
  kClosed,   // end of file without "done": init is gone; final once the supervisor reaped it
};

/** Reads what init and the program's child have sent since "ready"; a failed step of the child
 * lands in `failure`. Never blocks on a non-blocking read end (the JS thread watches it with
 * libuv, which makes it so), nor once init is reaped (every writer is gone then). */
RunEnd readRunEnd(ContainerState& state, Failure& failure);

/** The run's report once it is over (RunEnd::kDone, or init reaped): what init recorded and the
 * output streams. A started run whose init was reaped without "done" fails with step init_died
 * (ESRCH) unless a step failed first. Marks the state finished. */
ExitReport collectRunReport(ContainerState& state, Failure failure);

/** Writes the program's parameters into the state; throws SetupError. */
void configureProgram(ContainerState& state, const StartOptions& options);

/** Lets init start the program. */
void sendGo(ContainerState& state);

/** Kills a started run (init sees the cancel pipe) or ends an unstarted container. */
void cancelContainer(ContainerState& state);

/** What the engine holds right now, for leak checks. */
struct ResourceCounts {
  int64_t mappedStacks;
  int64_t supervisorThreads;
  int64_t openStates;  // states whose descriptors are not yet released
};
ResourceCounts resourceCounts();

}  // namespace cb
