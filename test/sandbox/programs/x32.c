// x32: makes an x32-ABI system call (getpid with the x32 bit), which the filter must kill.
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
#ifdef __x86_64__
  long r = syscall(0x40000000 | SYS_getpid);
  printf("x32 returned %ld\n", r);
  return 0;
#else
  printf("not x86_64\n");
  return 3;
#endif
}
