// tcphold WORKERS PAIRS CLIENTS HOLD_MS: queues as much of the kernel's TCP memory over the
// container's loopback as the run's limits let it, then holds it. Each of WORKERS processes
// opens one listener with PAIRS connections it accepts, filling both directions without reading;
// then, with the rest of its open-file limit, listeners (backlog 4096) to each of which up to
// CLIENTS clients connect, fill what they can without the listener ever accepting, and close
// (their data stays queued on the connection the listener holds). Prints "ready <connections>"
// once every worker is done, holds for HOLD_MS and exits 0. A connection not yet accepted is
// charged to no memory cgroup: docs/theory-of-operation.md, "TCP memory".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char chunk[65536];

/** Non-blocking sends until the kernel takes no more. */
static void fill(int fd) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (send(fd, chunk, sizeof chunk, MSG_NOSIGNAL) > 0) {
  }
}

/** A listener on 127.0.0.1 (its port in *addr), or -1. */
static int listener(struct sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  socklen_t length = sizeof *addr;
  addr->sin_port = 0;
  if (bind(fd, (struct sockaddr*)addr, sizeof *addr) != 0 || listen(fd, 4096) != 0 ||
      getsockname(fd, (struct sockaddr*)addr, &length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/** A connected client, or -1: none within 30 ms (a full accept queue drops the SYN). */
static int connectTo(const struct sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (const struct sockaddr*)addr, sizeof *addr) != 0) {
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t length = sizeof err;
    if (errno != EINPROGRESS || poll(&p, 1, 30) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0 || err != 0) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

static int work(int pairs, int clients) {
  struct rlimit files;
  getrlimit(RLIMIT_NOFILE, &files);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  int connections = 0;
  int first = listener(&addr);
  for (int i = 0; first >= 0 && i < pairs; i++) {
    int client = connectTo(&addr);
    int server = client < 0 ? -1 : accept(first, NULL, NULL);
    if (server < 0) break;
    fill(client);
    fill(server);
    connections++;
  }
  // One descriptor spare for each listener's client.
  for (;;) {
    struct sockaddr_in at = addr;
    int fd = listener(&at);
    if (fd < 0 || fd + 1 >= (int)files.rlim_cur) break;
    for (int i = 0; i < clients; i++) {
      int client = connectTo(&at);
      if (client < 0) break;
      fill(client);
      close(client);
      connections++;
    }
  }
  return connections;
}

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  int workers = atoi(argv[1]), pairs = atoi(argv[2]), clients = atoi(argv[3]), holdMs = atoi(argv[4]);
  int report[2];
  pid_t pids[256];
  if (workers > 256 || pipe(report) != 0) return 1;
  for (int i = 0; i < workers; i++) {
    pid_t pid = pids[i] = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      close(report[0]);
      int connections = work(pairs, clients);
      if (write(report[1], &connections, sizeof connections) != sizeof connections) _exit(1);
      close(report[1]);
      pause();  // holds its sockets until the parent ends it
      _exit(0);
    }
  }
  close(report[1]);
  int total = 0, connections;
  while (read(report[0], &connections, sizeof connections) == sizeof connections) total += connections;
  printf("ready %d\n", total);
  fflush(stdout);
  struct timespec hold = {holdMs / 1000, (holdMs % 1000) * 1000000L};
  nanosleep(&hold, NULL);
  for (int i = 0; i < workers; i++) kill(pids[i], SIGKILL);
  while (wait(NULL) > 0) {
  }
  return 0;
}
