/**
 * Polls `check` until it returns a value (not undefined), or the deadline
 * passes (then undefined). Nodes on a loaded machine take a variable time to
 * start and elect, so every wait here is for a condition, never for a fixed time.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs, intervalMs = 100 }: { readonly timeoutMs: number; readonly intervalMs?: number },
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
