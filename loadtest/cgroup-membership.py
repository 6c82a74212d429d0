#!/usr/bin/env python3
"""What membership of a run's cgroups costs the program itself: the same command run bare and as a
member of fresh cgroups (cpu + cpuacct, memory, pids; all of them; all of them with the CPU quota
of one core that a run gets by default), interleaved, with idle gaps, as a run's cgroup is fresh
for every job. Prints each mode's p50 CPU time (the command and its children, from rusage) and
wall time, and their ratio to bare.

    npm run bench:cgroups -- [--runs 24] [--gap-ms 250] [-- command ...]

The default command is the c runtime's compile (images/runtimes/c.json, with the host's gcc) of
`int main(void){return 0;}`: the compile stage of the load test's "c true" job, bare. Root and
cgroup v1 cpu, cpuacct, memory and pids hierarchies needed (this machine's layout; a v2 host is
not measured by this script). The cgroups live under cellblock/ and are removed."""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

from bench_cleanup import exit_through_finally_on_signals, remove_cgroup, scratch_dir, sweep_dead_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CGROUP_ROOT = '/sys/fs/cgroup'
CONTROLLERS = ('cpu', 'cpuacct', 'memory', 'pids')
# What src/sandbox/cgroups/v1.ts writes for a run at the c runtime's compile limits.
MEMORY_BYTES = 512 * 1024 * 1024
PIDS = 64
CPU_PERIOD_US = 100_000

# A kill (SIGTERM) or a closed terminal (SIGHUP) ends the run through the finally below, as
# Ctrl-C (KeyboardInterrupt) does, so that the cgroups it made are removed.
exit_through_finally_on_signals()

parser = argparse.ArgumentParser()
parser.add_argument('--runs', type=int, default=24)
parser.add_argument('--gap-ms', type=float, default=250)
parser.add_argument('command', nargs='*')
args = parser.parse_args()

for controller in CONTROLLERS:
    if not os.path.exists(os.path.join(CGROUP_ROOT, controller, 'tasks')):
        raise SystemExit(f'no cgroup v1 {controller} hierarchy at {CGROUP_ROOT}/{controller}: this script measures v1 only')

scratch = scratch_dir('cgroup-membership')
command = args.command
if not command:
    with open(os.path.join(REPO, 'images/runtimes/c.json')) as f:
        runtime = json.load(f)
    with open(os.path.join(scratch, runtime['sourceFile']), 'w') as f:
        f.write('int main(void){return 0;}\n')
    command = [part for arg in runtime['compile']['argv'] for part in ([runtime['sourceFile']] if arg == '{files}' else [arg])]

MODES = {
    'bare': (),
    'cpu + cpuacct': ('cpu', 'cpuacct'),
    'memory': ('memory',),
    'all four': CONTROLLERS,
    'all four + 1-core quota': CONTROLLERS,
}
BENCH = 'membership-bench'
bench = f'cellblock/{BENCH}-{os.getpid()}'
for left in sweep_dead_runs({os.path.realpath(os.path.join(CGROUP_ROOT, c)) for c in CONTROLLERS}, BENCH):
    print(f"removed {left}: a killed run's", file=sys.stderr)


def make_cgroups(name: str, controllers: tuple, quota: bool) -> list:
    dirs = []
    for controller in controllers:
        path = os.path.join(os.path.realpath(os.path.join(CGROUP_ROOT, controller)), bench, name)
        if path not in dirs:  # co-mounted controllers (cpu,cpuacct) share one directory
            os.makedirs(path)
            dirs.append(path)
    if 'memory' in controllers:
        with open(os.path.join(CGROUP_ROOT, 'memory', bench, name, 'memory.limit_in_bytes'), 'w') as f:
            f.write(str(MEMORY_BYTES))
    if 'pids' in controllers:
        with open(os.path.join(CGROUP_ROOT, 'pids', bench, name, 'pids.max'), 'w') as f:
            f.write(str(PIDS))
    if quota:
        cpu = os.path.join(CGROUP_ROOT, 'cpu', bench, name)
        with open(os.path.join(cpu, 'cpu.cfs_period_us'), 'w') as f:
            f.write(str(CPU_PERIOD_US))
        with open(os.path.join(cpu, 'cpu.cfs_quota_us'), 'w') as f:
            f.write(str(CPU_PERIOD_US))
    return dirs


def joiner(dirs: list):
    def join() -> None:
        # In the child between fork and exec, as the program's child joins: itself, through `tasks`.
        for path in dirs:
            with open(os.path.join(path, 'tasks'), 'w') as f:
                f.write('0')
    return join


def run_once(dirs: list) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # Bare too through a preexec_fn (joining nothing): with one, subprocess forks; without, it
    # vforks, and on this VM the fork alone cost gcc as much as the cgroups (2026-12-05: bare 92.4
    # ms of CPU vforked, 102.4 forked), which every figure of this script before then included.
    subprocess.run(command, cwd=scratch, check=True, stdout=subprocess.DEVNULL, preexec_fn=joiner(dirs))
    wall_ms = (time.perf_counter() - started) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3
    return cpu_ms, wall_ms


samples = {mode: ([], []) for mode in MODES}
try:
    for mode in MODES:  # warm-up: page cache, the compiler's first run
        run_once([])
    for i in range(args.runs):
        for j, (mode, controllers) in enumerate(MODES.items()):
            time.sleep(args.gap_ms / 1e3)
            name = f'run-{i}-{j}'
            dirs = make_cgroups(name, controllers, mode.endswith('quota')) if controllers else []
            try:
                cpu_ms, wall_ms = run_once(dirs)
            finally:
                for path in dirs:
                    remove_cgroup(path)
            samples[mode][0].append(cpu_ms)
            samples[mode][1].append(wall_ms)
    print(f'# {" ".join(command)}: {args.runs} runs per mode, {args.gap_ms:g} ms idle before each, interleaved; p50 ms')
    bare_cpu, bare_wall = (statistics.median(samples['bare'][k]) for k in (0, 1))
    for mode, (cpu, wall) in samples.items():
        cpu_p50, wall_p50 = statistics.median(cpu), statistics.median(wall)
        print(f'{mode:<26} cpu {cpu_p50:7.2f} ({cpu_p50 / bare_cpu:4.2f}x)   wall {wall_p50:7.2f} ({wall_p50 / bare_wall:4.2f}x)')
finally:
    shutil.rmtree(scratch, ignore_errors=True)
    for hierarchy in {os.path.realpath(os.path.join(CGROUP_ROOT, controller)) for controller in CONTROLLERS}:
        for directory in (os.path.join(hierarchy, bench), os.path.join(hierarchy, 'cellblock')):
            try:
                os.rmdir(directory)
            except OSError:
                pass  # the cellblock parent stays while another instance uses it
