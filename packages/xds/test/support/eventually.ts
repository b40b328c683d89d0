/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** Give up after this long (default 30 s: a loaded 2-core CI machine is slow, not broken). */
  timeoutMs?: number;
  /** Pause between attempts (default 250 ms); attempts themselves usually take longer (they make RPCs). */
  intervalMs?: number;
}

/**
 * Retries `attempt` until it resolves without throwing, and returns its value. For conditions that
 * have no event to wait on, like "RPCs made by another process now reach backend b2": the attempt
 * makes the RPCs and asserts. On timeout the last assertion error is rethrown, so the failure says
 * what was still wrong.
 */
export async function eventually<T>(
  attempt: () => Promise<T> | T,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() + intervalMs >= deadline) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`condition still false after ${attempts} attempts in ${timeoutMs} ms: ${message}`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
