// Credentials of the program: no capabilities (bounding set emptied, ambient cleared, and none
// left once every uid is non-zero), the sandbox's uid/gid with no supplementary groups, and
// no_new_privs so that nothing it execs (setuid binaries included) can gain privileges.
// In two parts: what does not depend on the program is done while the container waits for it,
// the change of uid/gid only after "go", since the rlimits set then need CAP_SYS_RESOURCE.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

/** Empties the bounding set, clears the ambient set and the supplementary groups, sets
 * no_new_privs. The effective and permitted sets stay whole until becomeSandboxUser. */
Failure dropCapabilityBounds(const ContainerState& s);

/** Sets gid and uid to the sandbox user's; the kernel then clears the permitted and effective
 * sets. */
Failure becomeSandboxUser(const ContainerState& s);

}  // namespace cb
