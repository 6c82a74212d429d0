# The pool's mount agent: one long-lived privileged helper per pool owner that performs the
# few syscalls Node cannot make itself (mount, umount2, flock on a held fd) without forking a
# mount(8) per operation. A slot's full cycle through mount(8)/sh costs ~16-24 ms of CPU; here it
# is a few hundred microseconds, which is what lets the pool refill off the critical path.
#
# Protocol: one JSON object per line on stdin ({"id", "op", ...}); one JSON reply per line on
# stdout ({"id", "ok": true, ...} or {"id", "ok": false, "error": {"op", "code", "errno", "message"}}).
# The agent dies with its parent (PR_SET_PDEATHSIG) and on EOF of stdin, so a SIGKILLed owner
# drops the owner lock at once; the mounts it made stay and are reclaimed by the next owner.
# Dying alone (a kill by pid, the OOM killer), it leaves its owner unable to mount: the owner
# stops taking work and exits (pool.ts, Pool.lost; worker.ts).
# Nothing else ends it: SIGINT and SIGTERM are ignored, since they reach it with its owner's
# (Ctrl-C signals the terminal's whole foreground process group; a service manager's stop, every
# process of the service), while the owner's orderly stop still needs it to unmount.
import signal
# First, before the imports below: see above.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long

PR_SET_PDEATHSIG = 1
SYS_openat2 = 437  # one number on every architecture (Linux 5.6+)
O_PATH = 0o10000000
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8


class SysError(Exception):
    def __init__(self, op, err, path):
        super().__init__(f"{op} {path}: {os.strerror(err)}")
        self.op = op
        self.err = err


def check(rc, op, path):
    if rc != 0:
        raise SysError(op, ctypes.get_errno(), path)


def mount(source, target, fstype, flags, data):
    check(libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()), 'mount', target)


def umount(target, detach):
    flags = UMOUNT_NOFOLLOW | (MNT_DETACH if detach else 0)
    check(libc.umount2(target.encode(), flags), 'umount', target)


def ensure_dir(path, mode=0o755):
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass


class OpenHow(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]


