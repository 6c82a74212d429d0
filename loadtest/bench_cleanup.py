"""How the Python benchmarks (cgroup-attach.py, cgroup-membership.py) leave nothing behind, as the
TypeScript ones do (loadtest/service/interrupt.ts, loadtest/service/scratch.ts): a kill or a closed
terminal ends a run through its `finally` as Ctrl-C does; its scratch dir is named for its pid,
where the next benchmark to start (of either language) removes it should the run be killed
outright; and a run's cgroups, cellblock/<bench>-<pid> in each hierarchy, are removed by the next
run of the same script once that pid is gone."""
import errno
import os
import re
import shutil
import signal
import sys
import tempfile
import time


def exit_through_finally_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit (128 + the signal), which runs `finally` blocks; a
    signal's default action would end the process without them."""
    for stopping in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stopping, lambda number, _frame: sys.exit(128 + number))


def _alive(pid: int) -> bool:
    """A zombie counts as gone: it holds no cgroup membership or mount, and a killed run's parent
    (an init that reaps orphans lazily) may leave it a while."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


# loadtest/service/scratch.ts's RUN_DIR: <name>-<pid>- then mkdtemp's 6 or 8 characters.
_RUN_DIR = re.compile(r'[a-z0-9-]+?-(\d+)-[A-Za-z0-9_]{6,8}')


def _mounted_under(directory: str) -> bool:
    prefix = directory + '/'
    with open('/proc/self/mountinfo') as mountinfo:
        for line in mountinfo:
            point = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), line.split(' ')[4])
            if point == directory or point.startswith(prefix):
                return True
    return False


def scratch_dir(name: str) -> str:
    """<tmp>/cellblock-bench/<name>-<pid>-XXXXXXXX, as loadtest/service/scratch.ts names them,
    after removing those of runs whose process is gone (never one with a mount under it: the
    TypeScript sweep reclaims a killed load test's pool there first)."""
    root = os.path.join(tempfile.gettempdir(), 'cellblock-bench')
    os.makedirs(root, mode=0o700, exist_ok=True)
    # The sweep removes what it finds there: never a link someone planted in a shared tmp dir.
    if os.path.islink(root) or not os.path.isdir(root) or os.lstat(root).st_uid != os.getuid():
        raise SystemExit(f'{root} is not a directory of ours: not using it for scratch dirs')
    for entry in os.listdir(root):
        match = _RUN_DIR.fullmatch(entry)
        directory = os.path.join(root, entry)
        if match and not _alive(int(match.group(1))) and not _mounted_under(directory):
            shutil.rmtree(directory, ignore_errors=True)
            print(f"removed {directory}: a killed run's", file=sys.stderr)
    return tempfile.mkdtemp(prefix=f'{name}-{os.getpid()}-', dir=root)


def _below_cellblock_parent(path: str) -> bool:
    """Whether `path` is a cgroup below a `cellblock` dir (<hierarchy>/cellblock/<...>), where
    every cgroup of ours lives; never the parent itself, a hierarchy's root or anything else."""
    parts = os.path.realpath(path).split('/')
    return 'cellblock' in parts[:-1]


def remove_cgroup(path: str) -> None:
    """Removes an empty cgroup dir; processes a run cut short left in it (a compiler's children)
    are killed first, by the cgroup we made, and the removal retried once the kernel lets them go.
    Refuses (ValueError) a path outside cellblock/: the kill would reach whatever the cgroup holds,
    the whole machine for a hierarchy's root (rmdir of a root is EBUSY too)."""
    if not _below_cellblock_parent(path):
        raise ValueError(f'{path} is not below a cellblock/ cgroup: not removing it, nor killing what it holds')
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except OSError as error:
            if error.errno != errno.EBUSY:
                raise
        with open(os.path.join(path, 'cgroup.procs')) as procs:
            for pid in procs.read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)
    os.rmdir(path)


def sweep_dead_runs(hierarchies, bench: str) -> list:
    """Removes cellblock/<bench>-<pid> (and the cgroups under it) in each hierarchy where <pid> is
    gone: what a run killed outright (SIGKILL) left. Returns the dirs removed."""
    removed = []
    for hierarchy in hierarchies:
        parent = os.path.join(hierarchy, 'cellblock')
        try:
            names = os.listdir(parent)
        except FileNotFoundError:
            continue
        for name in names:
            match = re.fullmatch(re.escape(bench) + r'-(\d+)', name)
            if not match or _alive(int(match.group(1))):
                continue
            top = os.path.join(parent, name)
            for directory, _subdirs, _files in os.walk(top, topdown=False):  # children first
                remove_cgroup(directory)
            removed.append(top)
    return removed
