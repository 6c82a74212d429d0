// The limit placeholders of a runtime file (images/README.md, "Runtimes", "Limit placeholders"): where a stage's argv
// or the runtime's env names the limits the stage runs with, which the executor fills in per stage
// (src/executor/argv.ts, expandLimits). A runtime whose garbage collector sizes its heap from the
// machine's RAM cannot learn the limit itself (a container sees no cgroup files:
// docs/theory-of-operation.md), so its file tells it: `-Xmx{memoryMiB:75%}m`,
// `GOMEMLIMIT={memoryBytes:90%}`; one whose stack is its own, not the process's (a JVM's threads,
// V8's and Ruby's limits), is told the stack limit: `-Xss{stackKiB}k`. Here: the grammar, which
// the loader checks and the executor expands by.

/** `{memoryBytes}` and `{memoryMiB}` (the stage's memory limit, MiB rounded down), `{stackBytes}`
 * and `{stackKiB}` (its stack limit, KiB rounded down), each with a whole percentage of it or not
 * (`{memoryMiB:75%}`: 1-100, rounded down, at least 1); `{cpuCores}` (its CPU limit in whole
 * cores, rounded up: a thread count). Groups: the sized limit and its unit (absent for
 * `{cpuCores}`), the percentage. */
export const LIMIT_PLACEHOLDER = /\{(?:(memoryBytes|memoryMiB|stackBytes|stackKiB)(?::([1-9][0-9]?|100)%)?|cpuCores)\}/g;

/** Whether `text` names a limit placeholder anywhere (`search` ignores the pattern's lastIndex). */
export function namesLimit(text: string): boolean {
  return text.search(LIMIT_PLACEHOLDER) !== -1;
}

/** Anything written as a placeholder (`{name}` or `{name:...}`, a name in our lower camel case):
 * checked against the placeholders there are, so that a misspelt one (`{memoryMib}`) is refused
 * when the file loads rather than given to a program as it is. A shell's `${name}` is the
 * shell's. */
const PLACEHOLDER_LIKE = /(?<!\$)\{[a-z][A-Za-z0-9]*(?::[^{}]*)?\}/g;

/** Whether `text` is one limit placeholder and nothing else. */
function isLimitPlaceholder(text: string): boolean {
  return new RegExp(`^(?:${LIMIT_PLACEHOLDER.source})$`).test(text);
}

/** Why an argv element or env value of a runtime file has a placeholder that is none of ours, or
 * one of the whole-element ones (`wholeElements`: `{files}`, `{entry}`, `{args}` for an argv;
 * none for env) inside other text, where it would not expand; undefined when it has none such. */
export function placeholderProblem(text: string, wholeElements: readonly string[]): string | undefined {
  if (wholeElements.includes(text)) return undefined;
  for (const [found] of text.matchAll(PLACEHOLDER_LIKE)) {
    if (isLimitPlaceholder(found)) continue;
    if (wholeElements.includes(found)) return `${found} expands only as an element of its own, not inside ${JSON.stringify(text)}`;
    return `${found} is no placeholder: a stage's limits are {memoryBytes}, {memoryMiB}, {stackBytes}, {stackKiB} (each with a whole percentage of it or not, 1-100: {memoryMiB:75%}) and {cpuCores}`;
  }
  return undefined;
}
