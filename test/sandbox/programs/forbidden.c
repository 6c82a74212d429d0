// forbidden: tries every operation a submission must not be able to do and prints one line per
// attempt: "<name> ok" or "<name> <ERRNO-NAME>".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/** A pipe's read end, for an ioctl every program may make. */
static int pipe_fds_for_ioctl(void) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  return fds[0];
}

static void show(const char* name, long r) {
  if (r >= 0) printf("%s ok\n", name);
  else printf("%s %s\n", name, strerrorname_np(errno));
  fflush(stdout);
}

int main(void) {
  show("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
  show("umount", umount2("/proc", MNT_DETACH));
  show("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
  show("chroot", chroot("/tmp"));
  show("ptrace_attach_init", ptrace(PTRACE_ATTACH, 1, 0, 0));
  show("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
  show("unshare_user", unshare(CLONE_NEWUSER));
  show("unshare_net", unshare(CLONE_NEWNET));
  show("setns", syscall(SYS_setns, 0, 0));
  show("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  show("clone3", syscall(SYS_clone3, &args, sizeof args));
  show("bpf", syscall(SYS_bpf, 0, 0, 0));
  show("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  show("add_key", syscall(SYS_add_key, "user", "x", "y", 1, 0));
  show("reboot", reboot(RB_POWER_OFF));
  show("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
  show("init_module", syscall(SYS_init_module, 0, 0, ""));
  show("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
  show("userfaultfd", syscall(SYS_userfaultfd, 0));
  show("io_uring_setup", syscall(SYS_io_uring_setup, 1, 0));
  show("open_by_handle_at", syscall(SYS_open_by_handle_at, 0, 0, 0));
  show("swapon", syscall(SYS_swapon, "/tmp/x", 0));
  show("settimeofday", syscall(SYS_settimeofday, 0, 0));
  struct timespec ts = {0, 0};
  show("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
  show("sethostname", sethostname("x", 1));
  show("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
  show("syslog", syscall(SYS_syslog, 3, 0, 0));
  show("process_vm_readv", syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0));
  show("setuid0", syscall(SYS_setuid, 0));
  // socket families outside unix, IP and netlink: vsock reaches a VM's host from any namespace.
  show("socket_vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
  show("socket_alg", socket(AF_ALG, SOCK_SEQPACKET, 0));
  show("socket_packet", socket(AF_PACKET, SOCK_RAW, 0));
  int pair[2];
  show("socketpair_vsock", socketpair(AF_VSOCK, SOCK_STREAM, 0, pair));
  show("socket_unix", socket(AF_UNIX, SOCK_STREAM, 0));
  show("socket_inet", socket(AF_INET, SOCK_STREAM, 0));
  show("socket_inet6", socket(AF_INET6, SOCK_DGRAM, 0));
  show("socket_netlink", socket(AF_NETLINK, SOCK_RAW, 0));
  show("socketpair_unix", socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
  // Protocols the kernel would load a module for (SCTP, L2TP, generic netlink); those built in.
  show("socket_inet_sctp", socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP));
  show("socket_inet6_l2tp", socket(AF_INET6, SOCK_DGRAM, 115 /* IPPROTO_L2TP */));
  show("socket_netlink_generic", socket(AF_NETLINK, SOCK_RAW, 16 /* NETLINK_GENERIC */));
  show("socket_inet_tcp", socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
  show("socket_inet6_udp", socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP));
  // Terminal requests that load a line discipline or type input: refused on any descriptor
  // (stdin here is no terminal: without the filter, ENOTTY).
  int ldisc = 0;
  char typed = 'x';
  show("ioctl_tiocsetd", ioctl(0, TIOCSETD, &ldisc));
  show("ioctl_tiocsti", ioctl(0, TIOCSTI, &typed));
  int pending = 0;
  show("ioctl_fionread_pipe", ioctl(pipe_fds_for_ioctl(), FIONREAD, &pending));
  // The core dump limit is 1 and stays so (0 would let a piped core_pattern start its helper); a
  // change succeeds without effect (the sanitizers abort when theirs fails), a swap is refused.
  struct rlimit core = {0, 0};
  show("prlimit_core_read", prlimit(0, RLIMIT_CORE, NULL, &core));
  printf("core_limit %llu:%llu\n", (unsigned long long)core.rlim_cur, (unsigned long long)core.rlim_max);
  struct rlimit zero = {0, 0};
  show("setrlimit_core", setrlimit(RLIMIT_CORE, &zero));
  show("prlimit_core", prlimit(0, RLIMIT_CORE, &zero, NULL));
  struct rlimit swapped;
  show("prlimit_core_swap", prlimit(0, RLIMIT_CORE, &zero, &swapped));
  getrlimit(RLIMIT_CORE, &core);
  printf("core_limit_after %llu:%llu\n", (unsigned long long)core.rlim_cur, (unsigned long long)core.rlim_max);
  struct rlimit files;
  getrlimit(RLIMIT_NOFILE, &files);
  show("setrlimit_nofile", setrlimit(RLIMIT_NOFILE, &files));
  show("write_sysrq", open("/proc/sysrq-trigger", O_WRONLY));
  show("write_proc_sys", open("/proc/sys/kernel/hostname", O_WRONLY));
  // An ordinary fork must still work (clone without namespace flags).
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  int status = 0;
  waitpid(pid, &status, 0);
  printf("fork %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 7 ? "ok" : "broken");
  return 0;
}
