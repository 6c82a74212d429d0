#include "pidfd.h"

#include <errno.h>
#include <unistd.h>

#include "syscall_numbers.h"

namespace cb {

int openPidfd(int pid) {
  long fd = syscall(kPidfdOpen, pid, 0);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

int signalPidfd(int fd, int signal) {
  return syscall(kPidfdSendSignal, fd, signal, nullptr, 0) < 0 ? errno : 0;
}

}  // namespace cb
