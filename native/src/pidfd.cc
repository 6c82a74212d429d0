#include "pidfd.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

// Numbers from asm/unistd.h for a libc whose headers predate them (the same on x86_64 and aarch64).
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace cb {

int openPidfd(int pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

int signalPidfd(int fd, int signal) {
  return syscall(SYS_pidfd_send_signal, fd, signal, nullptr, 0) < 0 ? errno : 0;
}

}  // namespace cb
