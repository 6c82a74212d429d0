// The seccomp filter of the program: refuses (EPERM) the system calls a submission never needs,
// makes clone3 fail with ENOSYS (libc then falls back to clone, whose flags a classic BPF filter
// can inspect), refuses clone with any CLONE_NEW* flag, and kills the process on a foreign
// audit architecture or an x32 system call.
#pragma once

#include "state.h"
#include "steps.h"

namespace cb {

/** The filter program, built once (struct sock_fprog*). */
const void* seccompProgram();

/** Installs the filter; requires no_new_privs (set by dropPrivileges). */
Failure installSeccomp(const ContainerState& s);

}  // namespace cb
