// What the host charges for a page fault, printed in the heading of the load test and of the
// bench:pool, bench:executor, bench:engine and bench:overlay benchmarks. A process start (fork or
// clone, exec, the loader's mmaps, the first use of its heap and stack) takes hundreds of faults on
// fresh pages, and what one costs is set by the host under the VM more than by the guest: on the
// development VM it was 9.5–9.6 µs in bench:pool on 2026-12-05, whose bare fork + exec of
// /bin/true took 2.1–2.5 ms p50 and bare python hello 20–24 ms; the same VM on quiet evenings ran
// them in 0.36 and 7.7 ms. Figures from such a host differ from a quiet host's by more than most
// changes under test; this line says which kind of host a run had.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { MiB, msToUs } from '../../src/units.js';

const PAGE_BYTES = 4096;
const PROBE_BYTES = 32 * MiB;
const ROUNDS = 3;

/** The median over a few rounds of one fresh anonymous page's first write, less the cost of
 * writing the same page again: the fault (and the hypervisor's part in it) alone, in µs. */
export function pageFaultUs(): number {
  const pages = PROBE_BYTES / PAGE_BYTES;
  const perPage: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // allocUnsafeSlow: memory straight from the allocator, not yet touched (a large block is a
    // fresh mmap), so the first fill faults in every page.
    const block = Buffer.allocUnsafeSlow(PROBE_BYTES);
    const first = performance.now();
    block.fill(1);
    const faulted = performance.now() - first;
    const again = performance.now();
    block.fill(2);
    const rewritten = performance.now() - again;
    perPage.push(msToUs(faulted - rewritten) / pages);
  }
  return perPage.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
}

/** The kernel's transparent huge page mode ("always", "madvise", "never"), or undefined. */
function transparentHugePages(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** "page fault 9.8 µs", for a benchmark's heading. Where the kernel backs any large anonymous
 * mapping with 2 MiB pages (transparent huge pages "always"), the probe's 32 MiB takes 16 faults,
 * not 8192, and its figure is a share of one; the note says so rather than pass it off as a
 * fault's cost (the programs' own small mappings still fault 4 KiB at a time). */
export function pageFaultNote(): string {
  const note = `page fault ${pageFaultUs().toFixed(2)} µs (a fresh page's first write, loadtest/service/host.ts)`;
  return transparentHugePages() === 'always' ? `${note.slice(0, -1)}; transparent huge pages "always": a 4 KiB share of a 2 MiB page's fault)` : note;
}

/** The load average's three figures, "0.52 0.61 0.70". */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** "2 CPUs, kernel 6.18.44, load 0.52 0.61 0.70, page fault 9.8 µs (...)": the host, for a
 * benchmark's heading. */
export function hostNote(): string {
  return `${os.cpus().length} CPUs, kernel ${os.release()}, load ${loadAverage()}, ${pageFaultNote()}`;
}