def look_up_startup_paths(root, paths):
    # Each path is resolved as the program inside the container would resolve it: with root as
    # "/", so an absolute symlink of the image stays in the image (openat2 RESOLVE_IN_ROOT). O_PATH
    # opens nothing; the walk is what makes the overlay's dentries and inodes. Best effort: a
    # kernel without openat2 leaves the lookups to the program. Returns how many paths exist.
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = OpenHow(O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        # The arguments converted once: ctypes' per-call conversions were half of the loop's
        # time (a C compile's 239 paths: 1.1 -> 0.56 ms in a root where all are already made).
        number = ctypes.c_long(SYS_openat2)
        dir_fd = ctypes.c_int(root_fd)
        how_ref = ctypes.byref(how)
        how_size = ctypes.c_size_t(ctypes.sizeof(how))
        found = 0
        for path in paths:
            fd = libc.syscall(number, dir_fd, path.encode(), how_ref, how_size)
            if fd >= 0:
                os.close(fd)
                found += 1
            elif ctypes.get_errno() == errno.ENOSYS:
                break
        return found
    finally:
        os.close(root_fd)


def mount_overlay(target, lowers, upper, work):
    # Each layer is named to overlayfs by a descriptor's /proc/self/fd path, not by its host path:
    # the kernel shows the options as given in /proc/<pid>/mountinfo and /proc/<pid>/mounts, and
    # the program reads those of its own root, where a host path would name the layers' dir and
    # the pool's state dir with this worker's pid (owner-<pid>-...). overlayfs resolves the paths
    # once, at the mount; the descriptors may be closed after it. (The new mount API's
    # FSCONFIG_SET_FD, Linux 6.13+, would not do: overlayfs shows such a layer by its d_path.)
    # Short names also keep many layers well within mount(2)'s one page of options.
    fds = []
    try:
        for path in lowers + [upper, work]:
            fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        names = [f'/proc/self/fd/{fd}' for fd in fds]
        mount('cellblock-root', target, 'overlay', MS_NOSUID | MS_NODEV,
              f"lowerdir={':'.join(names[:-2])},upperdir={names[-2]},workdir={names[-1]}")
    finally:
        for fd in fds:
            os.close(fd)


def prepare_root(req):
    # One slot: a tmpfs of the slot's writable size holds the overlay's upper and work dirs and
    # the job's work dir, so that a reset is "umount, drop the tmpfs" (never deleting from a
    # mounted upper). The job's work dir is a plain directory of that tmpfs, beside the overlay,
    # which the engine binds onto the root's work dir mount point: the container's root is
    # read-only, so the work dir is the only place files are written, and there they go straight
    # to tmpfs, not through overlayfs as well (commit 97ed442 has the side-by-side figures).
    slot = req['slotDir']
    rw = os.path.join(slot, 'rw')
    root = os.path.join(slot, 'root')
    ensure_dir(slot, 0o700)
    ensure_dir(rw, 0o700)
    ensure_dir(root, 0o755)
    mount('cellblock-slot', rw, 'tmpfs', MS_NOSUID | MS_NODEV,
          f"size={int(req['upperBytes'])},nr_inodes={int(req['upperInodes'])},mode=0700")
    try:
        upper = os.path.join(rw, 'upper')
        os.mkdir(upper, 0o755)
        os.mkdir(os.path.join(rw, 'work'), 0o700)
        # Mount points the engine needs, made in the upper when no layer has them.
        layers = req['layerPaths']
        for point in req['mountPoints'] + [req['workDir']]:
            if not any(os.path.isdir(os.path.join(layer, point)) for layer in layers):
                os.makedirs(os.path.join(upper, point), 0o755, exist_ok=True)
        box = os.path.join(rw, 'box')
        os.mkdir(box, 0o755)
        os.chown(box, req['uid'], req['gid'])
        os.chmod(box, 0o755)
        mount_overlay(root, list(reversed(layers)), upper, os.path.join(rw, 'work'))  # top layer first
    except BaseException:
        umount(rw, True)
        raise
    try:
        found = look_up_startup_paths(root, req.get('startupPaths', []))
    except BaseException:
        umount(root, True)
        umount(rw, True)
        raise
    return {'rootDir': root, 'workDirHostPath': box, 'startupPathsFound': found}


def destroy_root(req):
    slot = req['slotDir']
    for name in ('root', 'rw'):
        path = os.path.join(slot, name)
        try:
            umount(path, bool(req.get('detach')))
        except SysError as e:
            if e.err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point (already gone)
                raise
    for name in ('root', 'rw'):
        try:
            os.rmdir(os.path.join(slot, name))
        except FileNotFoundError:
            pass
    os.rmdir(slot)
    return {}


held_locks = {}
next_lock_id = [1]


def lock(req):
    # flock(2) locks belong to the open file: held as long as this agent lives, dropped by the
    # kernel when it dies, however it dies.
    path = req['path']
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return {'acquired': False}
    lock_id = next_lock_id[0]
    next_lock_id[0] += 1
    held_locks[lock_id] = fd
    return {'acquired': True, 'lockId': lock_id}


def unlock(req):
    fd = held_locks.pop(req['lockId'], None)
    if fd is not None:
        os.close(fd)
    return {}


def mount_tmpfs(req):
    ensure_dir(req['path'], 0o700)
    mount('cellblock-state', req['path'], 'tmpfs', MS_NOSUID | MS_NODEV, f"size={int(req['bytes'])},mode=0700")
    return {}


def umount_op(req):
    umount(req['path'], bool(req.get('detach')))
    return {}


OPS = {
    'prepareRoot': prepare_root,
    'destroyRoot': destroy_root,
    'lock': lock,
    'unlock': unlock,
    'umount': umount_op,
    'mountTmpfs': mount_tmpfs,
    'ping': lambda req: {'pid': os.getpid()},
}


def main():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(os.environ.get('CELLBLOCK_AGENT_PARENT', os.getppid())):
        return  # the parent died before the death signal was armed
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {'id': req['id'], 'ok': True, **OPS[req['op']](req)}
        except SysError as e:
            reply = {'id': req['id'], 'ok': False,
                     'error': {'op': e.op, 'code': errno.errorcode.get(e.err, 'E?'), 'errno': e.err, 'message': str(e)}}
        except OSError as e:
            err = e.errno or 0
            reply = {'id': req['id'], 'ok': False,
                     'error': {'op': req['op'], 'code': errno.errorcode.get(err, 'E?'), 'errno': err, 'message': str(e)}}
        except Exception as e:  # a malformed request: report it, keep serving
            reply = {'id': req.get('id'), 'ok': False,
                     'error': {'op': req.get('op'), 'code': 'EBADREQ', 'errno': 0, 'message': repr(e)}}
        out.write(json.dumps(reply) + '\n')
        out.flush()


main()
