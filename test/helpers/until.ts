// Polling a condition in tests that wait for something asynchronous to happen elsewhere.

/** Resolves once `condition()` holds; throws when it still does not after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 5000, pollMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
