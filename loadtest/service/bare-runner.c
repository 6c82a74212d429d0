/*
 * The bare side of the load test: runs a program (or a short sequence of programs, e.g. gcc then
 * ./main) with no service and no sandbox, as cheaply as the kernel allows, so that the service's
 * figures have a physical floor beside them. Written in C because spawning from Node costs ~1 ms
 * of the parent's CPU per child, which would flatter the service's ratios.
 *
 *   bare-runner [-f] [-r LOWERDIR] -n RUNS -p LOOPS -g GAP_US -d DIR -- cmd1 arg... [';' cmd2 arg...]
 *
 * With -r, the programs are the image's own: the runner enters a private mount namespace, mounts
 * the image's layers read-only (LOWERDIR as overlayfs's lowerdir=, top layer first) with a proc on
 * its /proc (as the container has), binds DIR onto its /tmp and chroots there, before any run.
 * Same files as the container's root, none of the host's (a host interpreter reads the host's
 * site-packages: here two .pth files that cost python hello ~1 ms of its ~8); no namespace,
 * cgroup or limit around the runs themselves. The mounts die with the runner's mount namespace,
 * whatever way it ends.
 *
 * LOOPS threads each run RUNS/LOOPS iterations in DIR/<loop> (one work dir per loop, since a
 * compile writes its output there), sleeping GAP_US before each iteration (the first one too, so
 * that every run follows the same idle, as a sporadic job does). Each iteration runs the
 * commands in order with posix_spawn (vfork+exec; with -f, fork then execve, the textbook
 * fork+exec) and stops at the first non-zero exit. Prints one line per iteration:
 * "<loop> <latency_us> <status> <cpu_us>", then "elapsed_us <n>"; cpu_us is the user + system
 * time of the iteration's programs and every descendant they reaped (wait4's rusage), as a
 * container's cpuTimeMs counts its run's processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image-layers.h"

extern char **environ;

#define MAX_COMMANDS 8

static char **commands[MAX_COMMANDS];
static int command_count;
static long runs_per_loop, gap_us;
static int use_fork;
static const char *base_dir;
/* Opened before any chroot: an image need not have /dev/null. */
static int null_in = -1, null_out = -1;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* fork, then in the child what posix_spawn's file actions do, then execve. */
static int fork_exec(pid_t *pid, char **command, const char *dir) {
  *pid = fork();
  if (*pid < 0) return errno;
  if (*pid == 0) {
    if (chdir(dir) != 0 || dup2(null_in, 0) < 0 || dup2(null_out, 1) < 0 || dup2(null_out, 2) < 0) _exit(126);
    execve(command[0], command, environ);
    _exit(127);
  }
  return 0;
}

static int posix_spawn_in(pid_t *pid, char **command, const char *dir) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  /* posix_spawn_file_actions_addchdir_np: glibc 2.29+, so that threads need no shared chdir. */
  posix_spawn_file_actions_addchdir_np(&actions, dir);
  /* Output is discarded: the bare side measures running the program, not keeping what it wrote. */
  posix_spawn_file_actions_adddup2(&actions, null_in, 0);
  posix_spawn_file_actions_adddup2(&actions, null_out, 1);
  posix_spawn_file_actions_adddup2(&actions, null_out, 2);
  int error = posix_spawn(pid, command[0], &actions, NULL, command, environ);
  posix_spawn_file_actions_destroy(&actions);
  return error;
}

static long long cpu_us_of(const struct rusage *usage) {
  return (long long)(usage->ru_utime.tv_sec + usage->ru_stime.tv_sec) * 1000000LL + usage->ru_utime.tv_usec +
         usage->ru_stime.tv_usec;
}

/* Runs every command in order in `dir`, adding their CPU time to *cpu_us; the first failing
 * status, else 0; -errno if spawning failed. */
