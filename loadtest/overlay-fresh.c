/* What a fresh overlay per container costs a program, against one overlay mounted once (see
 * loadtest/overlay.ts, which builds and runs this). In a private mount namespace, alternating in
 * rounds: "persistent" runs the program chrooted in one read-only overlay of the image's layers
 * mounted before the first run (a read-only bind of the layer when there is only one), as the
 * load test's bare side does; "fresh" mounts, for every run, a tmpfs holding an upper and a work
 * dir and an overlay of the same layers over them (as a pool slot's root is made), runs the
 * program chrooted there, then unmounts both. Prints per round the program's CPU time (its
 * rusage) and wall time, p50, and this process's own CPU per run (the mounts and unmounts, the
 * fork).
 *
 *   overlay-fresh LOWERDIR SCRATCH RUNS ROUNDS PROGRAM [ARG...]   (the program gets this environment)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/image-layers.h"

extern char **environ;

static void fail(const char *what) {
  perror(what);
  exit(1);
}

static double nowMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double cpuMs(const struct rusage *r) {
  return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e3 + (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e3;
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double p50(double *values, int n) {
  qsort(values, n, sizeof *values, byValue);
  return values[n / 2];
}

/* Runs the program chrooted in root, its output to /dev/null; returns its CPU time in ms. */
static double runIn(const char *root, char **program, int devNull) {
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    if (chroot(root) != 0 || chdir("/") != 0) _exit(126);
    dup2(devNull, 1);
    execve(program[0], program, environ);
    _exit(127);
  }
  int status;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) < 0) fail("wait4");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "the program failed (status %#x)\n", (unsigned)status);
    exit(1);
  }
  return cpuMs(&usage);
}

static void makeDir(const char *path) {
  if (mkdir(path, 0755) != 0) fail(path);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: overlay-fresh LOWERDIR SCRATCH RUNS ROUNDS PROGRAM [ARG...]\n");
    return 2;
  }
  const char *lowerdir = argv[1], *scratch = argv[2];
  int runs = atoi(argv[3]), rounds = atoi(argv[4]);
  char **program = argv + 5;
  if (runs < 1 || rounds < 1) {
    fprintf(stderr, "RUNS and ROUNDS must be at least 1\n");
    return 2;
  }
  int devNull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devNull < 0) fail("open /dev/null");
  if (unshare(CLONE_NEWNS) != 0) fail("unshare");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("make / private");

  char persistent[4096], fresh[4096], slot[4096], upper[4200], work[4200], options[16384];
  snprintf(persistent, sizeof persistent, "%s/persistent", scratch);
  snprintf(fresh, sizeof fresh, "%s/fresh", scratch);
  snprintf(slot, sizeof slot, "%s/slot", scratch);
  snprintf(upper, sizeof upper, "%s/upper", slot);
  snprintf(work, sizeof work, "%s/work", slot);
  makeDir(persistent);
  makeDir(fresh);
  makeDir(slot);
  const char *step;
  if (mount_image_layers(lowerdir, persistent, &step) != 0) fail(step);
  snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s", lowerdir, upper, work);

  double *cpu = malloc(sizeof(double) * runs), *wall = malloc(sizeof(double) * runs);
  if (!cpu || !wall) fail("malloc");
  printf("round  overlay     program CPU p50 ms  wall p50 ms  this process's CPU per run, ms\n");
  for (int round = 1; round <= rounds; round++) {
    for (int freshMode = 0; freshMode <= 1; freshMode++) {
      struct rusage before, after;
      getrusage(RUSAGE_SELF, &before);
      for (int i = 0; i < runs; i++) {
        double start = nowMs();
        if (!freshMode) {
          cpu[i] = runIn(persistent, program, devNull);
        } else {
          if (mount("cellblock-bench", slot, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0700") != 0) fail("mount the slot's tmpfs");
          makeDir(upper);
          makeDir(work);
          if (mount("overlay", fresh, "overlay", MS_NOSUID | MS_NODEV, options) != 0) fail("mount a fresh overlay");
          cpu[i] = runIn(fresh, program, devNull);
          if (umount2(fresh, 0) != 0) fail("unmount the fresh overlay");
          if (umount2(slot, 0) != 0) fail("unmount the slot's tmpfs");
        }
        wall[i] = nowMs() - start;
      }
      getrusage(RUSAGE_SELF, &after);
      printf("%5d  %-10s  %18.2f  %11.2f  %30.3f\n", round, freshMode ? "fresh" : "persistent", p50(cpu, runs), p50(wall, runs),
             (cpuMs(&after) - cpuMs(&before)) / runs);
      fflush(stdout);
    }
  }
  return 0;
}
