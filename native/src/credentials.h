// Credentials of the program: no capabilities (bounding set emptied, ambient cleared, and none
// left once every uid is non-zero), the sandbox's uid/gid with no supplementary groups, and
// no_new_privs so that nothing it execs (setuid binaries included) can gain privileges.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

Failure dropPrivileges(const ContainerState& s);

}  // namespace cb
