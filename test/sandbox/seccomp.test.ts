// The program's seccomp filter against the policy it is built from, for every system call
// number: the filter is a binary search on the number (native/src/seccomp.cc), and a slip in it
// would allow or refuse the wrong calls without any program noticing. Run through a classic BPF
// interpreter of the instructions the kernel accepts for seccomp; hostile.test.ts checks a few
// calls in a real container.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { native } from '../../src/sandbox/native.js';

const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;
const EPROTONOSUPPORT = 93;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_NETLINK = 16;
const AF_VSOCK = 40;
const IPPROTO_SCTP = 132;
const NETLINK_GENERIC = 16;
const TIOCSTI = 0x5412;
const TIOCSETD = 0x5423;
const RLIMIT_CORE = 4;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVLOWAT = 18;
const IPPROTO_TCP = 6;

const policy = native.seccompPolicy();

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
/** The calls refused with EPERM, by the kernel's numbers (its syscall tables), not the build's
 * headers: the filter is built from those, and a call a header did not name would be missing
 * from the policy and the filter alike, where a check against the policy could not see it. From
 * 424 on every architecture numbers a call alike. */
const GENERIC_REFUSED: Record<string, number> = {
  io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430,
  fsconfig: 431, fsmount: 432, fspick: 433, pidfd_getfd: 438, mount_setattr: 442, quotactl_fd: 443, open_tree_attr: 467,
};
const REFUSED_BY_ARCH: Record<number, Record<string, number>> = {
  [AUDIT_ARCH_X86_64]: {
    mount: 165, umount2: 166, pivot_root: 155, chroot: 161, ptrace: 101, kexec_load: 246, kexec_file_load: 320, reboot: 169,
    init_module: 175, finit_module: 313, delete_module: 176, bpf: 321, perf_event_open: 298, keyctl: 250, add_key: 248,
    request_key: 249, unshare: 272, setns: 308, userfaultfd: 323, swapon: 167, swapoff: 168, acct: 163, settimeofday: 164,
    clock_settime: 227, clock_adjtime: 305, adjtimex: 159, syslog: 103, open_by_handle_at: 304, name_to_handle_at: 303,
    process_vm_readv: 310, process_vm_writev: 311, iopl: 172, ioperm: 173, quotactl: 179, lookup_dcookie: 212, vhangup: 153,
    sethostname: 170, setdomainname: 171, uselib: 134, _sysctl: 156, fanotify_init: 300, nfsservctl: 180,
    ...GENERIC_REFUSED,
  },
  // No iopl, ioperm, uselib or _sysctl here.
  [AUDIT_ARCH_AARCH64]: {
    mount: 40, umount2: 39, pivot_root: 41, chroot: 51, ptrace: 117, kexec_load: 104, kexec_file_load: 294, reboot: 142,
    init_module: 105, finit_module: 273, delete_module: 106, bpf: 280, perf_event_open: 241, keyctl: 219, add_key: 217,
    request_key: 218, unshare: 97, setns: 268, userfaultfd: 282, swapon: 224, swapoff: 225, acct: 89, settimeofday: 170,
    clock_settime: 112, clock_adjtime: 266, adjtimex: 171, syslog: 116, open_by_handle_at: 265, name_to_handle_at: 264,
    process_vm_readv: 270, process_vm_writev: 271, quotactl: 60, lookup_dcookie: 18, vhangup: 58, sethostname: 161,
    setdomainname: 162, fanotify_init: 262, nfsservctl: 42,
    ...GENERIC_REFUSED,
  },
};
/** The calls with verdicts of their own, by the same tables. */
const OWN_VERDICTS_BY_ARCH: Record<number, { clone: number; clone3: number; socket: number; socketpair: number; setsockopt: number; ioctl: number; setrlimit: number; prlimit64: number }> = {
  [AUDIT_ARCH_X86_64]: { clone: 56, clone3: 435, socket: 41, socketpair: 53, setsockopt: 54, ioctl: 16, setrlimit: 160, prlimit64: 302 },
  [AUDIT_ARCH_AARCH64]: { clone: 220, clone3: 435, socket: 198, socketpair: 199, setsockopt: 208, ioctl: 29, setrlimit: 164, prlimit64: 261 },
};

