// Process descriptors (pidfd_open, Linux 5.3; pidfd_send_signal, 5.1). A pidfd names the process
// it was opened for and no other: once that process is reaped and its pid reused, a signal through
// it fails with ESRCH instead of reaching the pid's new owner, as kill(pid) would.
#pragma once

namespace cb {

/** pidfd_open(pid, 0): a close-on-exec descriptor, or -errno (ESRCH: no such process; ENOSYS:
 * a kernel before 5.3). */
int openPidfd(int pid);

/** pidfd_send_signal(fd, signal, NULL, 0): 0, or errno (ESRCH: the process has ended). */
int signalPidfd(int fd, int signal);

}  // namespace cb
