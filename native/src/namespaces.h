// Namespaces: the clone flags of the container's init, and what init sets up inside its new
// UTS and network namespaces.
#pragma once

#include <sched.h>

#include "state.h"
#include "steps.h"

namespace cb {

/** init is pid 1 of fresh PID, mount, UTS, IPC and network namespaces. It shares the
 * supervisor's memory (CLONE_VM) so that nothing has to be copied; exit signal 0 keeps Node's
 * SIGCHLD handler out of it (the supervisor waits with __WALL).
 * It also starts on the supervising process's descriptor table (CLONE_FILES) and takes a copy
 * of its own only as its first step (unshare), closing at once what is not its own: a copy
 * made by clone itself would hold every descriptor Node had open at that moment for as long as
 * the clone takes (milliseconds: a network namespace is made after the copy) and until init
 * first runs. A file Node was writing then stays open for writing (execve of it fails with
 * ETXTBSY), a socket or pipe Node closed does not reach EOF at its peer. CLONE_CHILD_CLEARTID
 * tells the supervisor when init is gone before it got that far (see fdTableWord). */
constexpr int kInitCloneFlags = CLONE_VM | CLONE_FILES | CLONE_CHILD_CLEARTID | CLONE_NEWPID | CLONE_NEWNS |
                                CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;

/** The program's child: shares init's memory until it execs. Cloned while preparing, it waits
 * for "go" on a futex (no vfork: init must go on to report ready, then watch the run). */
constexpr int kProgramCloneFlags = CLONE_VM;

Failure setHostname(const ContainerState& s);

/** The new network namespace has only `lo`, down; bring it up so loopback works inside. */
Failure bringLoopbackUp();

/** init, between /proc's mount and /proc/sys's read-only bind (a sysctl under net/ is the
 * network namespace of whoever opens it, and init is in the container's): writes tcp_rmem and
 * opens somaxconn for the program's child (ContainerState::somaxconnFd). */
Failure limitTcpMemory(ContainerState& s);

/** The program's child, after "go" (still root): writes the run's somaxconn. */
Failure setListenBacklog(const ContainerState& s);

}  // namespace cb
