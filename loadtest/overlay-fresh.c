/* What a fresh overlay per container costs a program, against one overlay mounted once (see
 * loadtest/overlay.ts, which builds and runs this). In a private mount namespace, taking turns
 * run by run: "persistent" runs the program chrooted in one read-only overlay of the image's layers
 * mounted before the first run (a read-only bind of the layer when there is only one), as the
 * load test's bare side does; "fresh" mounts, for every run, a tmpfs holding an upper and a work
 * dir and an overlay of the same layers over them (as a pool slot's root is made), runs the
 * program chrooted there, then unmounts both. Both ways have a proc on /proc, as the container
 * has (the java launcher, for one, finds its libraries through /proc/self/exe). Prints per round
 * and way the program's CPU time (its rusage) and wall time, p50, and this process's own CPU per
 * run (the mounts and unmounts, the fork). With -s, a third way, "looked up": a fresh overlay in which the paths listed in
 * PATHSFILE (one per line: a runtime's startupPaths) are looked up before the program runs, as the
 * pool's mount agent does while preparing a root (openat2 O_PATH, RESOLVE_IN_ROOT). The program's
 * stdout goes to /dev/null, its stderr to SCRATCH/program.stderr (shown when a run fails).
 *
 *   overlay-fresh [-s PATHSFILE] LOWERDIR SCRATCH RUNS ROUNDS PROGRAM [ARG...]   (the program gets this environment)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
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

/* Runs the program chrooted in root, its output to /dev/null and its errors appended to the file
 * open on errFd (one for all runs: nothing more per run), whose end is shown if it fails; returns
 * its CPU time in ms. */
static double runIn(const char *root, char **program, int devNull, int errFd) {
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    if (chroot(root) != 0 || chdir("/") != 0) _exit(126);
    dup2(devNull, 1);
    dup2(errFd, 2);
    execve(program[0], program, environ);
    _exit(127);
  }
  int status;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) < 0) fail("wait4");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fflush(stdout);
    fprintf(stderr, "the program failed (status %#x); the end of its stderr:\n", (unsigned)status);
    char text[4096];
    off_t size = lseek(errFd, 0, SEEK_END);
    ssize_t length = pread(errFd, text, sizeof text, size > (off_t)sizeof text ? size - (off_t)sizeof text : 0);
    if (length > 0) fwrite(text, 1, (size_t)length, stderr);
    exit(1);
  }
  return cpuMs(&usage);
}

static void makeDir(const char *path) {
  if (mkdir(path, 0755) != 0) fail(path);
}

static char *startupPaths[4096];
static int startupPathCount;

static void readStartupPaths(const char *file) {
  FILE *in = fopen(file, "r");
  if (!in) fail(file);
  char line[4096];
  while (startupPathCount < 4096 && fgets(line, sizeof line, in)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == '/') startupPaths[startupPathCount++] = strdup(line);
  }
  fclose(in);
}

/* What the mount agent does to a fresh root before it is taken (src/pool/mount-agent.py). */
static void lookUpStartupPaths(const char *root) {
  int rootFd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootFd < 0) fail(root);
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  for (int i = 0; i < startupPathCount; i++) {
    long fd = syscall(SYS_openat2, rootFd, startupPaths[i], &how, sizeof how);
    if (fd >= 0) close((int)fd);
  }
  close(rootFd);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "-s") == 0) {
    readStartupPaths(argv[2]);
    argv += 2;
    argc -= 2;
  }
  if (argc < 6) {
    fprintf(stderr, "usage: overlay-fresh [-s PATHSFILE] LOWERDIR SCRATCH RUNS ROUNDS PROGRAM [ARG...]\n");
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
  char errPath[4200];
  snprintf(errPath, sizeof errPath, "%s/program.stderr", scratch);
  int errFd = open(errPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (errFd < 0) fail("open the programs' stderr file");
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
  if (mount_image_proc(persistent) < 0) fail("mount proc in the persistent overlay");
  snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s", lowerdir, upper, work);

  // The ways take turns run by run, so that a host whose speed drifts weighs on each alike.
  enum { PERSISTENT, FRESH, LOOKED_UP };
  const char *modeNames[] = {"persistent", "fresh", "looked up"};
  int modes = startupPathCount > 0 ? 3 : 2;
  double *cpu[3], *wall[3];
  for (int m = 0; m < modes; m++) {
    cpu[m] = malloc(sizeof(double) * runs);
    wall[m] = malloc(sizeof(double) * runs);
    if (!cpu[m] || !wall[m]) fail("malloc");
  }
  printf("round  overlay     program CPU p50 ms  wall p50 ms  this process's CPU per run, ms\n");
  for (int round = 1; round <= rounds; round++) {
    double ownMs[3] = {0, 0, 0};
    for (int i = 0; i < runs; i++) {
      for (int m = 0; m < modes; m++) {
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        double start = nowMs();
        if (m == PERSISTENT) {
          cpu[m][i] = runIn(persistent, program, devNull, errFd);
        } else {
          if (mount("cellblock-bench", slot, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0700") != 0) fail("mount the slot's tmpfs");
          makeDir(upper);
          makeDir(work);
          if (mount("overlay", fresh, "overlay", MS_NOSUID | MS_NODEV, options) != 0) fail("mount a fresh overlay");
          int freshHasProc = mount_image_proc(fresh);
          if (freshHasProc < 0) fail("mount proc in the fresh overlay");
          if (m == LOOKED_UP) lookUpStartupPaths(fresh);
          cpu[m][i] = runIn(fresh, program, devNull, errFd);
          char freshProc[4200];
          snprintf(freshProc, sizeof freshProc, "%s/proc", fresh);
          if (freshHasProc && umount2(freshProc, 0) != 0) fail("unmount the fresh overlay's proc");
          if (umount2(fresh, 0) != 0) fail("unmount the fresh overlay");
          if (umount2(slot, 0) != 0) fail("unmount the slot's tmpfs");
        }
        wall[m][i] = nowMs() - start;
        getrusage(RUSAGE_SELF, &after);
        ownMs[m] += cpuMs(&after) - cpuMs(&before);
      }
    }
    for (int m = 0; m < modes; m++) {
      printf("%5d  %-10s  %18.2f  %11.2f  %30.3f\n", round, modeNames[m], p50(cpu[m], runs), p50(wall[m], runs), ownMs[m] / runs);
    }
    fflush(stdout);
  }
  return 0;
}
