#include "cgroup_join.h"

#include "sys.h"

namespace cb {

Failure joinCgroups(const ContainerState& s) {
  for (int fd : s.cgroupJoinFds) {
    CB_TRY(step_cgroup_join, sys(SYS_write, fd, "0", 1));
    sys(SYS_close, fd);
  }
  return ok();
}

int64_t readCgroupCpuNs(const ContainerState& s) {
  char buf[256];
  long n = sys(SYS_pread64, s.cpuUsageFd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  int64_t value = 0;
  bool seen = false;
  for (long i = 0; i < n; i++) {
    char c = buf[i];
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      seen = true;
    } else if (seen) {
      break;
    }
  }
  return seen ? value * s.cpuUsageScaleNs : -1;
}

}  // namespace cb
