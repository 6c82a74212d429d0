#include "namespaces.h"

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

}  // namespace cb
