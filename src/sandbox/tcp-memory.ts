// A job's TCP memory (docs/theory-of-operation.md, "TCP memory"). A socket a task creates is
// charged to the task's memory cgroup, but a connection a listening socket has not yet accepted
// is made by the kernel (sk_clone_lock: "sk_memcg will be populated at accept() time") and is
// charged to no cgroup until accept(): what it queues meanwhile is the host's TCP memory
// (tcp_mem, one for the whole kernel), which no limit of the job's sees, on cgroup v1 and v2.
// Two sysctls of the container's own network namespace bound it by the job's limits: tcp_rmem's
// default (what such a connection can queue) and somaxconn (how many one listener holds); the
// seccomp filter keeps a listener's receive buffer at that default (SO_RCVBUF, SO_RCVLOWAT:
// native/src/seccomp.cc).
import fs from 'node:fs';
import { KiB } from '../units.js';
import type { Limits } from './types.js';

/** tcp_rmem's default in the container: every socket's receive buffer until the kernel's
 * autotuning grows a reading one's (charged, up to tcp_rmem's maximum), and so all that a
 * connection not yet accepted, which reads nothing, can queue: ~11-13 KiB of the host's TCP
 * memory measured each (Linux 6.18), against ~85 KiB at the kernel's default of 128 KiB. Loopback
 * transfers still reach ~1 GiB/s once autotuned; a fresh connection's first 100 KB take ~0.2 ms
 * rather than ~0.03 ms. */
export const TCP_RECEIVE_BUFFER_BYTES = 16 * KiB;

/** The kernel's own somaxconn (SOMAXCONN), the most a run gets. */
const KERNEL_SOMAXCONN = 4096;

/** The tcp_rmem the kernel starts a new network namespace with, before ours. */
const KERNEL_TCP_RMEM = [4096, 131072, 6 * 1024 * KiB] as const;

let containerRmem: string | undefined;

/** net.ipv4.tcp_rmem of every container ("min default max"): the worker's own minimum and
 * maximum (its host's tuning, which a new namespace starts with), and TCP_RECEIVE_BUFFER_BYTES
 * as the default (or the worker's, where smaller). */
export function containerTcpRmem(): string {
  if (containerRmem === undefined) {
    let [min, fallback, max] = KERNEL_TCP_RMEM as readonly number[];
    try {
      const values = fs.readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/).map(Number);
      if (values.length === 3 && values.every((v) => Number.isSafeInteger(v) && v > 0)) [min, fallback, max] = values;
    } catch {
      // No such file (a kernel without IPv4): the kernel's defaults; the write will say why.
    }
    const initial = Math.min(fallback!, TCP_RECEIVE_BUFFER_BYTES);
    containerRmem = `${Math.min(min!, initial)} ${initial} ${max}`;
  }
  return containerRmem;
}

/** net.core.somaxconn of a run: a listening socket holds at most somaxconn + 1 connections not
 * yet accepted, and a run at most pids × openFiles listening sockets, so that all it holds that
 * way is at most (somaxconn + 1) × pids × openFiles × TCP_RECEIVE_BUFFER_BYTES: half the memory
 * limit, or one connection per listener where even that is more (the least the kernel allows:
 * somaxconn 0 still queues one). 3 at the runtimes' default limits (256 MiB, 32 pids, 64 files),
 * 0 at their maximum (1 GiB, 128, 256). */
export function somaxconnFor(limits: Pick<Limits, 'memoryBytes' | 'pids' | 'openFiles'>): number {
  const perListener = Math.floor(limits.memoryBytes / 2 / (limits.pids * limits.openFiles * TCP_RECEIVE_BUFFER_BYTES));
  return Math.min(KERNEL_SOMAXCONN, Math.max(0, perListener - 1));
}
