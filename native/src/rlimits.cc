#include "rlimits.h"

#include <sys/resource.h>

#include "sys.h"

namespace cb {

namespace {

long setLimit(int resource, uint64_t soft, uint64_t hard) {
  struct { uint64_t cur; uint64_t max; } value = {soft, hard};
  return sys(SYS_prlimit64, 0, resource, &value, 0);
}

}  // namespace

Failure applyResourceLimits(const ContainerState& s) {
  for (const ResourceLimit& rl : s.rlimits) CB_TRY(step_setrlimit, setLimit(rl.resource, rl.soft, rl.hard));
  return ok();
}

Failure fixCoreDumpLimit() {
  CB_TRY(step_setrlimit, setLimit(RLIMIT_CORE, 1, 1));
  return ok();
}

}  // namespace cb
