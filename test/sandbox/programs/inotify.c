// inotify N HOLD_MS: makes up to N inotify instances, prints how many it got, then holds them
// for HOLD_MS. The kernel counts them per user (fs.inotify.max_user_instances), not per namespace.
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int wanted = argc > 1 ? atoi(argv[1]) : 1;
  int holdMs = argc > 2 ? atoi(argv[2]) : 0;
  int made = 0;
  for (int i = 0; i < wanted; i++) {
    if (inotify_init1(IN_CLOEXEC) < 0) break;
    made++;
  }
  printf("%d\n", made);
  fflush(stdout);
  if (holdMs > 0) usleep((useconds_t)holdMs * 1000);
  return 0;
}
