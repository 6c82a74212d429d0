// The numbers of the system calls from 424 (pidfd_send_signal, Linux 5.1) on that the addon makes
// or refuses, in one place. Since 424 every architecture numbers new calls from the kernel's one
// generic table, so these are the same on x86_64 and aarch64. Numbered here, not taken from the
// build's headers: headers older than a call lack its name, and the addon would then build without
// the call (seccomp.cc: a refusal left out leaves the call allowed) where the kernel it runs on has
// it. Not in sys.h: that is the raw-call layer for the code between clone and execve, and
// pidfd.cc's calls go through libc's syscall() in the supervisor.
#pragma once

#include <sys/syscall.h>

namespace cb {

constexpr long kPidfdSendSignal = 424;  // Linux 5.1
constexpr long kIoUringSetup = 425;     // 5.1
constexpr long kIoUringEnter = 426;     // 5.1
constexpr long kIoUringRegister = 427;  // 5.1
constexpr long kOpenTree = 428;         // 5.2, the new mount API: open_tree to fspick
constexpr long kMoveMount = 429;
constexpr long kFsopen = 430;
constexpr long kFsconfig = 431;
constexpr long kFsmount = 432;
constexpr long kFspick = 433;
constexpr long kPidfdOpen = 434;     // 5.3
constexpr long kClone3 = 435;        // 5.3
constexpr long kPidfdGetfd = 438;    // 5.6
constexpr long kMountSetattr = 442;  // 5.12
constexpr long kQuotactlFd = 443;    // 5.14
constexpr long kOpenTreeAttr = 467;  // 6.15: open_tree with attributes

// Where the headers do name them, they agree (a header that names quotactl_fd names the rest).
#ifdef SYS_quotactl_fd
static_assert(SYS_pidfd_send_signal == kPidfdSendSignal && SYS_io_uring_setup == kIoUringSetup &&
                  SYS_io_uring_enter == kIoUringEnter && SYS_io_uring_register == kIoUringRegister &&
                  SYS_open_tree == kOpenTree && SYS_move_mount == kMoveMount && SYS_fsopen == kFsopen &&
                  SYS_fsconfig == kFsconfig && SYS_fsmount == kFsmount && SYS_fspick == kFspick &&
                  SYS_pidfd_open == kPidfdOpen && SYS_clone3 == kClone3 && SYS_pidfd_getfd == kPidfdGetfd &&
                  SYS_mount_setattr == kMountSetattr && SYS_quotactl_fd == kQuotactlFd,
              "the generic system call numbers");
#endif
#ifdef SYS_open_tree_attr
static_assert(SYS_open_tree_attr == kOpenTreeAttr, "open_tree_attr's number");
#endif

}  // namespace cb
