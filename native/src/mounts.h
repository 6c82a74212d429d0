// The container's filesystem, built by init in its fresh mount namespace: the root bound
// read-only, the work dir bound read-write, a fresh /proc with its dangerous corners read-only or
// masked, a minimal /dev, a size-limited /tmp, then pivot_root so nothing of the host is left.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

Failure buildFilesystem(ContainerState& s);

/** At "go": resizes /tmp when the run's tmpBytes differs from the prepared one. */
Failure resizeTmp(const ContainerState& s);

}  // namespace cb
