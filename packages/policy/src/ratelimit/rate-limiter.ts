import { Subject } from "rxjs";
import type { AdapterFailure, QuotaAdapter } from "../adapters/adapter.js";
import type { AdapterRegistry, RegisteredAdapter } from "../adapters/adapter-registry.js";
import type { Clock } from "../clock.js";
import { PolicyError } from "../policy-error.js";
import {
  type NormalizedDescriptor,
  normalizeRateLimitConfig,
  type RateLimitConfig,
  type RateLimitUnit,
  UNIT_SECONDS,
} from "./rate-limit-config.js";

/** One descriptor of a request: ordered key/value entries, optionally with a limit override. */
export interface DescriptorRequest {
  entries: { key: string; value: string }[];
  /** Envoy's per-descriptor override (`RateLimitDescriptor.limit`). */
  limit?: { requestsPerUnit: number; unit: RateLimitUnit };
}

/** A rate-limit question: Envoy's `RateLimitRequest` in plain form. */
export interface RateLimitCheck {
  domain: string;
  descriptors: DescriptorRequest[];
  /** Hits to add (Envoy's `hits_addend`; 0 means 1). */
  hitsAddend?: number;
}

/** The limit that applied to a descriptor. */
export interface AppliedLimit {
  name?: string;
  requestsPerUnit: number;
  unit: RateLimitUnit;
}

/** Per-descriptor outcome, mirroring Envoy's `DescriptorStatus`. */
export interface DescriptorStatus {
  code: "OK" | "OVER_LIMIT";
  /** Absent when no limit applies (or `unlimited`). */
  currentLimit?: AppliedLimit;
  limitRemaining: number;
  /** Seconds until the window resets (0 when no limit applies). */
  durationUntilResetSeconds: number;
  /** Over the limit but allowed because the descriptor is in `shadow_mode`. */
  shadowed?: boolean;
  unlimited?: boolean;
}

/** The outcome of one rate-limit check, as `decisions$` emits it. */
export interface RateLimitDecision {
  domain: string;
  overallCode: "OK" | "OVER_LIMIT";
  statuses: DescriptorStatus[];
  /** Draft-03 `RateLimit-*` headers for the most restrictive descriptor. */
  headers: Record<string, string>;
  adapterFailures: AdapterFailure[];
  time: number;
  durationMs: number;
}

/** A quota request (Mixer's quota template): take `amount` from a descriptor's limit. */
export interface QuotaRequest {
  domain: string;
  descriptor: DescriptorRequest;
  amount: number;
  /** Grant what is left (up to `amount`) instead of all-or-nothing. */
  bestEffort?: boolean;
}

/** What a quota request was granted. */
export interface QuotaGrant {
  granted: number;
  /** How long the grant's window lasts, in seconds. */
  validForSeconds: number;
  adapterFailures: AdapterFailure[];
}

interface Node {
  config: NormalizedDescriptor;
  children: Map<string, Node>;
  /** `finalKey`s with a `*`, in config order: tried when no exact key matches. */
  wildcards: { test: (kv: string) => boolean; node: Node }[];
}

interface Resolved {
  limit?: AppliedLimit;
  unlimited?: boolean;
  shadow?: boolean;
  replaces?: string[];
  /** The counter key: domain and entries, wildcard patterns in place of values under share_threshold. */
  key: string;
}

type Level = Pick<Node, "children" | "wildcards">;

/**
 * A wildcard `key_value`: `*` matches any characters (ratelimit's `share_threshold` test configs
 * use `files/*`, `/api*v1`, `svc*ep*rpc`); a trailing `*` is a prefix.
 */
