import { labelsMatch } from "@meshlet/config";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { ProxyCapabilities } from "./capabilities.js";

// Results shared by every proxy of a push that needs the same one (Istio's xDS caches,
// istio/istio pilot/pkg/networking/core/cluster_cache.go `clusterCache`, route/route_cache.go
// `Cache`, pilot/pkg/xds/endpoints/endpoint_builder.go `EndpointBuilder` keys): the clusters of a
// service port for one DestinationRule, a load assignment for one locality, a route configuration
// for one scope. The same message object goes to every proxy, so a ResourcePool encodes it once and
// finds it again by identity. Keys name every input the result depends on besides the push context.

interface Entry<T, W> {
  readonly value: T;
  readonly warnings: readonly W[];
}

/**
 * `build`'s result for `key`, built once per push context and kind. The warnings `build` reports
 * through the sink it is given are recorded and replayed to `warn` on every use, so each proxy still
 * reports what was left out for it. The result is shared: treat it as immutable.
 */
export function sharedResult<T, W>(
  push: PushContext,
  kind: symbol,
  key: string,
  warn: ((w: W) => void) | undefined,
  build: (warn: (w: W) => void) => T,
): T {
  return lookup(
    push.shared(kind, () => new Map<string, Entry<T, W>>()),
    key,
    warn,
    build,
  );
}

/**
 * {@link sharedResult} kept across push contexts while only endpoints change
 * ({@link PushContext.carried}): `key` must name every input besides endpoints, and `anchor` is
 * what changes with the endpoints the result depends on (the registry's instance list of its
 * service, or the push context's registry for none); entries go with their anchor.
 */
export function carriedResult<T, W>(
  push: PushContext,
  kind: symbol,
  anchor: object,
  key: string,
  warn: ((w: W) => void) | undefined,
  build: (warn: (w: W) => void) => T,
): T {
  const byAnchor = push.carried(kind, () => new WeakMap<object, Map<string, Entry<T, W>>>());
  let cache = byAnchor.get(anchor);
  if (cache === undefined) {
    cache = new Map();
    byAnchor.set(anchor, cache);
  }
  return lookup(cache, key, warn, build);
}

function lookup<T, W>(
  cache: Map<string, Entry<T, W>>,
  key: string,
  warn: ((w: W) => void) | undefined,
  build: (warn: (w: W) => void) => T,
): T {
  let entry = cache.get(key);
  if (entry === undefined) {
    const warnings: W[] = [];
    entry = { value: build((w) => warnings.push(w)), warnings };
    cache.set(key, entry);
  }
  if (warn !== undefined) for (const w of entry.warnings) warn(w);
  return entry.value;
}

const OBJECT_IDS = Symbol("object ids");

/**
 * A short key for an object (a scope, a DestinationRule) that is unique within the push context and
 * the contexts that carry its values; `-` for none.
 */
export function objectKey(push: PushContext, object: object | undefined | null): string {
  if (object === undefined || object === null) return "-";
  const ids = push.carried(OBJECT_IDS, () => ({ next: 0, ids: new WeakMap<object, string>() }));
  let id = ids.ids.get(object);
  if (id === undefined) {
    id = `#${ids.next++}`;
    ids.ids.set(object, id);
  }
  return id;
}

const CAPABILITY_KEYS = new WeakMap<ProxyCapabilities, string>();

/** The capabilities as a key (equal capabilities, equal key). */
export function capabilitiesKey(caps: ProxyCapabilities): string {
  let key = CAPABILITY_KEYS.get(caps);
  if (key === undefined) {
    key = JSON.stringify(caps, (_, v) => (v instanceof Set ? [...v].sort() : v));
    CAPABILITY_KEYS.set(caps, key);
  }
  return key;
}

/** Labels as a key (equal labels in any order, equal key). */
export function labelsKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
}

type Selector = Readonly<Record<string, string>>;
const ROUTING_SELECTORS = Symbol("routing selectors");

/**
 * What of a proxy's labels its routes and clusters can depend on, as a key: which of the selectors
 * that can apply to it match its labels — `sourceLabels` of the VirtualService matches in its scope
 * and the workload selectors of DestinationRules in its namespace (Istio's route cache is skipped
 * for VirtualServices with `sourceLabels` for the same reason, route/route_cache.go). Proxies of a
 * scope with equal keys get equal routes and clusters.
 */
export function routingLabelsKey(push: PushContext, proxy: Proxy, labels: Selector): string {
  const scope = push.sidecarScope(proxy);
  const selectors = carriedResult(push, ROUTING_SELECTORS, scope, proxy.namespace, undefined, () => {
    const out: Selector[] = [];
    for (const l of scope.egressListeners) {
      for (const vs of l.virtualServices) {
        for (const route of [...vs.http, ...vs.tcp, ...vs.tls] as ReadonlyArray<{ match?: unknown }>) {
          if (!Array.isArray(route.match)) continue;
          for (const m of route.match as ReadonlyArray<{ sourceLabels?: Selector } | undefined>)
            if (m?.sourceLabels !== undefined) out.push(m.sourceLabels);
        }
      }
    }
    for (const dr of push.snapshot.list("DestinationRule", proxy.namespace)) {
      const selector = (dr.spec.workloadSelector as { matchLabels?: Selector } | undefined)?.matchLabels;
      if (dr.spec.workloadSelector !== undefined) out.push(selector ?? {});
    }
    return out;
  });
  let key = "";
  for (const s of selectors) key += labelsMatch(s, labels) ? "1" : "0";
  return key;
}
