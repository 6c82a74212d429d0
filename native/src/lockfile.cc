#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace cb {

int holdLockFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int isLockFileHeld(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int held = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
    held = errno == EWOULDBLOCK ? 1 : -errno;
  }
  close(fd);  // releases the probe's lock, if it took one
  return held;
}

}  // namespace cb
