// A runtime's variants (images/README.md, "Variants"): another way to run its programs, written as
// data in its file (Java's `piston`: no javac, the JDK's source launcher), that a job asks for by
// name (JobRequest.variant). What runs a job, the worker's executor and the API's check of it
// alike, takes the runtime as its variant makes it: a Runtime whose stages are the variant's.
import type { Runtime } from './types.js';

/** Each runtime's variants as runtimes, made once: the same object for the same runtime and name,
 * so that what is derived from a runtime once and kept by its identity (check.ts's defaults) is
 * derived once per variant too. */
const madeVariants = new WeakMap<Runtime, Map<string, Runtime>>();

/** The runtime as its variant `name` runs it: the variant's run, and its compile or none, in place
 * of the runtime's own; everything else (image, env, limits, files) the runtime's. Undefined when
 * the runtime has no variant of that name (only its own: `constructor` is no variant). */
export function variantOf(runtime: Runtime, name: string): Runtime | undefined {
  const variants = runtime.variants;
  if (variants === undefined || typeof name !== 'string' || !Object.hasOwn(variants, name)) return undefined;
  let made = madeVariants.get(runtime);
  if (made === undefined) madeVariants.set(runtime, (made = new Map()));
  let varied = made.get(name);
  if (varied === undefined) {
    const { compile: _compile, variants: _variants, ...shared } = runtime;
    const variant = variants[name]!;
    varied = variant.compile ? { ...shared, compile: variant.compile, run: variant.run } : { ...shared, run: variant.run };
    made.set(name, varied);
  }
  return varied;
}

/** The runtime's variants as runtimes (variantOf), in the order its file lists them. */
export function variantsOf(runtime: Runtime): Runtime[] {
  return Object.keys(runtime.variants ?? {}).map((name) => variantOf(runtime, name)!);
}

/** Every way the runtimes run jobs: each runtime, then each of its variants as a runtime. What
 * prepares for a stage (the pool's start-up paths, a pre-warmed container's limits) prepares for
 * the variants' stages too. */
export function withVariants(runtimes: readonly Runtime[]): Runtime[] {
  return runtimes.flatMap((runtime) => [runtime, ...variantsOf(runtime)]);
}
