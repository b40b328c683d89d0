import { isIP } from "node:net";

// Host-name semantics of Istio's `host.Name` (istio/istio pkg/config/host/name.go) and of
// `ResolveShortnameToFQDN` / `resolveGatewayName` (pilot/pkg/model/config.go). Hosts are compared as
// written: Kubernetes names are lower case already, and Istio does not fold case here either.

/** Whether `host` starts with `*` (`*`, `*.example.com`). */
export function isWildcardHost(host: string): boolean {
  return host.length > 0 && host[0] === "*";
}

/**
 * Whether two hosts overlap, in either direction (Istio `Name.Matches`): equal exact names, or one
 * wildcard covering the other (`*.com` ~ `foo.com`, `*.com` ~ `*.foo.com`; `*.foo.com` !~ `foo.com`).
 */
export function hostsOverlap(a: string, b: string): boolean {
  const aWild = isWildcardHost(a);
  const bWild = isWildcardHost(b);
  if (aWild && bWild) {
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  }
  if (aWild) return b.endsWith(a.slice(1));
  if (bWild) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Whether `host` is covered by `pattern` (Istio `Name.SubsetOf`): `foo.com` ⊂ `*.com`,
 * `*.foo.com` ⊂ `*.com`, nothing but `*` covers `*`, an exact pattern covers only itself.
 */
export function hostSubsetOf(host: string, pattern: string): boolean {
  const hWild = isWildcardHost(host);
  const pWild = isWildcardHost(pattern);
  if (hWild) {
    if (!pWild) return false;
    if (host.length < pattern.length) return false;
    return host.slice(1).endsWith(pattern.slice(1));
  }
  if (pWild) return host.endsWith(pattern.slice(1));
  return host === pattern;
}

/**
 * Resolves a host written in a resource of `namespace` as Istio does: `*`, IP addresses and names
 * with a dot stay; a short name becomes `<name>.<namespace>.svc.<domainSuffix>`.
 */
export function resolveShortname(host: string, namespace: string, domainSuffix: string): string {
  if (host === "" || host === "*" || isIP(host) !== 0 || host.includes(".")) return host;
  let out = host;
  if (namespace !== "") out = `${out}.${namespace}`;
  if (domainSuffix !== "") out = `${out}.svc.${domainSuffix}`;
  return out;
}

/**
 * Resolves a gateway reference in a VirtualService of `namespace` to `namespace/name` (Istio
 * `resolveGatewayName`): `gw` → `<ns>/gw`, `./gw` → `<ns>/gw`, the legacy FQDN `gw.ns.svc.cluster.local`
 * → `ns/gw`; `mesh` is returned unchanged.
 */
export function resolveGatewayName(gateway: string, namespace: string): string {
  if (gateway === "mesh") return gateway;
  const slash = gateway.indexOf("/");
  if (slash < 0) {
    const dot = gateway.indexOf(".");
    if (dot < 0) return `${namespace}/${gateway}`;
    const rest = gateway.slice(dot + 1);
    const next = rest.indexOf(".");
    return `${next < 0 ? rest : rest.slice(0, next)}/${gateway.slice(0, dot)}`;
  }
  return gateway.slice(0, slash) === "." ? `${namespace}/${gateway.slice(slash + 1)}` : gateway;
}

/**
 * The entry of `exact`/`wildcard` that matches `needle` most specifically (Istio
 * `MostSpecificHostMatch`): an exact key first, then the longest wildcard whose suffix covers the
 * needle. Returns the matching key and its value, or undefined.
 */
export function mostSpecificHostMatch<V>(
  needle: string,
  exact: ReadonlyMap<string, V>,
  wildcard: ReadonlyMap<string, V>,
): { host: string; value: V } | undefined {
  if (isWildcardHost(needle)) {
    const own = wildcard.get(needle);
    if (own !== undefined) return { host: needle, value: own };
    return bestWildcard(needle.slice(1), wildcard);
  }
  const hit = exact.get(needle);
  if (hit !== undefined) return { host: needle, value: hit };
  return bestWildcard(needle, wildcard);
}

function bestWildcard<V>(needle: string, wildcard: ReadonlyMap<string, V>) {
  let best: { host: string; value: V } | undefined;
  for (const [host, value] of wildcard) {
    if (!needle.endsWith(host.slice(1))) continue;
    // More specific = longer; equal lengths are ordered by name so the result does not depend on
    // map order (Istio's `host.MoreSpecific`).
    if (
      best === undefined ||
      host.length > best.host.length ||
      (host.length === best.host.length && host < best.host)
    ) {
      best = { host, value };
    }
  }
  return best;
}
