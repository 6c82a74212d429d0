// Resource limits of the program (set in its child, before execve).
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

Failure applyResourceLimits(const ContainerState& s);

/** RLIMIT_CORE 1, soft and hard, before the seccomp filter (which keeps the program from changing
 * it): where core_pattern pipes dumps to a helper, the kernel ignores every other value and
 * starts the helper as root on the host for each crash; 1 is also below the least core file the
 * kernel writes. The same for every program: set while the container waits. */
Failure fixCoreDumpLimit();


}  // namespace cb
