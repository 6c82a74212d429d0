// Resource limits of the program (set in its child, before execve).
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

Failure applyResourceLimits(const ContainerState& s);


}  // namespace cb
