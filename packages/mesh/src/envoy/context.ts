import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { ResourceKey } from "@meshlet/config";
import type { Service } from "../model/service.js";
import type { Proxy } from "../proxy/proxy.js";
import type { MeshConfig } from "../push/mesh-config.js";
import type { PushContext } from "../push/push-context.js";

/**
 * Something the Envoy generators left out or changed because the config cannot be expressed (or
 * would be rejected by Envoy), with the config object to blame. The generated config still fails
 * cleanly; this says why.
 */
export interface EnvoyGeneratorWarning {
  /** Stable code: `unknown-provider`, `unsupported-policy`, `missing-secret`, `server-certificate-files`… */
  readonly code: string;
  readonly message: string;
  readonly source?: ResourceKey;
}

/**
 * A global rate limit attached to workloads (Envoy's `envoy.filters.http.ratelimit`, as Istio's
 * rate-limit task configures it with an EnvoyFilter: istio.io docs/tasks/policy-enforcement/rate-limit).
 * Istio has no rate-limit API; meshlet takes the same settings directly.
 */
export interface RateLimitBinding {
  /** Workloads it applies to: a namespace and labels; all workloads of the namespace without labels. */
  readonly namespace?: string;
  readonly selector?: Readonly<Record<string, string>>;
  /** Apply on sidecars' inbound HTTP, on gateways, or both (default both). */
  readonly on?: "sidecar" | "gateway" | "both";
  /** The rate-limit service domain (`domain` in envoyproxy/ratelimit config). */
  readonly domain: string;
  /** Descriptor actions, each a request header → descriptor key, or a fixed `genericKey`. */
  readonly actions: ReadonlyArray<
    | { readonly requestHeader: string; readonly descriptorKey: string }
    | { readonly genericKey: string; readonly descriptorKey?: string }
    | { readonly remoteAddress: true }
  >;
  /** Deny when the service cannot be reached (default false: allow, as Envoy's default). */
  readonly failureModeDeny?: boolean;
  /** Per-call timeout (default Envoy's 20ms is too short for most setups: meshlet defaults to `1s`). */
  readonly timeout?: string;
}

/** Where an external gRPC service (rate limit, ext_authz) is reached. */
export interface ServiceRef {
  /** A service host in the registry (`ratelimit.default.svc.cluster.local`) or an IP address. */
  readonly host: string;
  readonly port: number;
}

/** Options of the Envoy generators. */
export interface EnvoyGeneratorOptions {
  /** Global rate limits, enforced through `RateLimitServer` at {@link rateLimitService}. */
  readonly rateLimits?: readonly RateLimitBinding[];
  /** Where the rate-limit service listens (`RateLimitServer`); needed when `rateLimits` is set. */
  readonly rateLimitService?: ServiceRef;
  /**
   * Whether a Secret exists (Gateway `credentialName`); default: a `Secret` in the snapshot. Only
   * used to report, the generated SDS reference is the same either way.
   */
  readonly secretExists?: (namespace: string, name: string) => boolean;
}

/** State shared by one generation for one proxy. */
export interface BuildContext {
  readonly proxy: Proxy;
  readonly push: PushContext;
  readonly mesh: MeshConfig;
  readonly options: EnvoyGeneratorOptions;
  /** The proxy's labels as config selects on them (registry first, then node metadata). */
  readonly labels: Readonly<Record<string, string>>;
  readonly warnings: EnvoyGeneratorWarning[];
  /**
   * Clusters the generated listeners reference beyond the service clusters (ext_authz, rate limit,
   * tracing and log collectors reached by IP), by name.
   */
  readonly extraClusters: Map<string, Cluster>;
  /** Services referenced by filters (ext_authz, collectors): their clusters must exist. */
  readonly referencedServices: Map<string, { service: Service; port: number }>;
}

/** A fresh context for one generation. */
export function buildContext(proxy: Proxy, push: PushContext, options: EnvoyGeneratorOptions): BuildContext {
  return {
    proxy,
    push,
    mesh: push.mesh,
    options,
    labels: push.proxyLabels(proxy),
    warnings: [],
    extraClusters: new Map(),
    referencedServices: new Map(),
  };
}

interface Recorded<T> {
  readonly value: T;
  readonly warnings: readonly EnvoyGeneratorWarning[];
  readonly extraClusters: ReadonlyMap<string, Cluster>;
  readonly referencedServices: ReadonlyMap<string, { service: Service; port: number }>;
}

/**
 * `build(ctx)`, built once per push for every proxy whose build has the same `key` (which must name
 * everything `build` reads of the proxy), and shared: the same message objects go to each of them.
 * What `build` adds to the context (warnings, extra clusters, referenced services) is recorded and
 * added to each proxy's context in turn.
 */
export function sharedBuild<T>(
  ctx: BuildContext,
  kind: symbol,
  key: string,
  build: (ctx: BuildContext) => T,
): T {
  const cache = ctx.push.shared(kind, () => new Map<string, Recorded<T>>());
  let entry = cache.get(key);
  if (entry === undefined) {
    const own: BuildContext = {
      ...ctx,
      warnings: [],
      extraClusters: new Map(),
      referencedServices: new Map(),
    };
    const value = build(own);
    entry = {
      value,
      warnings: own.warnings,
      extraClusters: own.extraClusters,
      referencedServices: own.referencedServices,
    };
    cache.set(key, entry);
  }
  ctx.warnings.push(...entry.warnings);
  for (const [name, cluster] of entry.extraClusters)
    if (!ctx.extraClusters.has(name)) ctx.extraClusters.set(name, cluster);
  for (const [name, ref] of entry.referencedServices) ctx.referencedServices.set(name, ref);
  return entry.value;
}
