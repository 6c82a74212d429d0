// The executor's pool keys. A pre-warmed container carries its stage's limits (cgroup limits,
// /tmp's size), and a start with other limits writes them on the job's path (a /tmp resize wakes
// init before the program). So a runtime's slots are kept per image and per stage: runs under the
// image's name, compiles under `<image>:compile` (no image name has a colon). The runs of an
// interactive test (an interactor and its program, connected by pipes) and a live job's run (its
// stdin, stdout and stderr pipes to the worker) take slots under `<image>:connected`: roots alone,
// since their containers are made with the pipes, when the run starts (Sandbox.runConnected,
// runStreaming), and a pre-warmed one would be torn down unused. /metrics shows
// the pool's figures under these keys. A key's slots are prepared for every stage that runs on
// them: their roots get the start-up paths of all those stages looked up (startupPathsBySlotKey),
// a runtime variant's stages among them (a variant runs on its runtime's image).
import type { Runtime } from '../images/types.js';
import { withVariants } from '../images/variants.js';

export type Stage = 'run' | 'compile' | 'connected';

/** The most pool slots one job holds at once (SubmissionExecutor), each with a sandbox uid of its
 * own (src/pool/uid-leases.ts): an interactive test's two runs (its program's and its
 * interactor's, `connected`) while the program's compile and the interactor's are held for the
 * tests after it. A checked job holds up to three (a run or its checker's beside the two
 * compiles). The worker's start warns of more jobs at once than the machine's uids give this many
 * each, and the default jobs at once stay within them (config.ts checkSandboxUids). */
export const MOST_SLOTS_PER_JOB = 4;

/** The slots a compiled runtime's job without a judge program holds at once: its compile's, held
 * for its runs, beside a run's. An interpreted runtime's such job holds one (its run's), so this is
 * not every job's least, but that of the jobs of the compiled languages (C, C++, Java, Go, Rust,
 * ...): the worker's start refuses more jobs at once than the machine's uids give this many each,
 * since a load of such jobs would then fail `no_sandbox_uid` (config.ts checkSandboxUids). */
export const COMPILED_JOB_SLOTS = 2;

const SUFFIXES: Record<Stage, string> = { run: '', compile: ':compile', connected: ':connected' };

export function slotKey(image: string, stage: Stage): string {
  return `${image}${SUFFIXES[stage]}`;
}

export function imageOfSlotKey(key: string): string {
  const colon = key.indexOf(':');
  return colon === -1 ? key : key.slice(0, colon);
}

/** Whether a key's slots get a pre-warmed container: all but the connected runs'. */
export function slotHoldsContainer(key: string): boolean {
  return !key.endsWith(SUFFIXES.connected);
}

/** The keys whose slots get a pre-warmed container for `runtimes` (their variants too): each
 * image's runs, and its compiles where a runtime compiles on it. */
export function containerSlotKeys(runtimes: readonly Runtime[]): Set<string> {
  const keys = new Set<string>();
  for (const runtime of withVariants(runtimes)) {
    keys.add(slotKey(runtime.image, 'run'));
    if (runtime.compile) keys.add(slotKey(runtime.image, 'compile'));
  }
  return keys;
}

/** Each slot key's start-up paths (Runtime's startupPaths): those of every runtime whose stage
 * runs on that key's slots, and of every variant's (withVariants), each once, in the runtimes'
 * order. Keys without any are absent. */
export function startupPathsBySlotKey(runtimes: readonly Runtime[]): Map<string, string[]> {
  const byKey = new Map<string, Set<string>>();
  const add = (key: string, paths: readonly string[] | undefined) => {
    if (!paths || paths.length === 0) return;
    let set = byKey.get(key);
    if (!set) byKey.set(key, (set = new Set()));
    for (const path of paths) set.add(path);
  };
  for (const runtime of withVariants(runtimes)) {
    add(slotKey(runtime.image, 'run'), runtime.run.startupPaths);
    add(slotKey(runtime.image, 'connected'), runtime.run.startupPaths);
    if (runtime.compile) add(slotKey(runtime.image, 'compile'), runtime.compile.startupPaths);
  }
  return new Map([...byKey].map(([key, set]) => [key, [...set]]));
}
