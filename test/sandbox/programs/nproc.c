// nproc: prints its RLIMIT_NPROC (soft, hard), then forks children that wait until a fork fails
// (or it has argv[1] processes), and prints how many processes it had then, itself included, and
// the failed fork's error.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NPROC, &limit) != 0) return 1;
  printf("nproc %llu %llu\n", (unsigned long long)limit.rlim_cur, (unsigned long long)limit.rlim_max);
  int most = argc > 1 ? atoi(argv[1]) : 100000;
  int hold[2];
  if (pipe(hold) != 0) return 1;
  int processes = 1;
  int err = 0;
  while (processes < most) {
    pid_t pid = fork();
    if (pid == 0) {
      // Each child waits for the end of file on the pipe, which comes when the parent closes it.
      close(hold[1]);
      char c;
      while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    if (pid < 0) {
      err = errno;
      break;
    }
    processes++;
  }
  printf("processes %d fork %s\n", processes, err ? strerror(err) : "ok");
  fflush(stdout);
  close(hold[1]);
  while (wait(NULL) > 0) {
  }
  return 0;
}
