// Raw clones of a child that shares the caller's memory (CLONE_VM) and runs fn(arg) on a stack of
// its own: init's clone of the program's child, which must not go through libc (sys.h: glibc's
// clone() writes errno through the thread-local storage init shares with the supervisor thread,
// and glibc has no clone3 wrapper at all).
#pragma once

#include <sys/syscall.h>

namespace cb {

/** System call `nr`, clone or clone3, with its first two arguments (the others 0), whose child
 * starts on the stack the call names and calls fn(arg), then exits with its result (exit, not
 * exit_group). Returns the child's pid, or -errno. x86_64 and aarch64: clone_vm.cc's assembly
 * (C linkage, so the assembly's plain name; hidden, so not exported from the addon). */
extern "C" long cbRawCloneVm(long nr, long a0, long a1, int (*fn)(void*), void* arg);

/** clone(flags) with the child on `stackTop` (16-byte aligned). */
inline long cloneVm(unsigned long flags, void* stackTop, int (*fn)(void*), void* arg) {
  return cbRawCloneVm(SYS_clone, static_cast<long>(flags), reinterpret_cast<long>(stackTop), fn, arg);
}

}  // namespace cb
