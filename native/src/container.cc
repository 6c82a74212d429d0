#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <new>
#include <system_error>
#include <thread>

#include "namespaces.h"
#include "recipe.h"
#include "seccomp.h"

namespace cb {
namespace {

constexpr size_t kInitStackBytes = 256 * 1024;
constexpr size_t kProgramStackBytes = 128 * 1024;
constexpr int64_t kDevTmpfsBytes = 64 * 1024;

std::atomic<int64_t> gMappedStacks{0};
std::atomic<int64_t> gSupervisorThreads{0};
std::atomic<int64_t> gOpenStates{0};

// Host files bound over /proc entries a program never needs to read (as in runc's masked paths).
const char* const kProcMaskedFiles[] = {"kcore", "keys", "timer_list", "sched_debug", "kallsyms"};
// /proc entries bound read-only.
const char* const kProcReadonlyEntries[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
const char* const kDevNodes[] = {"null", "zero", "full", "random", "urandom"};
/** Bound only where the program has a controlling terminal (PrepareOptions.controllingTerminal):
 * it opens that terminal (the program's own, whatever its /dev/pts name on the host). */
const char* const kTerminalDevNode = "tty";
const struct {
  const char* name;
  const char* target;
} kDevSymlinks[] = {{"fd", "/proc/self/fd"},
                    {"stdin", "/proc/self/fd/0"},
                    {"stdout", "/proc/self/fd/1"},
                    {"stderr", "/proc/self/fd/2"}};

[[noreturn]] void throwSetup(Step step, int err) { throw SetupError{Failure{step, err}}; }

int capLastCap() {
  static const int value = [] {
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int v = 40;
    if (in >> v) return v;
    return 40;
  }();
  return value;
}

/** Keeps fds 0-2 free for the program: a descriptor below 3 would be clobbered by dup3. */
int aboveStdio(int fd) {
  if (fd >= 3) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  close(fd);
  if (moved < 0) throwSetup(step_open_pipe, err);
  return moved;
}

/** A memfd for a stream. One for the program's output is sealed against shrinking: its size is
 * what the output limit is judged by (init's poll, outputOverLimit in recipe.cc; the verdict, from
 * the size at the run's end), and a program that wrote past the limit could otherwise truncate it
 * back (ftruncate, an open with O_TRUNC) between two polls and end `ok`. Writes may still grow it
 * and overwrite what it holds; F_SEAL_SEAL keeps the program from adding seals of its own. */
int openMemfd(const char* name, bool output) {
  int fd = memfd_create(name, MFD_CLOEXEC | (output ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) throwSetup(step_open_memfd, errno);
  if (output && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
    int err = errno;
    close(fd);
    throwSetup(step_open_memfd, err);
  }
  return aboveStdio(fd);
}

void openPipe(int& readEnd, int& writeEnd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) throwSetup(step_open_pipe, errno);
  try {
    readEnd = aboveStdio(fds[0]);
  } catch (const SetupError&) {
    close(fds[1]);
    throw;
  }
  try {
    writeEnd = aboveStdio(fds[1]);
  } catch (const SetupError&) {
    close(readEnd);
    readEnd = -1;
    throw;
  }
}

/** The caller's pipe end, copied above stdio and close-on-exec. */
int copyPipeEnd(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) throwSetup(step_open_pipe, errno);
  return copy;
}

void* mapStack(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                 -1, 0);
  if (p == MAP_FAILED) throwSetup(step_map_stack, errno);
  gMappedStacks++;
  return p;
}

std::string tmpfsOptions(int64_t bytes, const char* mode) {
  // One inode per 4 KiB of size bounds a many-empty-files flood as well as a disk fill.
  int64_t inodes = std::max<int64_t>(1024, bytes / 4096);
  return "size=" + std::to_string(bytes) + ",nr_inodes=" + std::to_string(inodes) +
         ",mode=" + mode;
}

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

std::string readMemfd(int fd, int64_t limit, int64_t& totalBytes) {
  struct stat st;
  totalBytes = 0;
  if (fstat(fd, &st) < 0) return std::string();
  totalBytes = st.st_size;
  int64_t want = std::min<int64_t>(st.st_size, std::max<int64_t>(limit, 0));
  std::string data(static_cast<size_t>(want), '\0');
  int64_t got = 0;
  while (got < want) {
    ssize_t n = pread(fd, &data[got], static_cast<size_t>(want - got), got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  data.resize(static_cast<size_t>(got));
  return data;
}

/** Appends each file's text at offset 0 and a NUL to `text`; false if a read fails. Here rather
 * than in JS: the run's end is collected on the JS thread anyway, and three reads through Node's
 * fs after the run's idle wait cost more than the reads themselves. */
bool readAccounting(const std::vector<int>& fds, std::string& text) {
  char buffer[4096];
  for (int fd : fds) {
    ssize_t n;
    do {
      n = pread(fd, buffer, sizeof buffer, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return false;
    text.append(buffer, static_cast<size_t>(n));
    text.push_back('\0');
  }
  return true;
}

/** Reads the next record of the report pipe; false at EOF (every writer is gone). */
bool readRecord(int fd, ReportRecord& record) {
  ssize_t n;
  do {
    n = read(fd, &record, sizeof record);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof record);
}

void reap(int pid) {
  siginfo_t info;
  while (waitid(P_PID, pid, &info, WEXITED | __WALL) < 0 && errno == EINTR) {
  }
}

/** Until init has a descriptor table of its own (or is gone), closing a descriptor here would
 * close it for init too. init's first step; microseconds once it runs. */
void waitForOwnFdTable(ContainerState& s) {
  // The timeout only bounds a missed wake; the word is read again after each.
  const struct timespec recheck = {0, 100 * 1000 * 1000};
  while (__atomic_load_n(&s.fdTableWord, __ATOMIC_SEQ_CST) == kFdTableShared) {
    syscall(SYS_futex, &s.fdTableWord, FUTEX_WAIT, kFdTableShared, &recheck, nullptr, 0);
  }
}

void superviseContainer(std::shared_ptr<ContainerState> state, ReadyCallback onReady,
                        SetupFailedCallback onSetupFailed, GoneCallback onGone) {
  ContainerState& s = *state;
  ExitReport failed;
  // Block every signal on this thread before clone: init inherits the mask (it waits on a
  // signalfd), and Node's signal handlers, which live in the memory init shares, never run there.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  char* stackTop = static_cast<char*>(s.initStack) + s.initStackBytes;
  s.fdTableWord = kFdTableShared;
  int pid = clone(initMain, stackTop, kInitCloneFlags, state.get(), nullptr, nullptr, &s.fdTableWord);
  if (pid < 0) {
    failed.failure = Failure{step_clone_init, errno};
    s.finished = true;
    onSetupFailed(std::move(failed));
    onGone();
    return;
  }
  s.initPid = pid;
  waitForOwnFdTable(s);
  // Only init keeps these: the report pipe then reaches EOF when init and the program's child
  // are gone. The fields stay as they are: init reads them from this same memory.
  close(s.reportWrite);
  close(s.goRead);
  close(s.cancelRead);
  for (int fd : s.cgroupJoinFds) close(fd);
  if (s.cgroupDirFd >= 0) close(s.cgroupDirFd);
  // A connected run's pipe ends are the program's alone (init closes its copies once the child
  // has them): the peer must see end of file when this program is gone.
  if (s.stdinIsPipe) close(s.stdinFd);
  if (s.stdoutIsPipe) close(s.stdoutFd);
  if (s.stderrIsPipe) close(s.stderrFd);
  s.initEndsClosed = true;

  ReportRecord record{};
  bool got = readRecord(s.reportRead, record);
  if (got && record.kind == kReportReady) {
    onReady();
    // The run's end is the JS thread's to read; this thread only waits for init to be gone.
    reap(pid);
    onGone();
    return;
  }
  failed.failure = got ? Failure{static_cast<uint16_t>(record.step), record.err} : Failure{step_init_died, ESRCH};
  // init is reaped first: the kernel has then killed and reaped everything else in its PID
  // namespace.
  reap(pid);
  s.finished = true;
  onSetupFailed(std::move(failed));
  // init's stack may be unmapped only now.
  onGone();
}

/** RLIMIT_MEMLOCK for programs: the kernel's default (8 MiB since 5.16), or less where the worker
 * has less (raising a hard limit takes CAP_SYS_RESOURCE, which the worker may lack). */
rlim_t programMemlockBytes() {
  static const rlim_t bytes = [] {
    constexpr rlim_t kDefault = 8 << 20;
    rlimit current{};
    if (getrlimit(RLIMIT_MEMLOCK, &current) != 0) return kDefault;
    return std::min(kDefault, current.rlim_max);
  }();
  return bytes;
}

/** RLIMIT_NPROC for a program of `pids` processes: that many, or fewer where the worker's own soft
 * limit is lower (which its program would otherwise inherit, and which the host-limits check
 * judges: docs/theory-of-operation.md, "Host limits"). Only ever lowered, so it needs no
 * capability. Read at each start (one system call), so that it follows a change to the worker's. */
rlim_t programProcesses(int64_t pids) {
  const rlim_t wanted = static_cast<rlim_t>(pids);
  rlimit current{};
  if (getrlimit(RLIMIT_NPROC, &current) != 0) return wanted;
  return std::min(wanted, current.rlim_cur);
}

}  // namespace

RunEnd readRunEnd(ContainerState& s, Failure& failure) {
  ReportRecord record{};
  for (;;) {
    ssize_t n = read(s.reportRead, &record, sizeof record);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN ? RunEnd::kPending : RunEnd::kClosed;
    // Records are written whole (smaller than PIPE_BUF); anything else ends the pipe.
    if (n != static_cast<ssize_t>(sizeof record)) return RunEnd::kClosed;
    if (record.kind == kReportFailure) failure = Failure{static_cast<uint16_t>(record.step), record.err};
    if (record.kind == kReportDone) {
      s.doneRead = true;
      return RunEnd::kDone;
    }
  }
}

ExitReport collectRunReport(ContainerState& s, Failure failure) {
  ExitReport exit;
  exit.failure = failure;
  std::atomic_thread_fence(std::memory_order_acquire);
  exit.started = s.started.load();
  // A started run whose init is gone without "done" (killed from outside by pid, before or after
  // "go" reached it; not by the host's OOM killer, which would take Node, whose memory init
  // shares) was cut short, the program killed with init's PID namespace: init recorded no status,
  // or one it had not finished (recordStatus writes field by field; "done" is what makes them
  // final). Read as data, no status and no signal would pass for an exit with status 0: this is
  // the sandbox's failure. A step that failed before (the program's child's, init's /tmp resize)
  // is the cause and stays.
  if (exit.started && !s.doneRead && !failure.failed()) exit.failure = Failure{step_init_died, ESRCH};
  exit.programStatusKind = s.programStatusKind;
  exit.programStatusValue = s.programStatusValue;
  exit.killReasons = s.killReasons;
  exit.wallTimeNs = s.wallTimeNs;
  exit.execNs = s.execNs;
  exit.sampledPeakMemoryBytes = s.sampledPeakMemoryBytes;
  if (exit.started) {
    // A stream that is a pipe went to its reader (a connected run's peer, a streaming run's
    // caller): nothing of it is kept here.
    // Each stream at most fileSizeBytes (its memfd may hold one byte more, see configureProgram),
    // both together at most outputBytes.
    if (!s.stdoutIsPipe) exit.stdoutData = readMemfd(s.stdoutFd, std::min(s.outputBytes, s.fileSizeBytes), exit.stdoutBytes);
    int64_t stderrRoom = std::min(s.outputBytes - static_cast<int64_t>(exit.stdoutData.size()), s.fileSizeBytes);
    if (!s.stderrIsPipe) exit.stderrData = readMemfd(s.stderrFd, stderrRoom, exit.stderrBytes);
    exit.accountingRead = readAccounting(s.accountingFds, exit.accountingText);
  }
  s.finished = true;
  return exit;
}

ContainerState::~ContainerState() { release(); }

void ContainerState::release() {
  for (void** stack : {&initStack, &programStack}) {
    if (*stack == nullptr) continue;
    munmap(*stack, stack == &initStack ? initStackBytes : programStackBytes);
    *stack = nullptr;
    gMappedStacks--;
  }
  if (counted) gOpenStates--;
  counted = false;
  if (initEndsClosed) {
    reportWrite = goRead = cancelRead = -1;
    cgroupJoinFds.clear();
    cgroupDirFd = -1;
    if (stdinIsPipe) stdinFd = -1;
    if (stdoutIsPipe) stdoutFd = -1;
    if (stderrIsPipe) stderrFd = -1;
  }
  for (int& fd : cgroupJoinFds) closeFd(fd);
  closeFd(cgroupDirFd);
  closeFd(cpuUsageFd);
  closeFd(memorySampleFd);
  closeFd(cpuWeightFd);
  closeFd(stdinFd);
  closeFd(stdoutFd);
  closeFd(stderrFd);
  closeFd(reportRead);
  closeFd(reportWrite);
  closeFd(goRead);
  closeFd(goWrite);
  closeFd(cancelRead);
  closeFd(cancelWrite);
}

std::shared_ptr<ContainerState> createContainerState(const PrepareOptions& o) {
  // A controlling terminal is the peer given as all three streams (openTerminal's).
  if (o.controllingTerminal && (o.stdinPipeFd < 0 || o.stdoutPipeFd < 0 || o.stderrPipeFd < 0)) {
    throwSetup(step_open_terminal, EINVAL);
  }
  auto state = std::make_shared<ContainerState>();
  ContainerState& s = *state;
  s.counted = true;
  gOpenStates++;
  s.rootDir = o.rootDir;
  s.workDirHost = o.workDirHost;
  s.workDirTarget = o.rootDir + o.workDir;
  s.workDir = o.workDir;
  s.procTarget = o.rootDir + "/proc";
  s.devTarget = o.rootDir + "/dev";
  s.tmpTarget = o.rootDir + "/tmp";
  s.hostname = o.hostname;
  s.devMountOptions = tmpfsOptions(kDevTmpfsBytes, "755");
  s.tmpMountOptions = tmpfsOptions(o.tmpBytes, "1777");
  s.preparedTmpBytes = o.tmpBytes;
  for (const char* entry : kProcReadonlyEntries) s.procReadonlyTargets.push_back(s.procTarget + "/" + entry);
  for (const char* file : kProcMaskedFiles) s.procMasks.push_back({"/dev/null", s.procTarget + "/" + file});
  for (const char* node : kDevNodes) s.devNodes.push_back({std::string("/dev/") + node, s.devTarget + "/" + node});
  if (o.controllingTerminal) s.devNodes.push_back({std::string("/dev/") + kTerminalDevNode, s.devTarget + "/" + kTerminalDevNode});
  for (const auto& link : kDevSymlinks) s.devSymlinks.push_back({link.target, s.devTarget + "/" + link.name});
  s.tcpRmemPath = s.procTarget + "/sys/net/ipv4/tcp_rmem";
  s.tcpRmemText = o.tcpRmem;
  s.somaxconnPath = s.procTarget + "/sys/net/core/somaxconn";
  s.capLastCap = capLastCap();
  s.seccompProgram = seccompProgram();

  for (const std::string& path : o.cgroupJoinPaths) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throwSetup(step_open_cgroup, errno);
    s.cgroupJoinFds.push_back(aboveStdio(fd));
  }
  if (!o.cgroupCloneIntoPath.empty()) {
    int fd = open(o.cgroupCloneIntoPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throwSetup(step_open_cgroup, errno);
    s.cgroupDirFd = aboveStdio(fd);
  }
  if (!o.cpuUsagePath.empty()) {
    int fd = open(o.cpuUsagePath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throwSetup(step_open_cgroup, errno);
    s.cpuUsageFd = aboveStdio(fd);
  }
  s.cpuUsageScaleNs = o.cpuUsageScaleNs;
  if (!o.memorySamplePath.empty()) {
    int fd = open(o.memorySamplePath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throwSetup(step_open_cgroup, errno);
    s.memorySampleFd = aboveStdio(fd);
  }
  if (!o.cpuWeightPath.empty()) {
    int fd = open(o.cpuWeightPath.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throwSetup(step_open_cgroup, errno);
    s.cpuWeightFd = aboveStdio(fd);
    s.backgroundWeightText = std::to_string(o.backgroundCpuWeight);
  }
  s.programIgnoresSigpipe = o.ignoreSigpipe;
  s.controllingTerminal = o.controllingTerminal;
  s.stdinIsPipe = o.stdinPipeFd >= 0;
  s.stdoutIsPipe = o.stdoutPipeFd >= 0;
  s.stderrIsPipe = o.stderrPipeFd >= 0;
  s.stdinFd = s.stdinIsPipe ? copyPipeEnd(o.stdinPipeFd) : openMemfd("cellblock-stdin", false);
  s.stdoutFd = s.stdoutIsPipe ? copyPipeEnd(o.stdoutPipeFd) : openMemfd("cellblock-stdout", true);
  s.stderrFd = s.stderrIsPipe ? copyPipeEnd(o.stderrPipeFd) : openMemfd("cellblock-stderr", true);
  openPipe(s.reportRead, s.reportWrite);
  openPipe(s.goRead, s.goWrite);
  openPipe(s.cancelRead, s.cancelWrite);

  s.initKeepFds = s.cgroupJoinFds;
  for (int fd : {s.cgroupDirFd, s.cpuUsageFd, s.memorySampleFd, s.cpuWeightFd, s.stdinFd, s.stdoutFd, s.stderrFd, s.reportWrite,
                 s.goRead, s.cancelRead}) {
    if (fd >= 0) s.initKeepFds.push_back(fd);
  }
  std::sort(s.initKeepFds.begin(), s.initKeepFds.end());

  s.initStackBytes = kInitStackBytes;
  s.initStack = mapStack(kInitStackBytes);
  s.programStackBytes = kProgramStackBytes;
  s.programStack = mapStack(kProgramStackBytes);
  return state;
}

void createPipe(int& readEnd, int& writeEnd) { openPipe(readEnd, writeEnd); }

int setTerminalSize(int master, uint16_t rows, uint16_t cols) {
  struct winsize size = {};
  size.ws_row = rows;
  size.ws_col = cols;
  return ioctl(master, TIOCSWINSZ, &size) < 0 ? errno : 0;
}

void openTerminal(int& master, int& peer, uint16_t rows, uint16_t cols) {
  // The peer is opened from the master (TIOCGPTPEER), not by its /dev/pts path: no lookup that
  // another devpts mount or a path race could redirect.
  master = peer = -1;
  int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throwSetup(step_open_terminal, errno);
  try {
    master = aboveStdio(fd);
  } catch (const SetupError& e) {
    throwSetup(step_open_terminal, e.failure.err);
  }
  int unlock = 0;
  int err = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) err = errno;
  if (err == 0) {
    int p = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p < 0) {
      err = errno;
    } else {
      try {
        peer = aboveStdio(p);
      } catch (const SetupError& e) {
        err = e.failure.err;
      }
    }
  }
  if (err == 0) err = setTerminalSize(master, rows, cols);
  // A terminal's defaults but one: erase takes back a UTF-8 character, not its last byte (the
  // playgrounds' terminals send UTF-8).
  struct termios modes;
  if (err == 0 && tcgetattr(peer, &modes) < 0) err = errno;
  if (err == 0) {
    modes.c_iflag |= IUTF8;
    if (tcsetattr(peer, TCSANOW, &modes) < 0) err = errno;
  }
  if (err != 0) {
    if (peer >= 0) close(peer);
    close(master);
    master = peer = -1;
    throwSetup(step_open_terminal, err);
  }
}

void launchSupervisor(std::shared_ptr<ContainerState> state, ReadyCallback onReady,
                      SetupFailedCallback onSetupFailed, GoneCallback onGone) {
  gSupervisorThreads++;
  // No thread (EAGAIN: the pids cgroup's or TasksMax's limit, threads-max) is the same failure as
  // no init (a clone refused for the same limits): a typed SetupError, not an exception left to
  // reach N-API, where it would abort the whole worker. The callbacks were never called.
  try {
    std::thread(
        [](std::shared_ptr<ContainerState> state, ReadyCallback onReady,
           SetupFailedCallback onSetupFailed, GoneCallback onGone) {
          superviseContainer(std::move(state), std::move(onReady), std::move(onSetupFailed),
                             std::move(onGone));
          gSupervisorThreads--;
        },
        std::move(state), std::move(onReady), std::move(onSetupFailed), std::move(onGone))
        .detach();
  } catch (const std::system_error& e) {
    gSupervisorThreads--;
    throwSetup(step_clone_init, e.code().value() > 0 ? e.code().value() : EAGAIN);
  } catch (const std::bad_alloc&) {
    gSupervisorThreads--;
    throwSetup(step_clone_init, ENOMEM);
  }
}

void configureProgram(ContainerState& s, const StartOptions& o) {
  s.argv = o.argv;
  s.env = o.env;
  s.argvPointers.clear();
  for (std::string& a : s.argv) s.argvPointers.push_back(&a[0]);
  s.argvPointers.push_back(nullptr);
  s.envPointers.clear();
  for (std::string& e : s.env) s.envPointers.push_back(&e[0]);
  s.envPointers.push_back(nullptr);
  s.searchPath = o.searchPath;
  s.cwd = o.cwd;
  s.uid = o.uid;
  s.gid = o.gid;
  s.cpuLimitNs = o.cpuTimeNs;
  s.wallLimitNs = o.wallTimeNs;
  s.outputBytes = o.outputBytes;
  s.pollIntervalNs = o.pollIntervalNs;
  s.backgroundAfterCpuNs = s.cpuWeightFd >= 0 ? o.backgroundAfterCpuNs : 0;
  s.somaxconnText = std::to_string(o.somaxconn);
  s.stderrToStdout = o.stderrToStdout;
  s.accountingFds = o.accountingFds;
  const rlim_t cpuSoft = static_cast<rlim_t>(o.cpuRlimitSeconds);
  // fileSizeBytes for every file, the output's memfds too, plus one byte where it bounds them (at
  // most outputBytes, and a stream is a memfd: a pipe is no file): a stream written past it then
  // holds one byte more, whatever the program does about SIGXFSZ (Python and the JVM ignore it; a
  // crossing write is cut short without it), so that the excess is seen by size (init's poll,
  // outputOverLimit in recipe.cc; the verdict, src/sandbox/verdict.ts) and the stream kept at
  // fileSizeBytes. The price: a file there may be one byte over fileSizeBytes.
  s.fileSizeBytes = o.fileSizeBytes;
  const bool boundsAStream = (!s.stdoutIsPipe || !s.stderrIsPipe) && o.fileSizeBytes <= o.outputBytes;
  const rlim_t fileSize = static_cast<rlim_t>(boundsAStream ? o.fileSizeBytes + 1 : o.fileSizeBytes);
  // The seven below and RLIMIT_NPROC after them: one allocation per start.
  s.rlimits.reserve(8);
  s.rlimits = {
      {RLIMIT_CPU, cpuSoft, cpuSoft + 1},
      {RLIMIT_FSIZE, fileSize, fileSize},
      {RLIMIT_NOFILE, static_cast<rlim_t>(o.openFiles), static_cast<rlim_t>(o.openFiles)},
      {RLIMIT_STACK, static_cast<rlim_t>(o.stackBytes), static_cast<rlim_t>(o.stackBytes)},
      // Set, not inherited from the worker, which a service manager or a container engine may
      // have given a real-time priority limit (LimitRTPRIO=, --ulimit rtprio) or unlimited locked
      // memory: a program may not raise its own scheduling priority (a SCHED_FIFO one would not
      // heed the cgroup's CPU quota on kernels without real-time group scheduling) nor lock more
      // than the kernel's default.
      {RLIMIT_RTPRIO, 0, 0},
      {RLIMIT_NICE, 0, 0},
      {RLIMIT_MEMLOCK, programMemlockBytes(), programMemlockBytes()},
  };
  // The pids cgroup's limit again, as the kernel's per-user count of processes and threads: a
  // second bound beside the cgroup at no cost where the uid is the run's own (each pool slot's is:
  // src/pool/slot-uids.ts), so that it counts this run's tasks alone. On a uid that runs side by
  // side share (the sandbox's default) it would count them all together: none set there.
  if (o.pids > 0) {
    const rlim_t processes = programProcesses(o.pids);
    s.rlimits.push_back({RLIMIT_NPROC, processes, processes});
  }
  s.remountTmp = o.tmpBytes > 0 && o.tmpBytes != s.preparedTmpBytes;
  s.tmpRemountOptions = tmpfsOptions(o.tmpBytes, "1777");

  // A piped stdin is what its writer sends; stderr into stdout would leave a piped stderr unused
  // or put it into a piped stdout's reader's stream.
  if (s.stdinIsPipe && !o.stdinData.empty()) throwSetup(step_write_stdin, EINVAL);
  if ((s.stdoutIsPipe || s.stderrIsPipe) && o.stderrToStdout) throwSetup(step_dup_stdio, EINVAL);
  // The memfd is fresh (one start per container) and pwrite leaves its offset at 0.
  size_t written = 0;
  while (written < o.stdinData.size()) {
    ssize_t n = pwrite(s.stdinFd, o.stdinData.data() + written, o.stdinData.size() - written,
                       static_cast<off_t>(written));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throwSetup(step_write_stdin, errno);
    written += static_cast<size_t>(n);
  }
}

void sendGo(ContainerState& s) {
  s.started = true;
  std::atomic_thread_fence(std::memory_order_release);
  // Unless init has /tmp to resize first, the program's child is released from here, while init
  // wakes to watch it: one wake-up less between "go" and the program's execve.
  if (!s.remountTmp) releaseProgram(s);
  char go = 'g';
  ssize_t n;
  do {
    n = write(s.goWrite, &go, 1);
  } while (n < 0 && errno == EINTR);
}

void cancelContainer(ContainerState& s) {
  if (!s.started) {
    if (!s.finished) closeFd(s.goWrite);  // init reads EOF instead of "go" and exits
    return;
  }
  // Init polls this pipe during the run (a word kills the run) and waits on it after "done" (a
  // word lets it exit). A word before the close, not the close alone: an init being prepared
  // right now holds a copy of this end until its setup closes what it inherited. Said once.
  if (s.cancelWrite < 0) return;
  char c = 'c';
  ssize_t n;
  do {
    n = write(s.cancelWrite, &c, 1);
  } while (n < 0 && errno == EINTR);
  closeFd(s.cancelWrite);
}

ResourceCounts resourceCounts() {
  return ResourceCounts{gMappedStacks.load(), gSupervisorThreads.load(), gOpenStates.load()};
}

}  // namespace cb
