// The container recipe: the ordered checklist that init (pid 1 of the new namespaces) and the
// program's child (pid 2, until execve) follow. See docs/theory-of-operation.md, "The container
// recipe". Both run on stacks mapped before clone and use raw system calls only.
#pragma once

#include "state.h"

namespace cb {

/** Entry point of the container's init; arg is the ContainerState. Never returns. */
int initMain(void* arg);

/** Lets the program's child, waiting in the cgroup, go on to set up and exec. */
void releaseProgram(ContainerState& s);

}  // namespace cb