static int run_sequence(const char *dir, long long *cpu_us) {
  *cpu_us = 0;
  for (int i = 0; i < command_count; i++) {
    pid_t pid;
    int error = use_fork ? fork_exec(&pid, commands[i], dir) : posix_spawn_in(&pid, commands[i], dir);
    if (error != 0) return -error;
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0) {
      if (errno != EINTR) return -errno;
    }
    *cpu_us += cpu_us_of(&usage);
    if (status != 0) return status;
  }
  return 0;
}

static void *loop(void *arg) {
  long index = (long)arg;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%ld", base_dir, index);
  for (long run = 0; run < runs_per_loop; run++) {
    if (gap_us > 0) usleep((useconds_t)gap_us);
    long long start = now_us();
    long long cpu_us;
    int status = run_sequence(dir, &cpu_us);
    long long latency = now_us() - start;
    pthread_mutex_lock(&out_lock);
    printf("%ld %lld %d %lld\n", index, latency, status, cpu_us);
    pthread_mutex_unlock(&out_lock);
  }
  return NULL;
}

static void usage(void) {
  fprintf(stderr, "usage: bare-runner [-f] [-r LOWERDIR] -n RUNS -p LOOPS -g GAP_US -d DIR -- cmd [args] [; cmd [args]]\n");
  exit(2);
}

static void fail(const char *step) {
  fprintf(stderr, "bare-runner: %s: %s\n", step, strerror(errno));
  exit(1);
}

/* -r: the image's layers as the root, DIR as its /tmp (see the top of this file). One layer is
 * bound (overlayfs wants two lowers or an upper). */
static void enter_image_root(const char *lowerdir) {
  char root[4096];
  snprintf(root, sizeof root, "%s/.image-root", base_dir);
  if (mkdir(root, 0755) != 0 && errno != EEXIST) fail("mkdir image root");
  if (unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("make / private");
  const char *step;
  if (mount_image_layers(lowerdir, root, &step) != 0) fail(step);
  if (mount_image_proc(root) < 0) fail("mount proc in the image");
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/tmp", root);
  if (mount(base_dir, tmp, NULL, MS_BIND, NULL) != 0) fail("bind the work dirs onto the image's /tmp");
  if (chroot(root) != 0 || chdir("/") != 0) fail("chroot into the image");
  base_dir = "/tmp";
}

int main(int argc, char **argv) {
  long runs = 0, loops = 1;
  const char *lowerdir = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "fr:n:p:g:d:")) != -1) {
    switch (opt) {
      case 'f': use_fork = 1; break;
      case 'r': lowerdir = optarg; break;
      case 'n': runs = atol(optarg); break;
      case 'p': loops = atol(optarg); break;
      case 'g': gap_us = atol(optarg); break;
      case 'd': base_dir = optarg; break;
      default: usage();
    }
  }
  if (runs <= 0 || loops <= 0 || loops > 256 || gap_us < 0 || !base_dir || optind >= argc) usage();
  /* Split the remaining argv at ";" tokens into commands, in place. */
  commands[command_count++] = &argv[optind];
  for (int i = optind; i < argc; i++) {
    if (strcmp(argv[i], ";") != 0) continue;
    argv[i] = NULL;
    if (i + 1 >= argc || command_count == MAX_COMMANDS) usage();
    commands[command_count++] = &argv[i + 1];
  }
  /* A benchmark killed outright (SIGKILL) must not leave its runner going through hundreds of
   * runs on the cores the next benchmark measures: end with the process that started us. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)");
  if (getppid() != parent) return 1;
  null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  null_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_in < 0 || null_out < 0) fail("open /dev/null");
  if (lowerdir != NULL) enter_image_root(lowerdir);
  runs_per_loop = (runs + loops - 1) / loops;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  pthread_t threads[256];
  long long start = now_us();
  for (long i = 0; i < loops; i++) {
    if (pthread_create(&threads[i], NULL, loop, (void *)i) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  for (long i = 0; i < loops; i++) pthread_join(threads[i], NULL);
  printf("elapsed_us %lld\n", now_us() - start);
  return 0;
}
