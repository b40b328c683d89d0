/**
 * Resolves a host as Istio does: a short name (`reviews`) is relative to the namespace of the
 * resource that wrote it and becomes `reviews.<namespace>.svc.<domain>`; FQDNs and wildcards stay.
 */
export function toFqdn(host: string, namespace: string, domainSuffix = "cluster.local"): string {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h === "*" || h.startsWith("*.") || h.includes(".")) return h;
  return `${h}.${namespace}.svc.${domainSuffix}`;
}

/** True when `pattern` (possibly `*` or `*.suffix`) matches the concrete or wildcard `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) {
    const suffix = pattern.slice(1); // ".example.com"
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return pattern === host;
}

/** True when every label of `selector` is present with the same value in `labels`. */
export function labelsMatch(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const [k, v] of Object.entries(selector)) {
    if (labels?.[k] !== v) return false;
  }
  return true;
}