interface SeccompData {
  nr: number;
  arch: number;
  /** The low 32 bits of the first three arguments (all a classic BPF load of args[i] sees). */
  arg0: number;
  arg1?: number;
  arg2?: number;
  /** The high 32 bits of the third argument (a pointer's, for prlimit64). */
  arg2High?: number;
  /** The fourth argument's words (prlimit64's old-limit pointer). */
  arg3?: number;
  arg3High?: number;
}

/** Runs the filter as the kernel would (struct seccomp_data: nr at 0, arch at 4, args at 16). */
function verdict(filter: Buffer, data: SeccompData): number {
  const words = new Map([[0, data.nr >>> 0], [4, data.arch >>> 0], [16, data.arg0 >>> 0], [24, (data.arg1 ?? 0) >>> 0], [32, (data.arg2 ?? 0) >>> 0], [36, (data.arg2High ?? 0) >>> 0], [40, (data.arg3 ?? 0) >>> 0], [44, (data.arg3High ?? 0) >>> 0]]);
  const count = filter.length / 8;
  let a = 0;
  for (let pc = 0, steps = 0; pc < count; steps++) {
    assert.ok(steps <= count, 'a filter runs forward only');
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter[pc * 8 + 2]!;
    const jf = filter[pc * 8 + 3]!;
    const k = filter.readUInt32LE(pc * 8 + 4);
    const jumpIf = (taken: boolean) => (pc += 1 + (taken ? jt : jf));
    switch (code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        assert.ok(words.has(k), `a load of offset ${k}, which the policy never reads`);
        a = words.get(k)!;
        pc++;
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        jumpIf(a === k);
        break;
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        jumpIf(a >= k);
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        jumpIf(((a & k) >>> 0) !== 0);
        break;
      case 0x06: // BPF_RET | BPF_K
        return k;
      default:
        assert.fail(`instruction ${pc}: opcode 0x${code.toString(16)} not expected`);
    }
  }
  return assert.fail('the filter ran off its end');
}

/** What the policy says for a call (the filter must agree). */
function expected(data: SeccompData): number {
  if (data.arch !== policy.auditArch) return RET_KILL_PROCESS;
  if (policy.x32SyscallBit !== 0 && data.nr >= policy.x32SyscallBit) return RET_KILL_PROCESS;
  if (data.nr >= policy.firstUnreviewedNr) return RET_ERRNO | ENOSYS;
  if (policy.refused.includes(data.nr)) return RET_ERRNO | EPERM;
  if (policy.notImplemented.includes(data.nr)) return RET_ERRNO | ENOSYS;
  if (data.nr === policy.cloneNr && (data.arg0 & policy.cloneNamespaceFlags) !== 0) return RET_ERRNO | EPERM;
  if (policy.socketNrs.includes(data.nr)) {
    const family = policy.socketFamilies.find((candidate) => candidate.family === data.arg0);
    if (!family) return RET_ERRNO | EAFNOSUPPORT;
    if (family.protocols.length > 0 && !family.protocols.includes(data.arg2 ?? 0)) return RET_ERRNO | EPROTONOSUPPORT;
  }
  // A listener's receive buffer stays the namespace's default: the options succeed without effect.
  if (data.nr === policy.setsockoptNr && data.arg1 === policy.socketOptionLevel && policy.ignoredSocketOptions.includes(data.arg2 ?? 0)) return RET_ERRNO | 0;
  if (data.nr === policy.ioctlNr && policy.refusedIoctls.includes(data.arg1 ?? 0)) return RET_ERRNO | EPERM;
  // The fixed limit: a change succeeds without effect (errno 0), unless the old limit is asked for too.
  if (policy.setrlimitNr !== 0 && data.nr === policy.setrlimitNr && data.arg0 === policy.fixedRlimit) return RET_ERRNO | 0;
  const newLimit = (data.arg2 ?? 0) !== 0 || (data.arg2High ?? 0) !== 0;
  const oldLimit = (data.arg3 ?? 0) !== 0 || (data.arg3High ?? 0) !== 0;
  if (data.nr === policy.prlimitNr && data.arg1 === policy.fixedRlimit && newLimit) return RET_ERRNO | (oldLimit ? EPERM : 0);
  return RET_ALLOW;
}

