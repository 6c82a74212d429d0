// The named steps of the container recipe. A failing step is reported to the supervisor as
// {step, errno} through the report pipe and surfaces in JS as SandboxError(step, errno).
#pragma once

#include <stdint.h>

namespace cb {

#define CB_STEPS(X)                                                                  \
  X(none)                                                                            \
  /* supervisor, before clone */                                                     \
  X(open_cgroup) X(open_memfd) X(open_pipe) X(map_stack) X(clone_init) X(init_died)  \
  X(read_output) X(write_stdin) X(open_terminal)                                     \
  /* init: namespaces, cgroup, mounts */                                             \
  X(unshare_files) X(parent_death_signal) X(close_inherited_fds)                     \
  X(mount_private) X(bind_root) X(bind_workdir) X(remount_workdir) X(mount_proc)     \
  X(proc_readonly) X(proc_mask) X(mount_dev) X(dev_node) X(dev_symlink)              \
  X(remount_dev) X(mount_tmp) X(remount_root) X(pivot_root) X(detach_old_root)       \
  X(chdir_root) X(sethostname) X(loopback_up) X(net_sysctl) X(signalfd)              \
  X(remount_tmp)                                                                     \
  X(clone_program) X(wait_program)                                                   \
  /* the program's child, before execve */                                           \
  X(setsid) X(cgroup_join) X(unshare_cgroup) X(dup_stdio) X(controlling_terminal)   \
  X(reset_signals)                                                                   \
  X(setrlimit) X(chdir_cwd)                                                          \
  X(drop_bounding_set)                                                               \
  X(clear_ambient_caps) X(setgroups) X(setresgid) X(setresuid) X(no_new_privs)       \
  X(seccomp) X(close_fds) X(execve)

enum Step : uint16_t {
#define CB_STEP_ENUM(name) step_##name,
  CB_STEPS(CB_STEP_ENUM)
#undef CB_STEP_ENUM
};

const char* stepName(uint32_t step);

/** A step's outcome: step_none means success; err is a positive errno. */
struct Failure {
  uint16_t step;
  int32_t err;
  bool failed() const { return step != step_none; }
};

static inline Failure ok() { return Failure{step_none, 0}; }

/** For raw syscall results (-errno on failure). */
static inline Failure check(Step step, long rawResult) {
  if (rawResult < 0) return Failure{step, static_cast<int32_t>(-rawResult)};
  return ok();
}

#define CB_TRY(step, expr)                         \
  do {                                             \
    ::cb::Failure cb_f_ = ::cb::check(step, (expr)); \
    if (cb_f_.failed()) return cb_f_;              \
  } while (0)

#define CB_TRY_FAILURE(expr)           \
  do {                                 \
    ::cb::Failure cb_f_ = (expr);      \
    if (cb_f_.failed()) return cb_f_;  \
  } while (0)

}  // namespace cb
