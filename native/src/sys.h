// Raw system calls for the code that runs between clone and execve.
//
// The container's init and the program's pre-exec child share the supervising process's memory
// (CLONE_VM) and its thread-local storage. libc wrappers there are unsafe: they set the calling
// thread's errno (the supervisor thread's!), and the set*id/setgroups wrappers broadcast to every
// thread of the process. So that code uses these wrappers, which return -errno and touch nothing
// but registers.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

namespace cb {

#if defined(__x86_64__)
static inline long rawSyscall6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long rawSyscall6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "cellblock's native engine supports x86_64 and aarch64"
#endif

template <typename A = long, typename B = long, typename C = long, typename D = long,
          typename E = long, typename F = long>
static inline long sys(long n, A a = 0, B b = 0, C c = 0, D d = 0, E e = 0, F f = 0) {
  return rawSyscall6(n, (long)a, (long)b, (long)c, (long)d, (long)e, (long)f);
}

/** Writes all of buf or fails; for the small records of the report pipe. */
static inline long sysWriteAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    long n = sys(SYS_write, fd, p, len);
    if (n == -4 /* EINTR */) continue;
    if (n < 0) return n;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

[[noreturn]] static inline void sysExit(int code) {
  for (;;) sys(SYS_exit_group, code);
}

static inline int64_t sysMonotonicNs() {
  struct { long sec; long nsec; } ts = {0, 0};
  sys(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
  return static_cast<int64_t>(ts.sec) * 1000000000LL + ts.nsec;
}

}  // namespace cb
