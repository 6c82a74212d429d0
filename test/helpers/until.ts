// Polling a condition in tests that wait for something asynchronous to happen elsewhere.

/** Resolves once `condition()` holds; throws `${what} not reached in time` when it still does not
 * after `timeoutMs`. The condition may be asynchronous (a connection attempt, say). */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, pollMs = 5, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached in time (${timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
