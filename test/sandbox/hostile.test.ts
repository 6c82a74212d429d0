// Hostile programs: each gets its expected verdict or refusal, and the host is unharmed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MiB } from '../../src/units.js';
import { processExists } from '../helpers/processes.js';
import { program, skip, text, useFixture } from './fixture.js';

describe('sandbox against hostile programs', { skip }, () => {
  const f = useFixture();

  it('contains a fork bomb (pids limit), then kills it at the CPU limit', async () => {
    const r = await f.run([program('forkbomb')], { limits: { pids: 16, cpuTimeMs: 500, wallTimeMs: 3000, cpuCores: 2 } });
    assert.ok(['cpu_time_limit', 'wall_time_limit'].includes(r.verdict), r.verdict);
    // run() returned once init was reaped, so the PID namespace is empty; the run's cgroup goes
    // right after (close() would report a removal that failed with a process left in it).
    const probe = await f.run(['/bin/echo', 'still fine']);
    assert.equal(text(probe.stdout), 'still fine\n');
  });

  it('refuses every forbidden system call, while ordinary fork still works', async () => {
    const r = await f.run([program('forbidden')]);
    assert.equal(r.verdict, 'ok', text(r.stderr));
    const results = Object.fromEntries(text(r.stdout).trim().split('\n').map((line) => line.split(' ')));
    const expected: Record<string, string> = {
      mount: 'EPERM',
      umount: 'EPERM',
      pivot_root: 'EPERM',
      chroot: 'EPERM',
      ptrace_attach_init: 'EPERM',
      ptrace_traceme: 'EPERM',
      unshare_user: 'EPERM',
      unshare_net: 'EPERM',
      setns: 'EPERM',
      clone_newuser: 'EPERM',
      clone3: 'ENOSYS',
      bpf: 'EPERM',
      keyctl: 'EPERM',
      add_key: 'EPERM',
      reboot: 'EPERM',
      kexec_load: 'EPERM',
      init_module: 'EPERM',
      perf_event_open: 'EPERM',
      userfaultfd: 'EPERM',
      io_uring_setup: 'EPERM',
      open_by_handle_at: 'EPERM',
      swapon: 'EPERM',
      settimeofday: 'EPERM',
      clock_settime: 'EPERM',
      sethostname: 'EPERM',
      fsopen: 'EPERM',
      syslog: 'EPERM',
      process_vm_readv: 'EPERM',
      setuid0: 'EPERM',
      socket_vsock: 'EAFNOSUPPORT',
      socket_alg: 'EAFNOSUPPORT',
      socket_packet: 'EAFNOSUPPORT',
      socketpair_vsock: 'EAFNOSUPPORT',
      socket_unix: 'ok',
      socket_inet: 'ok',
      socket_inet6: 'ok',
      socket_netlink: 'ok',
      socketpair_unix: 'ok',
      socket_inet_sctp: 'EPROTONOSUPPORT',
      socket_inet6_l2tp: 'EPROTONOSUPPORT',
      socket_netlink_generic: 'EPROTONOSUPPORT',
      socket_inet_tcp: 'ok',
      socket_inet6_udp: 'ok',
      ioctl_tiocsetd: 'EPERM',
      ioctl_tiocsti: 'EPERM',
      ioctl_fionread_pipe: 'ok',
      prlimit_core_read: 'ok',
      core_limit: '1:1',
      setrlimit_core: 'ok',
      prlimit_core: 'ok',
      prlimit_core_swap: 'EPERM',
      core_limit_after: '1:1',
      setrlimit_nofile: 'ok',
      fork: 'ok',
    };
    for (const [name, want] of Object.entries(expected)) assert.equal(results[name], want, name);
    assert.notEqual(results.write_sysrq, 'ok');
    assert.notEqual(results.write_proc_sys, 'ok');
  });

  it('kills a process making an x32 system call', { skip: process.arch !== 'x64' && 'x32 exists only on x86_64' }, async () => {
    const r = await f.run([program('x32')]);
    assert.equal(r.verdict, 'signaled');
    assert.equal(r.signalName, 'SIGSYS');
  });

  it('cannot reach a service listening on the host loopback, nor anything beyond', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const r = await f.run([program('connect'), '127.0.0.1', String(port)]);
      assert.equal(text(r.stdout), 'error ECONNREFUSED\n');
      const hostAddress = Object.values(os.networkInterfaces())
        .flat()
        .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
      if (hostAddress) {
        const outside = await f.run([program('connect'), hostAddress, String(port)]);
        assert.equal(text(outside.stdout), 'error ENETUNREACH\n');
      }
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });

  it('sees nothing of the host filesystem, nor init', async () => {
    const r = await f.run([
      '/bin/sh',
      '-c',
      'cat /etc/marker; cat /etc/shadow; ls /proc/1; cat /proc/1/cmdline; ls /proc/1/root; cd /../../..; ls -a / | tr "\\n" " "',
    ]);
    const out = text(r.stdout);
    assert.match(out, /^this is the busybox test root$/m);
    assert.doesNotMatch(out, /root:[^:]*:\d+:/, 'no shadow file');
    assert.doesNotMatch(out, /node/, "init's command line (Node's) is hidden");
    assert.match(text(r.stderr), /can't open '\/etc\/shadow': No such file/);
    assert.match(text(r.stderr), /\/proc\/1: No such file/);
    assert.match(out, /\. \.\. bin box dev etc linuxrc opt proc root sbin tmp usr $/m, 'the container root, nothing else');
  });

  it('cannot escape with chroot tricks', async () => {
    const r = await f.run(['/bin/sh', '-c', 'mkdir -p /tmp/jail && chroot /tmp/jail /bin/sh -c "cd ../../..; ls /"; echo "chroot exit $?"']);
    assert.match(text(r.stderr), /chroot: can't change root directory to '\/tmp\/jail': Operation not permitted/);
    assert.match(text(r.stdout), /chroot exit 1/);
  });

  it('cannot write the image, /dev, /proc/sys or /proc/sysrq-trigger', async () => {
    const overcommitBefore = fs.readFileSync('/proc/sys/vm/overcommit_memory', 'utf8');
    const r = await f.run([
      '/bin/sh',
      '-c',
      'touch /bin/x; touch /dev/x; mknod /tmp/null c 1 3; echo 2 > /proc/sys/vm/overcommit_memory; echo c > /proc/sysrq-trigger; echo done',
    ]);
    const err = text(r.stderr);
    assert.match(err, /touch: \/bin\/x: Read-only file system/);
    assert.match(err, /touch: \/dev\/x: Read-only file system/);
    assert.match(err, /mknod: \/tmp\/null: Operation not permitted/);
    assert.match(err, /overcommit_memory: (Read-only file system|Permission denied)/);
    assert.equal(text(r.stdout), 'done\n');
    assert.equal(fs.readFileSync('/proc/sys/vm/overcommit_memory', 'utf8'), overcommitBefore);
  });

  it('gains nothing from a setuid-root binary', async () => {
    const r = await f.run(['/opt/suid/busybox', 'id']);
    assert.equal(text(r.stdout), 'uid=60000(sandbox) gid=60000(sandbox)\n');
  });

  it('kill -9 -1 reaches only the run itself', async () => {
    // A host process of the very same uid must survive.
    const sentinel = spawn('sleep', ['30'], { uid: 60000, gid: 60000, stdio: 'ignore' });
    try {
      const r = await f.run(['/bin/sh', '-c', 'sleep 30 & kill -9 -1; echo survived $?']);
      assert.equal(text(r.stdout), 'survived 0\n');
      assert.ok(sentinel.pid !== undefined && processExists(sentinel.pid), 'the host sentinel survived');
      assert.ok(processExists(process.pid));
    } finally {
      sentinel.kill('SIGKILL');
    }
  });

  it('fills /tmp only up to tmpBytes', async () => {
    const r = await f.run(['/bin/sh', '-c', 'dd if=/dev/zero of=/tmp/fill bs=1M count=64; ls -l /tmp/fill'], {
      limits: { tmpBytes: 8 * MiB, fileSizeBytes: 128 * MiB },
    });
    assert.equal(r.verdict, 'ok');
    assert.match(text(r.stderr), /No space left on device/);
    const size = Number(text(r.stdout).trim().split(/\s+/)[4]);
    assert.ok(size <= 8 * MiB, `file grew to ${size}`);
  });

  it('floods /tmp with files only up to its inode limit', async () => {
    const r = await f.run(['/bin/sh', '-c', 'i=0; while true > /tmp/f$i 2>/dev/null; do i=$((i+1)); done; echo $i'], {
      limits: { tmpBytes: 4 * MiB, wallTimeMs: 20000, cpuTimeMs: 20000 },
    });
    assert.equal(r.verdict, 'ok');
    const files = Number(text(r.stdout).trim());
    assert.ok(files > 100 && files <= 1024, `created ${files} files`);
  });

  it('survives a memory bomb that forks', async () => {
    const r = await f.run(['/bin/sh', '-c', `for i in 1 2 3 4; do ${program('alloc')} 100 & done; wait`], {
      limits: { memoryBytes: 96 * MiB, pids: 8 },
    });
    assert.ok(r.metrics.peakMemoryBytes <= 96 * MiB);
    // The OOM killer chose among the run's processes; the shell itself may survive them.
    assert.ok(['memory_limit', 'ok'].includes(r.verdict), r.verdict);
    assert.equal(r.verdict, 'memory_limit');
  });

  it('on a uid of its own, cannot use up what the kernel limits per user for another run', async () => {
    // One run holds every inotify instance its user may have (fs.inotify.max_user_instances);
    // another run on another uid still makes one, and on the same uid it could not.
    const maxInstances = Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
    const openFiles = maxInstances + 16;
    const hog = (uid: number) => f.run([program('inotify'), String(maxInstances), '1500'], { uid, limits: { openFiles } });
    const one = (uid: number) => f.run([program('inotify'), '1'], { uid });
    const afterHog = async (hogUid: number, otherUid: number): Promise<[string, string]> => {
      const holding = hog(hogUid);
      await new Promise((resolve) => setTimeout(resolve, 500)); // the hog's instances made
      const other = await one(otherUid);
      return [text((await holding).stdout).trim(), text(other.stdout).trim()];
    };
    assert.deepEqual(await afterHog(60001, 60002), [String(maxInstances), '1'], 'apart');
    assert.deepEqual(await afterHog(60003, 60003), [String(maxInstances), '0'], 'the same uid shares the limit (what per-slot uids prevent)');
  });

  it('cannot see or signal other containers', async () => {
    const controller = new AbortController();
    const long = f.run(['/bin/sleep', '30'], { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const r = await f.run(['/bin/sh', '-c', 'ls /proc | grep -c "^[0-9]"; kill -9 -1; echo ok']);
    controller.abort();
    assert.equal((await long).verdict, 'cancelled', 'the other container was still running until cancelled');
    assert.ok(Number(text(r.stdout).split('\n')[0]) <= 3);
  });
});
