#include "clone_vm.h"

namespace cb {

// The child starts on the new stack with the caller's registers, so it cannot return into C code:
// fn and arg ride in registers the system call keeps, and the child calls fn(arg) and exits with
// its result. The parent gets the pid or -errno straight from the kernel, as from any call of
// sys.h. The arguments after the first two are 0: clone's parent_tid, child_tid and tls (none
// asked for by its flags), and nothing clone3 reads.

#if defined(__x86_64__)
// The call's number in rax, its arguments in rdi, rsi, rdx, r10, r8; exit is 60. fn and arg in
// callee-saved r12 and r13 (saved for the parent).
asm(R"(
  .text
  .p2align 4
  .globl cbRawCloneVm
  .hidden cbRawCloneVm
  .type cbRawCloneVm, @function
cbRawCloneVm:
  push %r12
  push %r13
  mov %rcx, %r12
  mov %r8, %r13
  mov %rdi, %rax
  mov %rsi, %rdi
  mov %rdx, %rsi
  xor %edx, %edx
  xor %r10d, %r10d
  xor %r8d, %r8d
  syscall
  test %rax, %rax
  jz 1f
  pop %r13
  pop %r12
  ret
1:
  xor %ebp, %ebp
  mov %r13, %rdi
  call *%r12
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
  .size cbRawCloneVm, .-cbRawCloneVm
  .section .note.GNU-stack,"",@progbits
  .text
)");
#elif defined(__aarch64__)
// The call's number in x8, its arguments in x0-x4; exit is 93. fn and arg in x9 and x10,
// temporaries the caller does not expect kept, which svc keeps (it changes x0 alone).
asm(R"(
  .text
  .p2align 2
  .globl cbRawCloneVm
  .hidden cbRawCloneVm
  .type cbRawCloneVm, %function
cbRawCloneVm:
  mov x8, x0
  mov x0, x1
  mov x1, x2
  mov x9, x3
  mov x10, x4
  mov x2, xzr
  mov x3, xzr
  mov x4, xzr
  svc #0
  cbz x0, 1f
  ret
1:
  mov x29, xzr
  mov x30, xzr
  mov x0, x10
  blr x9
  mov x8, #93
  svc #0
  brk #0
  .size cbRawCloneVm, .-cbRawCloneVm
  .section .note.GNU-stack,"",%progbits
  .text
)");
#else
#error "cellblock's native engine supports x86_64 and aarch64"
#endif

}  // namespace cb
