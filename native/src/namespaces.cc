#include "namespaces.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "sys.h"

namespace cb {

Failure setHostname(const ContainerState& s) {
  CB_TRY(step_sethostname, sys(SYS_sethostname, s.hostname.c_str(), s.hostname.size()));
  return ok();
}

Failure bringLoopbackUp() {
  long fd = sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  CB_TRY(step_loopback_up, fd);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING | IFF_LOOPBACK;
  long r = sys(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr);
  sys(SYS_close, fd);
  CB_TRY(step_loopback_up, r);
  return ok();
}

Failure limitTcpMemory(ContainerState& s) {
  long fd = sys(SYS_openat, AT_FDCWD, s.tcpRmemPath.c_str(), O_WRONLY | O_CLOEXEC);
  CB_TRY(step_net_sysctl, fd);
  long written = sys(SYS_write, fd, s.tcpRmemText.data(), s.tcpRmemText.size());
  sys(SYS_close, fd);
  CB_TRY(step_net_sysctl, written);
  fd = sys(SYS_openat, AT_FDCWD, s.somaxconnPath.c_str(), O_WRONLY | O_CLOEXEC);
  CB_TRY(step_net_sysctl, fd);
  // Above stdio: init's 0-2 are closed (takeOwnFdTable), and the program's child points those at
  // its streams before it writes this one.
  long above = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
  sys(SYS_close, fd);
  CB_TRY(step_net_sysctl, above);
  s.somaxconnFd = static_cast<int>(above);
  return ok();
}

Failure setListenBacklog(const ContainerState& s) {
  CB_TRY(step_net_sysctl,
         sys(SYS_pwrite64, s.somaxconnFd, s.somaxconnText.data(), s.somaxconnText.size(), 0));
  return ok();
}

}  // namespace cb
