// rcvbuf: a TCP socket's receive buffer and low-water mark (getsockopt), then each again after
// asking for 4 MiB and 1 MiB (setsockopt's result first): "rcvbuf <bytes> <rc> <bytes>" and
// "rcvlowat <bytes> <rc> <bytes>". A listener's buffer is what its connections not yet accepted
// may queue (docs/theory-of-operation.md, "TCP memory").
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

static int get(int fd, int option) {
  int value = -1;
  socklen_t length = sizeof value;
  getsockopt(fd, SOL_SOCKET, option, &value, &length);
  return value;
}

static void ask(int fd, const char* name, int option, int value) {
  int before = get(fd, option);
  int rc = setsockopt(fd, SOL_SOCKET, option, &value, sizeof value);
  printf("%s %d %d %d\n", name, before, rc, get(fd, option));
}

int main(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 1;
  ask(fd, "rcvbuf", SO_RCVBUF, 4 << 20);
  ask(fd, "rcvlowat", SO_RCVLOWAT, 1 << 20);
  return 0;
}
