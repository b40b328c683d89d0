import type { CounterIncrement, QuotaAdapter } from "../adapters/adapter.js";
import { type Clock, systemClock } from "../clock.js";

/**
 * In-process counters for rate limits and quota: the default backend, exact for one replica.
 * Counters expire with their window (checked lazily and swept every 10,000 increments).
 */
export function createMemoryQuotaAdapter(options: { name?: string; clock?: Clock } = {}): QuotaAdapter {
  const clock = options.clock ?? systemClock;
  const counters = new Map<string, { value: number; expiresAt: number }>();
  let ops = 0;
  return {
    name: options.name ?? "memory",
    kind: "quota",
    async increment(updates: readonly CounterIncrement[]): Promise<number[]> {
      const now = clock.now();
      if (++ops % 10_000 === 0) {
        for (const [k, c] of counters) if (c.expiresAt <= now) counters.delete(k);
      }
      return updates.map((u) => {
        let c = counters.get(u.key);
        if (!c || c.expiresAt <= now) {
          c = { value: 0, expiresAt: now + u.expireSeconds * 1000 };
          counters.set(u.key, c);
        }
        c.value += u.hits;
        return c.value;
      });
    },
    close() {
      counters.clear();
    },
  };
}
