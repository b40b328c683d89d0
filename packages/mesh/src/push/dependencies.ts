import { formatResourceKey, type ResourceKey } from "@meshlet/config";

/**
 * Kinds whose resources in the root namespace or the proxy's namespace may apply to a proxy
 * (Istio `clusterScopedKnownConfigTypes`, pilot/pkg/model/sidecar.go).
 */
const NAMESPACE_SCOPED_KINDS: ReadonlySet<string> = new Set([
  "EnvoyFilter",
  "AuthorizationPolicy",
  "RequestAuthentication",
  "PeerAuthentication",
  "WasmPlugin",
  "Telemetry",
]);

/**
 * Kinds tracked by name in a proxy's scope (Istio `sidecarScopedKnownConfigTypes`) plus the
 * registry and gateway kinds meshlet tracks the same way.
 */
const TRACKED_KINDS: ReadonlySet<string> = new Set([
  "ServiceEntry",
  "VirtualService",
  "DestinationRule",
  "Sidecar",
  "Service",
  "Gateway",
  "Secret",
  "WorkloadEntry",
  "Pod",
]);

/** Kinds that only shape the registry; their effect shows as changed services (`Registry.changedServices`). */
const REGISTRY_KINDS: ReadonlySet<string> = new Set(["EndpointSlice", "Namespace", "WorkloadGroup", "Node"]);

/**
 * What a proxy's generated config was computed from, so a controller can push only the proxies a
 * change affects (Istio `SidecarScope.DependsOnConfig`). Check a change against the dependencies
 * computed from the push context *before* and *after* it: a new VirtualService is only in the new
 * scope, a deleted one only in the old.
 */
export interface ProxyDependencies {
  /** Config keys (`Kind/namespace/name`) the proxy's config was computed from. */
  readonly configs: ReadonlySet<string>;
  /** Service keys (`namespace/hostname`) the proxy can reach or serves. */
  readonly services: ReadonlySet<string>;
  /** The proxy's namespace and the root namespace: policies there may apply to it. */
  readonly namespaces: ReadonlySet<string>;
  /**
   * Whether a change to `key` may change this proxy's config: policy kinds by namespace; tracked
   * kinds by name; registry-only kinds never directly (see {@link ProxyDependencies.dependsOnService});
   * unknown kinds always, to stay safe.
   */
  dependsOn(key: ResourceKey): boolean;
  /** Whether a change of the service `namespace/hostname` (definition or endpoints) affects the proxy. */
  dependsOnService(key: string): boolean;
}

/**
 * Builds a {@link ProxyDependencies} from parts: the (shared, per-scope) sets and the proxy's own
 * additions. Lookups check the parts; the unions are only built when `configs`/`services` are read.
 */
export function proxyDependencies(
  configParts: readonly ReadonlySet<string>[],
  serviceParts: readonly ReadonlySet<string>[],
  namespaces: ReadonlySet<string>,
): ProxyDependencies {
  let configs: ReadonlySet<string> | undefined;
  let services: ReadonlySet<string> | undefined;
  const union = (parts: readonly ReadonlySet<string>[]) =>
    parts.length === 1 ? (parts[0] as ReadonlySet<string>) : new Set(parts.flatMap((p) => [...p]));
  return {
    get configs() {
      configs ??= union(configParts);
      return configs;
    },
    get services() {
      services ??= union(serviceParts);
      return services;
    },
    namespaces,
    dependsOn(key: ResourceKey): boolean {
      if (NAMESPACE_SCOPED_KINDS.has(key.kind)) return namespaces.has(key.namespace);
      if (TRACKED_KINDS.has(key.kind)) {
        const k = formatResourceKey(key);
        return configParts.some((p) => p.has(k));
      }
      if (REGISTRY_KINDS.has(key.kind)) return false;
      return true;
    },
    dependsOnService(key: string): boolean {
      return serviceParts.some((p) => p.has(key));
    },
  };
}
