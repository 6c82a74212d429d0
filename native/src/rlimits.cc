#include "rlimits.h"

#include <sys/resource.h>

#include "sys.h"

namespace cb {

Failure applyResourceLimits(const ContainerState& s) {
  for (const ResourceLimit& rl : s.rlimits) {
    struct { uint64_t cur; uint64_t max; } value = {rl.soft, rl.hard};
    CB_TRY(step_setrlimit, sys(SYS_prlimit64, 0, rl.resource, &value, 0));
  }
  return ok();
}

Failure fixCoreDumpLimit() {
  struct { uint64_t cur; uint64_t max; } value = {1, 1};
  CB_TRY(step_setrlimit, sys(SYS_prlimit64, 0, RLIMIT_CORE, &value, 0));
  return ok();
}

}  // namespace cb
