import type { CounterIncrement, QuotaAdapter } from "@meshlet/policy";
import { Redis, type RedisOptions } from "ioredis";

/** Options of {@link createRedisQuotaAdapter}. */
export interface RedisQuotaAdapterOptions {
  /** Adapter name (default `redis`). */
  name?: string;
  /** A client you manage (it is not closed by the adapter). */
  client?: Redis;
  /** Or a `redis://host:port/db` URL; the adapter creates and closes its own client. */
  url?: string;
  /** Extra ioredis options for a client created from `url`. */
  redisOptions?: RedisOptions;
  /** Prefix of every counter key (default `meshlet:rl:`), to share a Redis with other data. */
  keyPrefix?: string;
}

/** A {@link QuotaAdapter} whose counters live in Redis; `client` is exposed for health checks. */
export interface RedisQuotaAdapter extends QuotaAdapter {
  readonly client: Redis;
}

/**
 * Rate-limit and quota counters in Redis, so N engine replicas share one limit. Each check is one
 * MULTI/EXEC round trip of `INCRBY key hits` + `EXPIRE key window NX` per counter: the fixed-window
 * scheme of envoyproxy/ratelimit (the window start is part of the key, so a counter dies with its
 * window), made atomic per check.
 *
 * A client created from `url` does not queue commands while disconnected: when Redis is down a
 * check fails at once and the engine applies the adapter's `failurePolicy` (fail-open or
 * fail-closed) instead of waiting for the timeout.
 */
export function createRedisQuotaAdapter(options: RedisQuotaAdapterOptions): RedisQuotaAdapter {
  if (!options.client && !options.url) {
    throw new TypeError(
      "createRedisQuotaAdapter: pass `client` (an ioredis Redis) or `url` (redis://host:port)",
    );
  }
  const owned = !options.client;
  const client =
    options.client ??
    new Redis(options.url as string, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: false,
      // Reconnect with capped backoff forever: Redis coming back must heal the adapter.
      retryStrategy: (times) => Math.min(times * 100, 2000),
      ...options.redisOptions,
    });
  // Errors surface per command (and so per decision); an unhandled 'error' event would crash.
  if (owned) client.on("error", () => {});
  const prefix = options.keyPrefix ?? "meshlet:rl:";
  return {
    name: options.name ?? "redis",
    kind: "quota",
    client,
    configSchema: { type: "object", additionalProperties: false, properties: {} },
    async increment(updates: readonly CounterIncrement[]): Promise<number[]> {
      if (updates.length === 0) return [];
      const tx = client.multi();
      for (const u of updates) {
        tx.incrby(prefix + u.key, u.hits);
        tx.expire(prefix + u.key, u.expireSeconds, "NX");
      }
      const results = await tx.exec();
      if (!results) throw new Error("redis transaction was aborted");
      return updates.map((u, i) => {
        const [err, value] = results[i * 2] as [Error | null, unknown];
        if (err) throw new Error(`INCRBY ${prefix}${u.key} failed: ${err.message}`);
        return Number(value);
      });
    },
    async close() {
      if (owned) await client.quit().catch(() => client.disconnect());
    },
  };
}
