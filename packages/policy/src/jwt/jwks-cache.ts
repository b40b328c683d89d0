import { createLocalJWKSet, type JSONWebKeySet } from "jose";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import { PolicyError } from "../policy-error.js";

/** A `fetch`-compatible function, injected so tests and proxies can supply their own. */
export type FetchLike = (
  url: string,
  init?: { signal?: AbortSignal },
) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}>;

/** Options of {@link JwksCache}. */
export interface JwksCacheOptions {
  clock: Clock;
  logger: Logger;
  fetch?: FetchLike;
  /** How long fetched keys are used before a refresh (default 20 min, Istio's default). */
  refreshIntervalMs?: number;
  /** Minimum time between two fetches of one URI after a failure or unknown `kid` (default 30 s). */
  cooldownMs?: number;
  /** Per-fetch timeout (default 5 s). */
  timeoutMs?: number;
}

interface Entry {
  keys?: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
  lastAttempt: number;
  inflight?: Promise<void>;
  lastError?: unknown;
}

/**
 * Fetches JWKS documents by URI, caches them, and refreshes them in the background of requests.
 * A failed fetch keeps the last good keys (and is retried after a cooldown); with no good keys a
 * token cannot be verified, so it is rejected, but the engine keeps serving.
 */
export class JwksCache {
  readonly #entries = new Map<string, Entry>();
  readonly #opts: Required<Omit<JwksCacheOptions, "fetch">> & { fetch: FetchLike };

  constructor(options: JwksCacheOptions) {
    this.#opts = {
      refreshIntervalMs: 20 * 60_000,
      cooldownMs: 30_000,
      timeoutMs: 5_000,
      fetch: options.fetch ?? (globalThis.fetch as unknown as FetchLike),
      ...options,
    } as Required<Omit<JwksCacheOptions, "fetch">> & { fetch: FetchLike };
  }

  /**
   * The key set for `uri`: fetched on first use, refreshed when older than the refresh interval
   * or when `forceRefresh` (an unknown `kid`) and the cooldown has passed.
   * @throws PolicyError `jwks-fetch-failed` when no keys were ever fetched.
   */
  async get(uri: string, forceRefresh = false): Promise<ReturnType<typeof createLocalJWKSet>> {
    const now = this.#opts.clock.now();
    let entry = this.#entries.get(uri);
    if (!entry) {
      entry = { fetchedAt: 0, lastAttempt: Number.NEGATIVE_INFINITY };
      this.#entries.set(uri, entry);
    }
    const expired = entry.keys !== undefined && now - entry.fetchedAt >= this.#opts.refreshIntervalMs;
    // After a failed fetch or a forced refresh, wait out the cooldown: a JWKS endpoint that is down
    // is not hammered by every request, and requests fail fast meanwhile.
    const cooled = now - entry.lastAttempt >= this.#opts.cooldownMs;
    if (expired && !forceRefresh) {
      void this.#refresh(uri, entry); // serve the cached keys while refreshing
    } else if ((entry.keys === undefined || forceRefresh) && cooled) {
      await this.#refresh(uri, entry);
    } else if (entry.inflight) {
      await entry.inflight;
    }
    if (!entry.keys) {
      throw new PolicyError("jwks-fetch-failed", `no keys for JWKS ${uri}: the fetch failed`, {
        cause: entry.lastError,
      });
    }
    return entry.keys;
  }

  #refresh(uri: string, entry: Entry): Promise<void> {
    if (entry.inflight) return entry.inflight;
    entry.lastAttempt = this.#opts.clock.now();
    entry.inflight = (async () => {
      try {
        const res = await this.#opts.fetch(uri, { signal: AbortSignal.timeout(this.#opts.timeoutMs) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as JSONWebKeySet;
        if (!body || !Array.isArray(body.keys)) throw new Error("response is not a JWKS (no keys array)");
        entry.keys = createLocalJWKSet(body);
        entry.fetchedAt = this.#opts.clock.now();
        entry.lastError = undefined;
        this.#opts.logger.debug(`fetched JWKS ${uri}`, { uri, keys: body.keys.length });
      } catch (e) {
        entry.lastError = e;
        this.#opts.logger.warn(`fetching JWKS ${uri} failed; keeping the last good keys`, {
          uri,
          error: e instanceof Error ? e.message : String(e),
        });
      } finally {
        entry.inflight = undefined;
      }
    })();
    return entry.inflight;
  }
}
