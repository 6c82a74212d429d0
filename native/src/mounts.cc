#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>

#include "namespaces.h"
#include "sys.h"

namespace cb {
namespace {

long mountCall(const char* source, const char* target, const char* type, unsigned long flags,
               const char* data) {
  return sys(SYS_mount, source, target, type, flags, data);
}

Failure bindReadOnly(Step step, const char* path, unsigned long extraFlags) {
  long r = mountCall(path, path, nullptr, MS_BIND | MS_REC, nullptr);
  if (r == -ENOENT) return ok();  // not every kernel has every /proc file
  CB_TRY(step, r);
  CB_TRY(step, mountCall(nullptr, path, nullptr,
                         MS_REMOUNT | MS_BIND | MS_RDONLY | extraFlags, nullptr));
  return ok();
}

Failure mountProc(ContainerState& s) {
  // hidepid=invisible: the program (another uid) cannot see init at all; init shares Node's
  // memory, so /proc/1/cmdline would otherwise show Node's command line.
  CB_TRY(step_mount_proc, mountCall("proc", s.procTarget.c_str(), "proc",
                                    MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible"));
  // Here, before /proc/sys is bound read-only: the only moment its files can be opened for
  // writing. somaxconn's descriptor is on this mount, not on the read-only bind made over it.
  CB_TRY_FAILURE(limitTcpMemory(s));
  for (const std::string& path : s.procReadonlyTargets) {
    CB_TRY_FAILURE(
        bindReadOnly(step_proc_readonly, path.c_str(), MS_NOSUID | MS_NODEV | MS_NOEXEC));
  }
  for (const BindMount& mask : s.procMasks) {
    long r = mountCall(mask.source.c_str(), mask.target.c_str(), nullptr, MS_BIND, nullptr);
    if (r == -ENOENT) continue;
    CB_TRY(step_proc_mask, r);
  }
  return ok();
}

Failure mountDev(const ContainerState& s) {
  CB_TRY(step_mount_dev, mountCall("tmpfs", s.devTarget.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC,
                                   s.devMountOptions.c_str()));
  for (const BindMount& node : s.devNodes) {
    long fd = sys(SYS_openat, AT_FDCWD, node.target.c_str(),
                  O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
    CB_TRY(step_dev_node, fd);
    sys(SYS_close, fd);
    CB_TRY(step_dev_node,
           mountCall(node.source.c_str(), node.target.c_str(), nullptr, MS_BIND, nullptr));
  }
  for (const Symlink& link : s.devSymlinks) {
    CB_TRY(step_dev_symlink,
           sys(SYS_symlinkat, link.target.c_str(), AT_FDCWD, link.linkPath.c_str()));
  }
  CB_TRY(step_remount_dev,
         mountCall(nullptr, s.devTarget.c_str(), nullptr,
                   MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, s.devMountOptions.c_str()));
  return ok();
}

}  // namespace

Failure buildFilesystem(ContainerState& s) {
  // Nothing we mount may propagate back to the host's namespace.
  CB_TRY(step_mount_private, mountCall(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
  // The root becomes a mount of its own (pivot_root needs one); its submounts on the host are
  // not carried over.
  const char* root = s.rootDir.c_str();
  CB_TRY(step_bind_root, mountCall(root, root, nullptr, MS_BIND, nullptr));
  CB_TRY(step_bind_workdir, mountCall(s.workDirHost.c_str(), s.workDirTarget.c_str(), nullptr,
                                      MS_BIND, nullptr));
  CB_TRY(step_remount_workdir, mountCall(nullptr, s.workDirTarget.c_str(), nullptr,
                                         MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, nullptr));
  CB_TRY_FAILURE(mountProc(s));
  CB_TRY_FAILURE(mountDev(s));
  CB_TRY(step_mount_tmp, mountCall("tmpfs", s.tmpTarget.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                                   s.tmpMountOptions.c_str()));
  CB_TRY(step_remount_root,
         mountCall(nullptr, root, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                   nullptr));
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
  // the container's tree.
  CB_TRY(step_chdir_root, sys(SYS_chdir, root));
  CB_TRY(step_pivot_root, sys(SYS_pivot_root, ".", "."));
  CB_TRY(step_detach_old_root, sys(SYS_umount2, ".", MNT_DETACH));
  CB_TRY(step_chdir_root, sys(SYS_chdir, "/"));
  return ok();
}

Failure resizeTmp(const ContainerState& s) {
  if (!s.remountTmp) return ok();
  CB_TRY(step_remount_tmp, mountCall(nullptr, "/tmp", nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV,
                                     s.tmpRemountOptions.c_str()));
  return ok();
}

}  // namespace cb
