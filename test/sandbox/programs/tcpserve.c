// tcpserve CLIENTS MIB: ordinary loopback use. CLIENTS clients (a process each) connect at once
// to a server on 127.0.0.1, which accepts only once every one has connected (their connections
// wait in its accept queue, as a busy server's do; 300 ms at most) and then sends MIB MiB to each; each reads to
// the end and checks the count. Prints "<clients> clients fetched <bytes> bytes each; slowest
// <ms> ms" (from a client's connect to its last byte) and exits 0, or says what failed and
// exits 1. A connection the accept queue had no room for waits a second or more, until its
// handshake is sent again.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char buffer[65536];

static long long nowMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void serve(int fd, long long bytes) {
  for (long long sent = 0; sent < bytes;) {
    size_t n = bytes - sent < (long long)sizeof buffer ? (size_t)(bytes - sent) : sizeof buffer;
    ssize_t w = write(fd, buffer, n);
    if (w <= 0) _exit(1);
    sent += w;
  }
  _exit(0);
}

/** Says "connected" on `connected`, then writes its duration in ms (or -1) to `results`. */
static void fetch(const struct sockaddr_in* addr, long long bytes, int connected, int results) {
  long long start = nowMs(), got = 0;
  int duration = -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (const struct sockaddr*)addr, sizeof *addr) == 0) {
    if (write(connected, "c", 1) != 1) _exit(1);
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) got += n;
    if (n == 0 && got == bytes) duration = (int)(nowMs() - start);
  } else if (write(connected, "f", 1) != 1) {
    _exit(1);
  }
  _exit(write(results, &duration, sizeof duration) == sizeof duration ? 0 : 1);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int clients = atoi(argv[1]);
  long long bytes = atoll(argv[2]) << 20;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t length = sizeof addr;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int connected[2], results[2];
  if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 128) != 0 ||
      getsockname(listener, (struct sockaddr*)&addr, &length) != 0 || pipe(connected) != 0 || pipe(results) != 0) {
    printf("error setup %s\n", strerrorname_np(errno));
    return 1;
  }
  for (int i = 0; i < clients; i++) {
    if (fork() == 0) fetch(&addr, bytes, connected[1], results[1]);
  }
  close(connected[1]);
  close(results[1]);
  // At most 300 ms: a client whose handshake the full queue dropped connects only after it.
  char word;
  long long deadline = nowMs() + 300;
  for (int i = 0; i < clients; i++) {
    struct pollfd p = {connected[0], POLLIN, 0};
    long long left = deadline - nowMs();
    if (left <= 0 || poll(&p, 1, (int)left) != 1 || read(connected[0], &word, 1) != 1) break;
  }
  for (int i = 0; i < clients; i++) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) break;
    if (fork() == 0) serve(fd, bytes);
    close(fd);
  }
  int failed = 0, slowest = 0, duration, status, count = 0;
  while (read(results[0], &duration, sizeof duration) == sizeof duration) {
    count++;
    if (duration < 0) failed = 1;
    if (duration > slowest) slowest = duration;
  }
  while (wait(&status) > 0) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  if (failed || count != clients) {
    printf("error a transfer failed\n");
    return 1;
  }
  printf("%d clients fetched %lld bytes each; slowest %d ms\n", clients, bytes, slowest);
  return 0;
}
