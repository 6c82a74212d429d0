#!/usr/bin/env python3
"""Cost of joining a cgroup v1 hierarchy, the way a container's program child does it: a
single-threaded process writes "0" (itself) to the `tasks` file, or to `cgroup.procs`, of a
memory cgroup, alternating between two cgroups, back to back and after idle gaps, interleaved.
Through `cgroup.procs` the kernel takes its global threadgroup lock for writing, which waits for
an RCU grace period after an idle moment; a single thread moving itself through `tasks` does not.

    python3 loadtest/cgroup-attach.py [--gap-ms 50] [--moves 30]

Root and a cgroup v1 memory hierarchy needed. The cgroups live under cellblock/ and are removed.
Python rather than Node: Node is multi-threaded, and `tasks` would move only its main thread."""
import argparse
import os
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument('--gap-ms', type=float, default=50)
parser.add_argument('--moves', type=int, default=30)
args = parser.parse_args()

hierarchy = '/sys/fs/cgroup/memory'
if not os.path.exists(os.path.join(hierarchy, 'tasks')):
    raise SystemExit('no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (cgroup v2 has no tasks file)')
own = next(line.split(':', 2)[2] for line in open('/proc/self/cgroup').read().splitlines() if line.split(':')[1] == 'memory')
parent = os.path.join(hierarchy, 'cellblock')
bench = os.path.join(parent, f'attach-bench-{os.getpid()}')
groups = [os.path.join(bench, name) for name in ('a', 'b')]
for group in groups:
    os.makedirs(group)


def move(group: str, via: str) -> float:
    fd = os.open(os.path.join(group, via), os.O_WRONLY)
    try:
        started = time.perf_counter()
        os.write(fd, b'0')
        return (time.perf_counter() - started) * 1e3
    finally:
        os.close(fd)


try:
    for gap_ms in (0, args.gap_ms):
        samples = {'tasks': [], 'cgroup.procs': []}
        for i in range(args.moves):
            for via in samples:
                time.sleep(gap_ms / 1e3)
                samples[via].append(move(groups[i % 2], via))
        label = 'back to back' if gap_ms == 0 else f'{gap_ms:g} ms idle before each'
        for via, times in samples.items():
            print(f'{label:>24}: via {via:<12} p50 {statistics.median(times):7.3f} ms  max {max(times):7.3f} ms  ({len(times)} moves)')
finally:
    with open(os.path.join(hierarchy + own, 'cgroup.procs'), 'w') as back:
        back.write('0')
    for directory in [*groups, bench, parent]:
        try:
            os.rmdir(directory)
        except OSError:
            pass  # the cellblock parent stays while another instance uses it
