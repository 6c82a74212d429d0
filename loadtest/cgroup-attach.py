#!/usr/bin/env python3
"""Cost of joining a cgroup v1 hierarchy, the way a container's program child does it: a
single-threaded process writes "0" (itself) to the `tasks` file, or its own pid's number to
`tasks`, or "0" to `cgroup.procs`, of a memory cgroup, alternating between two cgroups, back to
back and after idle gaps, interleaved. Through `cgroup.procs` the kernel takes its global
threadgroup lock for writing, which waits for an RCU grace period after an idle moment; so it
does for `tasks` given a pid's number, even the writer's own: only a single thread moving itself
as "0" skips it (cgroup_procs_write_start: locked = pid || threadgroup).

    npm run bench:attach -- [--gap-ms 50] [--moves 30]

Root and a cgroup v1 memory hierarchy needed. The cgroups live under cellblock/ and are removed.
Python rather than Node: Node is multi-threaded, and `tasks` would move only its main thread."""
import argparse
import os
import statistics
import sys
import time

from bench_cleanup import exit_through_finally_on_signals, sweep_dead_runs

parser = argparse.ArgumentParser()
parser.add_argument('--gap-ms', type=float, default=50)
parser.add_argument('--moves', type=int, default=30)
args = parser.parse_args()

# A kill (SIGTERM) or a closed terminal (SIGHUP) ends the run through the finally below, as
# Ctrl-C (KeyboardInterrupt) does, so that the cgroups it made are removed.
exit_through_finally_on_signals()

hierarchy = '/sys/fs/cgroup/memory'
if not os.path.exists(os.path.join(hierarchy, 'tasks')):
    raise SystemExit('no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (cgroup v2 has no tasks file)')
own = next(line.split(':', 2)[2] for line in open('/proc/self/cgroup').read().splitlines() if line.split(':')[1] == 'memory')
parent = os.path.join(hierarchy, 'cellblock')
BENCH = 'attach-bench'
bench = os.path.join(parent, f'{BENCH}-{os.getpid()}')
for left in sweep_dead_runs([hierarchy], BENCH):
    print(f"removed {left}: a killed run's", file=sys.stderr)
groups = [os.path.join(bench, name) for name in ('a', 'b')]
for group in groups:
    os.makedirs(group)


# Each way: the file written and what is written to it.
WAYS = {
    'tasks': ('tasks', b'0'),
    'tasks, own pid': ('tasks', str(os.getpid()).encode()),
    'cgroup.procs': ('cgroup.procs', b'0'),
}


def move(group: str, way: str) -> float:
    file, value = WAYS[way]
    fd = os.open(os.path.join(group, file), os.O_WRONLY)
    try:
        started = time.perf_counter()
        os.write(fd, value)
        return (time.perf_counter() - started) * 1e3
    finally:
        os.close(fd)


try:
    for gap_ms in (0, args.gap_ms):
        samples = {way: [] for way in WAYS}
        for i in range(args.moves):
            for way in samples:
                time.sleep(gap_ms / 1e3)
                samples[way].append(move(groups[i % 2], way))
        label = 'back to back' if gap_ms == 0 else f'{gap_ms:g} ms idle before each'
        for way, times in samples.items():
            print(f'{label:>24}: via {way:<14} p50 {statistics.median(times):7.3f} ms  max {max(times):7.3f} ms  ({len(times)} moves)')
finally:
    with open(os.path.join(hierarchy + own, 'cgroup.procs'), 'w') as back:
        back.write('0')
    for directory in [*groups, bench, parent]:
        try:
            os.rmdir(directory)
        except OSError:
            pass  # the cellblock parent stays while another instance uses it
