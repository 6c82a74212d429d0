// connect HOST PORT: tries a TCP connection; prints "connected" or "error <ERRNO-NAME>".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) { printf("error socket %s\n", strerrorname_np(errno)); return 1; }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) == 0) { printf("connected\n"); return 0; }
  printf("error %s\n", strerrorname_np(errno));
  return 1;
}