function wildcardOf(finalKey: string, node: Node): Node["wildcards"] | undefined {
  const star = finalKey.indexOf("*");
  if (star < 0) return undefined;
  if (star === finalKey.length - 1) {
    const prefix = finalKey.slice(0, -1);
    return [{ test: (kv) => kv.startsWith(prefix), node }];
  }
  const re = new RegExp(
    `^${finalKey
      .split("*")
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return [{ test: (kv) => re.test(kv), node }];
}

function buildLevel(list: readonly NormalizedDescriptor[]): Level {
  const children = new Map<string, Node>();
  const wildcards: Node["wildcards"] = [];
  for (const d of list) {
    const node: Node = { config: d, ...buildLevel(d.descriptors) };
    children.set(d.finalKey, node);
    wildcards.push(...(wildcardOf(d.finalKey, node) ?? []));
  }
  return { children, wildcards };
}

/**
 * Envoy's rate-limit model, as envoyproxy/ratelimit implements it: per-domain trees of
 * descriptors, fixed windows per unit, `shadow_mode`, `unlimited` and `replaces`; counters live in
 * a {@link QuotaAdapter} (in memory by default, Redis to share limits between replicas).
 */
export class RateLimiter {
  readonly #domains = new Map<string, Level>();
  readonly #decisions = new Subject<RateLimitDecision>();
  /** Every rate-limit decision. */
  readonly decisions$ = this.#decisions.asObservable();

  constructor(
    private readonly registry: AdapterRegistry,
    private readonly store: () => RegisteredAdapter<QuotaAdapter>,
    private readonly clock: Clock,
  ) {}

  /** Replaces the whole configuration; validated first, so a bad config changes nothing. */
  setConfig(configs: readonly RateLimitConfig[]): void {
    const next = new Map<string, Level>();
    for (const c of configs) {
      const n = normalizeRateLimitConfig(c);
      if (next.has(n.domain)) {
        throw new PolicyError("invalid-rate-limit-config", `duplicate domain '${n.domain}' in config file`);
      }
      next.set(n.domain, buildLevel(n.descriptors));
    }
    this.#domains.clear();
    for (const [k, v] of next) this.#domains.set(k, v);
  }

  /**
   * envoyproxy/ratelimit's lookup (`GetLimit`): walk the entries down the tree, at each level the
   * exact `key_value`, else the first wildcard whose prefix it starts with, else the bare `key`;
   * the limit is the one on the node the last entry reaches.
   */
  #resolve(domain: string, d: DescriptorRequest): Resolved {
    let key = domain;
    for (const e of d.entries) key += `_${e.key}_${e.value}`;
    if (d.limit) {
      return { key, limit: { requestsPerUnit: d.limit.requestsPerUnit, unit: d.limit.unit } };
    }
    let level: Level | undefined = this.#domains.get(domain);
    let found: Resolved = { key };
    let shared: string | undefined;
    for (let i = 0; i < d.entries.length && level; i++) {
      const e = d.entries[i] as DescriptorRequest["entries"][number];
      const kv = `${e.key}_${e.value}`;
      let next = level.children.get(kv);
      if (!next) {
        const w = level.wildcards.find((x) => x.test(kv));
        if (w) {
          next = w.node;
          // share_threshold: every value the wildcard matches counts against one counter.
          if (w.node.config.shareThreshold) {
            shared = `${shared ?? ""}|${i}=${w.node.config.finalKey}`;
          }
        }
      }
      next ??= level.children.get(e.key);
      if (!next) break;
      const rl = next.config.limit;
      if (i === d.entries.length - 1 && rl) {
        found = {
          key: shared === undefined ? key : `${domain}${shareKey(d, shared)}`,
          ...(rl.unlimited
            ? { unlimited: true }
            : {
                limit: {
                  requestsPerUnit: rl.requestsPerUnit,
                  unit: rl.unit as RateLimitUnit,
                  ...(rl.name !== undefined && { name: rl.name }),
                },
              }),
          ...(next.config.shadowMode && { shadow: true }),
          ...(rl.replaces.length > 0 && { replaces: rl.replaces }),
        };
      }
      level = next.children.size > 0 ? next : undefined;
    }
    return found;
  }

  /**
   * Resolves limits for all descriptors and applies `replaces` (ratelimit's service: replaces of
   * the counted limits drop the limits of those names; an unlimited limit replaces nothing).
   */
  #limits(check: RateLimitCheck): Resolved[] {
    const resolved = check.descriptors.map((d) => this.#resolve(check.domain, d));
    const replaced = new Set(resolved.flatMap((r) => (r.limit ? (r.replaces ?? []) : [])));
    return resolved.map((r) =>
      r.limit?.name !== undefined && replaced.has(r.limit.name) ? { key: r.key } : r,
    );
  }

  /**
   * Answers Envoy's `ShouldRateLimit`: counts `hitsAddend` against every descriptor's limit and
   * reports per-descriptor status, remaining and reset. Never throws on backend errors: the
   * backend's failure policy decides (fail-open ⇒ OK, fail-closed ⇒ OVER_LIMIT).
   */
  async shouldRateLimit(check: RateLimitCheck): Promise<RateLimitDecision> {
    const started = performance.now();
    const now = this.clock.now();
    const hits = check.hitsAddend && check.hitsAddend > 0 ? check.hitsAddend : 1;
    const limits = this.#limits(check);
    const counted = limits
      .map((r, i) => ({ r, i }))
      .filter((x): x is { r: Resolved & { limit: AppliedLimit }; i: number } => x.r.limit !== undefined);
    const windows = counted.map(({ r }) => {
      const unitMs = UNIT_SECONDS[r.limit.unit] * 1000;
      const start = Math.floor(now / unitMs) * unitMs;
      return { key: `${r.key}_${start / 1000}`, reset: Math.ceil((start + unitMs - now) / 1000), unitMs };
    });
    const failures: AdapterFailure[] = [];
    let values: number[] | undefined;
    if (counted.length > 0) {
      const reg = this.store();
      const result = await this.registry.call(reg, (signal) =>
        reg.adapter.increment(
          windows.map((w) => ({ key: w.key, hits, expireSeconds: w.unitMs / 1000 })),
          { signal },
        ),
      );
      if (result.ok) values = result.value;
      else failures.push(result.failure);
    }
    const failClosed = failures.some((f) => f.failurePolicy === "fail-closed");
    const statuses: DescriptorStatus[] = limits.map((r) => {
      if (r.unlimited)
        return { code: "OK", limitRemaining: 0xffffffff, durationUntilResetSeconds: 0, unlimited: true };
      if (!r.limit) return { code: "OK", limitRemaining: 0, durationUntilResetSeconds: 0 };
      const idx = counted.findIndex((c) => c.r === r);
      const w = windows[idx]!;
      if (!values) {
        return {
          code: failClosed ? "OVER_LIMIT" : "OK",
          currentLimit: r.limit,
          limitRemaining: 0,
          durationUntilResetSeconds: w.reset,
        };
      }
      const after = values[idx]!;
      const over = after > r.limit.requestsPerUnit;
      return {
        code: over && !r.shadow ? "OVER_LIMIT" : "OK",
        currentLimit: r.limit,
        limitRemaining: Math.max(0, r.limit.requestsPerUnit - after),
        durationUntilResetSeconds: w.reset,
        ...(over && r.shadow && { shadowed: true }),
      };
    });
    const decision: RateLimitDecision = {
      domain: check.domain,
      overallCode: statuses.some((s) => s.code === "OVER_LIMIT") ? "OVER_LIMIT" : "OK",
      statuses,
      headers: rateLimitHeaders(statuses),
      adapterFailures: failures,
      time: now,
      durationMs: performance.now() - started,
    };
    this.#decisions.next(decision);
    return decision;
  }

  /**
   * Allocates quota from a descriptor's limit (Mixer's quota semantics): all-or-nothing by
   * default, or as much as is left with `bestEffort`. What is not granted is given back to the
   * counter. A descriptor with no limit (or `unlimited`) grants everything.
   */
  async allocateQuota(req: QuotaRequest): Promise<QuotaGrant> {
    if (!Number.isInteger(req.amount) || req.amount <= 0) {
      throw new PolicyError(
        "invalid-attributes",
        `quota amount must be a positive integer, got ${req.amount}`,
      );
    }
    const [r] = this.#limits({ domain: req.domain, descriptors: [req.descriptor] });
    if (!r?.limit) return { granted: req.amount, validForSeconds: 0, adapterFailures: [] };
    const now = this.clock.now();
    const unitMs = UNIT_SECONDS[r.limit.unit] * 1000;
    const start = Math.floor(now / unitMs) * unitMs;
    const key = `${r.key}_${start / 1000}`;
    const validForSeconds = Math.ceil((start + unitMs - now) / 1000);
    const reg = this.store();
    const inc = (hits: number) =>
      this.registry.call(reg, (signal) =>
        reg.adapter.increment([{ key, hits, expireSeconds: unitMs / 1000 }], { signal }),
      );
    const result = await inc(req.amount);
    if (!result.ok) {
      const open = result.failure.failurePolicy === "fail-open";
      return { granted: open ? req.amount : 0, validForSeconds, adapterFailures: [result.failure] };
    }
    const after = result.value[0]!;
    const before = after - req.amount;
    const available = Math.max(0, r.limit.requestsPerUnit - before);
    const granted =
      after <= r.limit.requestsPerUnit ? req.amount : req.bestEffort ? Math.min(req.amount, available) : 0;
    const failures: AdapterFailure[] = [];
    if (granted < req.amount) {
      const refund = await inc(granted - req.amount);
      if (!refund.ok) failures.push(refund.failure);
    }
    return { granted, validForSeconds, adapterFailures: failures };
  }

  /** Completes `decisions$`. */
  close(): void {
    this.#decisions.complete();
  }
}

/** The counter key with share_threshold wildcard patterns in place of the matched values. */
function shareKey(d: DescriptorRequest, shared: string): string {
  const patterns = new Map(
    shared
      .split("|")
      .filter(Boolean)
      .map((x) => {
        const eq = x.indexOf("=");
        return [Number(x.slice(0, eq)), x.slice(eq + 1)] as const;
      }),
  );
  let key = "";
  d.entries.forEach((e, i) => {
    key += `_${patterns.get(i) ?? `${e.key}_${e.value}`}`;
  });
  return key;
}

/** Draft-03 RateLimit headers from the descriptor with the least remaining (as envoyproxy/ratelimit). */
function rateLimitHeaders(statuses: DescriptorStatus[]): Record<string, string> {
  let min: DescriptorStatus | undefined;
  for (const s of statuses) {
    if (!s.currentLimit) continue;
    if (!min || s.limitRemaining < min.limitRemaining) min = s;
  }
  if (!min?.currentLimit) return {};
  return {
    "ratelimit-limit": `${min.currentLimit.requestsPerUnit}, ${min.currentLimit.requestsPerUnit};w=${UNIT_SECONDS[min.currentLimit.unit]}`,
    "ratelimit-remaining": String(min.limitRemaining),
    "ratelimit-reset": String(min.durationUntilResetSeconds),
  };
}
