// alloc MIB [HOLD_MS]: allocates MIB MiB and touches every page, so the memory is really charged;
// prints "allocated MIB", holds the memory HOLD_MS milliseconds (default 0) and exits 0.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char** argv) {
  long mib = argc > 1 ? atol(argv[1]) : 1;
  size_t bytes = (size_t)mib << 20;
  char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  printf("allocated %ld\n", mib);
  fflush(stdout);
  long holdMs = argc > 2 ? atol(argv[2]) : 0;
  struct timespec hold = {holdMs / 1000, (holdMs % 1000) * 1000000L};
  nanosleep(&hold, NULL);
  return 0;
}
