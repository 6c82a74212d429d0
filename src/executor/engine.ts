// How the executor runs one stage in a pool slot. Two ways, chosen by whether the slot holds a
// pre-warmed container: start it (namespaces, cgroup and init already made), or have the engine
// build a container on the slot's root now. Everything the executor knows about
// the engine's API is in this file.
import type { Limits, RunResult, StreamingIo, StreamingRun, TerminalSize } from '../sandbox/types.js';
import type { PoolSlot } from '../pool/index.js';

/** One stage's program, as the executor decides it. */
export interface StageSpec {
  argv: string[];
  env: Record<string, string>;
  stdin: Uint8Array | string;
  limits: Limits;
  signal?: AbortSignal;
  /** StartSpec.backgroundAfterCpuMs. */
  backgroundAfterCpuMs?: number;
  /** StartSpec.stderrToStdout. */
  stderrToStdout?: boolean;
  /** ContainerSpec.ignoreSigpipe: for runConnected's stages only, whose containers it prepares
   * (a pre-warmed container was prepared without it). */
  ignoreSigpipe?: boolean;
}

export interface StageRunner<C> {
  run(slot: PoolSlot<C>, stage: StageSpec): Promise<RunResult>;
  /** Two stages at once on two slots' roots, each one's stdout the other's stdin
   * (Sandbox.runConnected: fresh containers, made with the pipes; the slots, taken under a
   * `connected` key, are roots alone). The stages' stdin must be empty. */
  runConnected(first: PoolSlot<C>, firstStage: StageSpec, second: PoolSlot<C>, secondStage: StageSpec): Promise<[RunResult, RunResult]>;
  /** A stage on a slot's root (a `connected` key's: the container is made with the pipes) whose
   * stdin, stdout and stderr are streams (Sandbox.runStreaming), or one terminal of `terminal`'s
   * size; the stage's stdin must be empty. */
  runStreaming(slot: PoolSlot<C>, stage: StageSpec, io: StreamingIo, terminal?: TerminalSize): StreamingRun;
}
