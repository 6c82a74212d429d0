// Namespaces: the clone flags of the container's init, and what init sets up inside its new
// UTS and network namespaces.
#pragma once

#include <sched.h>

#include "state.h"
#include "steps.h"

namespace cb {

/** init is pid 1 of fresh PID, mount, UTS, IPC and network namespaces. It shares the
 * supervisor's memory (CLONE_VM) so that nothing has to be copied; exit signal 0 keeps Node's
 * SIGCHLD handler out of it (the supervisor waits with __WALL). */
constexpr int kInitCloneFlags =
    CLONE_VM | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;

/** The program's child: shares init's memory until it execs. Cloned while preparing, it waits
 * for "go" on a futex (no vfork: init must go on to report ready, then watch the run). */
constexpr int kProgramCloneFlags = CLONE_VM;

Failure setHostname(const ContainerState& s);

/** The new network namespace has only `lo`, down; bring it up so loopback works inside. */
Failure bringLoopbackUp();

}  // namespace cb
