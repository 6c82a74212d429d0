// shrink: writes N bytes of 'x' to stdout, then tries to take its size back (ftruncate to 0, an
// open of /proc/self/fd/1 with O_TRUNC) and writes "small\n" at its start, as a program that
// would dodge the output limit does; says on stderr which seals its stdout has and how each try
// went.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char* outcome(int r, int err) { return r >= 0 ? "ok" : strerror(err); }

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 0;
  static char buf[65536];
  memset(buf, 'x', sizeof buf);
  for (long done = 0; done < n;) {
    long k = n - done < (long)sizeof buf ? n - done : (long)sizeof buf;
    ssize_t w = write(1, buf, k);
    if (w < 0) {
      perror("write");
      return 1;
    }
    done += w;
  }
  int seals = fcntl(1, F_GET_SEALS);
  int truncated = ftruncate(1, 0);
  int truncateErr = errno;
  int reopened = open("/proc/self/fd/1", O_WRONLY | O_TRUNC);
  int reopenErr = errno;
  lseek(1, 0, SEEK_SET);
  if (write(1, "small\n", 6) != 6) return 1;
  fprintf(stderr, "seals%s%s ftruncate %s open %s\n", seals > 0 && (seals & F_SEAL_SHRINK) ? " shrink" : "",
          seals > 0 && (seals & F_SEAL_SEAL) ? " seal" : "", outcome(truncated, truncateErr), outcome(reopened, reopenErr));
  return 0;
}
