// spin [MS]: burns MS ms of CPU time (forever without MS), then prints "spun MS".
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long cpuMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  long target = argc > 1 ? atol(argv[1]) : -1;
  volatile unsigned long x = 0;
  while (target < 0 || cpuMs() < target) {
    for (int i = 0; i < 100000; i++) x += i;
  }
  printf("spun %ld\n", target);
  return 0;
}
