// Instance liveness: a live sandbox instance holds an flock on its lock file; a stale one's lock
// is free. Node has no flock, hence native.
#pragma once

#include <string>

namespace cb {

/** Opens (creating) path and takes an exclusive flock without waiting; returns the fd, or
 * -errno (EWOULDBLOCK when another process holds it). The lock lives as long as the fd. */
int holdLockFile(const std::string& path);

/** 1 when some process holds the lock, 0 when it is free, -errno when path cannot be opened. */
int isLockFileHeld(const std::string& path);

}  // namespace cb