const name = (v: number) =>
  v === RET_ALLOW ? 'allow' : v === RET_KILL_PROCESS ? 'kill' : (v & 0xffff0000) >>> 0 === RET_ERRNO ? `errno ${v & 0xffff}` : `0x${v.toString(16)}`;

describe('seccomp filter', () => {
  it("refuses the calls it names by the kernel's numbers for this architecture, whatever headers it was built with", () => {
    const refused = REFUSED_BY_ARCH[policy.auditArch];
    const own = OWN_VERDICTS_BY_ARCH[policy.auditArch];
    assert.ok(refused && own, `a table for audit architecture 0x${policy.auditArch.toString(16)}`);
    const byNumber = new Map(Object.entries(refused).map(([name, nr]) => [nr, name]));
    const missing = [...byNumber].filter(([nr]) => !policy.refused.includes(nr)).map(([nr, name]) => `${name} (${nr})`);
    const unexpected = policy.refused.filter((nr) => !byNumber.has(nr));
    assert.deepEqual({ missing, unexpected }, { missing: [], unexpected: [] });
    assert.deepEqual(policy.notImplemented, [own.clone3], 'clone3: ENOSYS, so that libc falls back to clone, whose flags are checked');
    assert.deepEqual(
      [policy.cloneNr, policy.socketNrs, policy.setsockoptNr, policy.ioctlNr, policy.setrlimitNr, policy.prlimitNr],
      [own.clone, [own.socket, own.socketpair], own.setsockopt, own.ioctl, own.setrlimit, own.prlimit64],
    );
  });

  it('holds the policy the tests below check', () => {
    assert.ok(policy.refused.length >= 40, 'the refused calls');
    assert.ok(policy.filter.length % 8 === 0 && policy.filter.length / 8 < 4096);
    // clone and clone3 have verdicts of their own: neither may also be in the plain EPERM list.
    for (const nr of [policy.cloneNr, ...policy.notImplemented, ...policy.socketNrs]) assert.ok(!policy.refused.includes(nr));
    assert.equal(policy.socketNrs.length, 2, 'socket and socketpair');
    const families = new Map(policy.socketFamilies.map(({ family, protocols }) => [family, protocols]));
    assert.ok(families.has(AF_UNIX) && families.has(AF_INET), 'unix and IPv4 sockets');
    assert.ok(!families.has(AF_VSOCK), 'no vsock: a VM\'s way to its host, outside the network namespace');
    assert.deepEqual(families.get(AF_UNIX), [], 'a unix socket of any protocol (none loads a module)');
    assert.ok(!families.get(AF_INET)!.includes(IPPROTO_SCTP), 'no SCTP: its module would be loaded on request');
    assert.deepEqual(families.get(AF_NETLINK), [0], 'routing netlink only (no generic netlink family loads its module)');
    assert.ok(!policy.refused.includes(policy.setsockoptNr) && policy.setsockoptNr !== 0, 'setsockopt has its own verdicts');
    assert.equal(policy.socketOptionLevel, SOL_SOCKET);
    assert.deepEqual([...policy.ignoredSocketOptions].sort((a, b) => a - b), [SO_RCVBUF, SO_RCVLOWAT], 'a listener\'s receive buffer is not raised');
    assert.ok(!policy.refused.includes(policy.ioctlNr), 'ioctl has its own verdicts');
    assert.ok(policy.refusedIoctls.includes(TIOCSTI) && policy.refusedIoctls.includes(TIOCSETD), 'no typing into a terminal, no line discipline');
    assert.equal(policy.fixedRlimit, RLIMIT_CORE, 'the core dump limit is fixed');
    assert.ok(policy.prlimitNr !== 0 && !policy.refused.includes(policy.prlimitNr));
    // Calls newer than the policy are unknown to it: ENOSYS from 470 on; open_tree_attr (467, the
    // new mount API), among those reviewed, is refused as open_tree is.
    assert.equal(policy.firstUnreviewedNr, 470);
    assert.ok(policy.refused.includes(467), 'open_tree_attr');
  });

  it('gives every system call number the policy\'s verdict', () => {
    const wrong: string[] = [];
    const check = (data: SeccompData) => {
      const got = verdict(policy.filter, data);
      const want = expected(data);
      if (got !== want) wrong.push(`nr ${data.nr} arch 0x${data.arch.toString(16)} args 0x${data.arg0.toString(16)} 0x${(data.arg1 ?? 0).toString(16)} 0x${(data.arg2 ?? 0).toString(16)}: ${name(got)}, policy ${name(want)}`);
    };
    for (let nr = 0; nr < 1024; nr++) {
      check({ nr, arch: policy.auditArch, arg0: 0 });
      check({ nr, arch: policy.auditArch, arg0: 0x7e020000 }); // every CLONE_NEW* bit and more
    }
    // clone: each namespace flag alone refused, other flags (fork's, threads') allowed.
    for (let bit = 0; bit < 32; bit++) check({ nr: policy.cloneNr, arch: policy.auditArch, arg0: (1 << bit) >>> 0 });
    // socket, socketpair: every family number (AF_MAX is 46 on 6.x), and beyond; each with
    // every protocol number a family has (IPPROTO_MAX 263, NETLINK's 32), and beyond.
    const protocols = [...Array(300).keys(), 0x10006, 0xffffffff];
    for (const nr of policy.socketNrs) {
      for (const family of [...Array(64).keys(), 0x10001, 0xffffffff]) {
        for (const arg2 of protocols) check({ nr, arch: policy.auditArch, arg0: family, arg2 });
      }
    }
    // ioctl: the refused requests, their neighbours and the common ones, on any descriptor.
    const requests = [...policy.refusedIoctls.flatMap((request) => [request - 1, request, request + 1]), 0x5401 /* TCGETS */, 0x541b /* FIONREAD */, 0x5413 /* TIOCGWINSZ */, 0, 0xffffffff];
    for (const arg1 of requests) for (const arg0 of [0, 1, 1000]) check({ nr: policy.ioctlNr, arch: policy.auditArch, arg0, arg1 });
    // setsockopt: every level a socket has (SOL_SOCKET, IPPROTO_TCP, SOL_IPV6...) and beyond, each
    // with every option number of theirs, and beyond.
    for (const arg1 of [0, SOL_SOCKET, IPPROTO_TCP, 17, 41, 263, 0x10001, 0xffffffff]) {
      for (const arg2 of [...Array(80).keys(), 0x10008, 0xffffffff]) check({ nr: policy.setsockoptNr, arch: policy.auditArch, arg0: 3, arg1, arg2 });
    }
    // setrlimit and prlimit64: every resource (RLIM_NLIMITS is 16), a new limit or none (a NULL
    // pointer, or one whose low or high word alone is 0), any pid.
    for (let resource = 0; resource < 20; resource++) {
      if (policy.setrlimitNr !== 0) check({ nr: policy.setrlimitNr, arch: policy.auditArch, arg0: resource });
      const pointers = [[0, 0], [0x1000, 0], [0, 0x7fff], [0xffffffff, 0xffffffff]] as const;
      for (const [arg2, arg2High] of pointers) {
        for (const [arg3, arg3High] of pointers) {
          for (const arg0 of [0, 1234]) check({ nr: policy.prlimitNr, arch: policy.auditArch, arg0, arg1: resource, arg2, arg2High, arg3, arg3High });
        }
      }
    }
    if (policy.x32SyscallBit !== 0) {
      for (const nr of [0, 1, 39, policy.cloneNr, ...policy.refused]) check({ nr: (policy.x32SyscallBit | nr) >>> 0, arch: policy.auditArch, arg0: 0 });
    }
    for (const arch of [0x40000003 /* i386 */, 0xc00000b7 /* aarch64 */, 0xc000003e /* x86_64 */, 0]) {
      if (arch === policy.auditArch) continue;
      for (const nr of [0, 1, policy.cloneNr, ...policy.refused]) check({ nr, arch, arg0: 0 });
    }
    assert.deepEqual(wrong, []);
  });
});
