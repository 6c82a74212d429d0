// tcpfill N: opens N TCP connections over the container's loopback and fills each without
// reading (non-blocking sends until the kernel refuses more), printing after each connection
// "<connections> <bytes queued so far>". Socket buffers are kernel memory the memory limit must
// cover: otherwise a job queues hundreds of MiB of the host's TCP memory (tcp_mem is global).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char chunk[65536];

int main(int argc, char** argv) {
  int connections = argc > 1 ? atoi(argv[1]) : 8;
  long long queued = 0;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < connections; i++) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t length = sizeof addr;
    addr.sin_port = 0;
    if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr*)&addr, &length) != 0) {
      printf("error listen %s\n", strerrorname_np(errno));
      return 1;
    }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0 || connect(client, (struct sockaddr*)&addr, sizeof addr) != 0) {
      printf("error connect %s\n", strerrorname_np(errno));
      return 1;
    }
    int server = accept(listener, NULL, NULL);  // kept open, never read
    if (server < 0) {
      printf("error accept %s\n", strerrorname_np(errno));
      return 1;
    }
    fcntl(client, F_SETFL, O_NONBLOCK);
    for (;;) {
      ssize_t sent = send(client, chunk, sizeof chunk, 0);
      if (sent <= 0) break;
      queued += sent;
    }
    printf("%d %lld\n", i + 1, queued);
    fflush(stdout);
  }
  return 0;
}
