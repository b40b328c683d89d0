import type { ConfigSnapshot } from "./config-snapshot.js";
import { type Diagnostic, formatPath, type Origin } from "./diagnostic.js";
import { DiagnosticCode } from "./diagnostic-code.js";
import { hostMatches, toFqdn } from "./host.js";
import type { DestinationRule, VirtualService } from "./kinds.js";
import { formatResourceKey, type Resource, resourceKeyOf } from "./resource.js";

/** Options for {@link analyze}. */
export interface AnalyzeOptions {
  /** Where each resource came from; defaults to the snapshot's own origins. */
  readonly originOf?: (resource: Resource) => Origin | undefined;
  readonly domainSuffix?: string;
}

/**
 * Semantic checks across resources, as `istioctl analyze` makes them: findings Istio has a message
 * for carry its code and level (IST0101 ReferencedResourceNotFound and IST0109 are errors); the
 * others are meshlet warnings (`MC1xxx`). Resources stay in the snapshot either way.
 */
export function analyze(snapshot: ConfigSnapshot, options: AnalyzeOptions = {}): Diagnostic[] {
  const originOf = options.originOf ?? ((r: Resource) => snapshot.originOf(r));
  const domain = options.domainSuffix ?? "cluster.local";
  const out: Diagnostic[] = [];
  const warn = (resource: Resource, code: string, message: string, path: Array<string | number>) => {
    const origin = originOf(resource);
    const pos = origin?.locate?.(path) ?? origin?.position;
    out.push({
      severity: code.startsWith("IST") ? "error" : "warning",
      code,
      message,
      source: origin?.source ?? "unknown",
      ...(origin?.file !== undefined ? { file: origin.file } : {}),
      ...(pos !== undefined ? { line: pos.line, column: pos.column } : {}),
      resource: formatResourceKey(resourceKeyOf(resource)),
      path: formatPath(path),
    });
  };

  checkSubsets(snapshot, domain, warn);
  checkMeshHostConflicts(snapshot, domain, warn);
  checkGateways(snapshot, warn);
  checkPeerAuthentications(snapshot, warn);
  return out;
}

type Warn = (resource: Resource, code: string, message: string, path: Array<string | number>) => void;

function* destinations(
  vs: VirtualService,
): Generator<{ host: string; subset?: string; path: Array<string | number> }> {
  const spec = vs.spec;
  for (const [i, route] of (spec.http ?? []).entries()) {
    for (const [j, d] of (route.route ?? []).entries())
      yield { ...d.destination, path: ["spec", "http", i, "route", j, "destination"] };
    if (route.mirror !== undefined) yield { ...route.mirror, path: ["spec", "http", i, "mirror"] };
    for (const [j, m] of (route.mirrors ?? []).entries())
      yield { ...m.destination, path: ["spec", "http", i, "mirrors", j, "destination"] };
  }
  for (const section of ["tcp", "tls"] as const) {
    for (const [i, route] of (spec[section] ?? []).entries()) {
      for (const [j, d] of (route.route ?? []).entries())
        yield { ...d.destination, path: ["spec", section, i, "route", j, "destination"] };
    }
  }
}

function checkSubsets(snapshot: ConfigSnapshot, domain: string, warn: Warn): void {
  // DestinationRules indexed by host: exact hosts in a map, wildcard hosts scanned (they are few).
  const exact = new Map<string, DestinationRule[]>();
  const wildcard: Array<{ host: string; dr: DestinationRule }> = [];
  for (const dr of snapshot.list("DestinationRule")) {
    const host = toFqdn(dr.spec.host, dr.metadata.namespace, domain);
    if (host === "*" || host.startsWith("*.")) wildcard.push({ host, dr });
    else {
      const list = exact.get(host);
      if (list === undefined) exact.set(host, [dr]);
      else list.push(dr);
    }
  }
  for (const vs of snapshot.list("VirtualService")) {
    for (const d of destinations(vs)) {
      if (d.subset === undefined) continue;
      const host = toFqdn(d.host, vs.metadata.namespace, domain);
      const matching = [
        ...(exact.get(host) ?? []),
        ...wildcard.filter((w) => hostMatches(w.host, host)).map((w) => w.dr),
      ];
      if (matching.some((dr) => (dr.spec.subsets ?? []).some((s) => s.name === d.subset))) continue;
      warn(
        vs,
        DiagnosticCode.SubsetNotFound,
        `Referenced host+subset in destinationrule not found: "${d.host}+${d.subset}" (${
          matching.length === 0
            ? `no DestinationRule for host ${host}`
            : `not among the subsets of DestinationRule ${matching.map((dr) => `${dr.metadata.namespace}/${dr.metadata.name}`).join(", ")}`
        })`,
        [...d.path, "subset"],
      );
    }
  }
}

function checkMeshHostConflicts(snapshot: ConfigSnapshot, domain: string, warn: Warn): void {
  // Sidecars (the implicit `mesh` gateway) cannot merge two VirtualServices for one host: only one
  // applies. Gateways merge them, so, like istioctl's IST0109, only the mesh gateway is checked.
  const claims = new Map<string, Array<{ vs: VirtualService; index: number }>>();
  for (const vs of snapshot.list("VirtualService")) {
    const gateways = vs.spec.gateways ?? ["mesh"];
    if (!gateways.includes("mesh")) continue;
    (vs.spec.hosts ?? []).forEach((h, index) => {
      const host = toFqdn(h, vs.metadata.namespace, domain);
      const list = claims.get(host);
      if (list === undefined) claims.set(host, [{ vs, index }]);
      else list.push({ vs, index });
    });
  }
  for (const [host, list] of claims) {
    if (list.length < 2) continue;
    const names = list.map((c) => `${c.vs.metadata.namespace}/${c.vs.metadata.name}`);
    for (const c of list) {
      warn(
        c.vs,
        DiagnosticCode.ConflictingVirtualServiceHosts,
        `The VirtualServices ${names.join(",")} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        ["spec", "hosts", c.index],
      );
    }
  }
}

function checkGateways(snapshot: ConfigSnapshot, warn: Warn): void {
  const gatewayExists = (ref: string, vsNamespace: string) => {
    const [ns, name] = ref.includes("/") ? (ref.split("/", 2) as [string, string]) : [vsNamespace, ref];
    return snapshot.get("Gateway", ns, name) !== undefined;
  };
  for (const vs of snapshot.list("VirtualService")) {
    (vs.spec.gateways ?? []).forEach((ref, i) => {
      if (ref === "mesh" || gatewayExists(ref, vs.metadata.namespace)) return;
      warn(vs, DiagnosticCode.GatewayNotFound, `Referenced gateway not found: "${ref}"`, [
        "spec",
        "gateways",
        i,
      ]);
    });
  }
  // Without any workload in the config (e.g. `meshlet validate` on a folder of Istio YAML) every
  // selector would "match nothing": the check only runs when workloads are known.
  if (snapshot.list("Pod").length === 0 && snapshot.list("WorkloadEntry").length === 0) return;
  for (const gw of snapshot.list("Gateway")) {
    const selector = gw.spec.selector;
    if (selector === undefined || Object.keys(selector).length === 0) continue;
    if (snapshot.workloadsMatching(selector).length > 0) continue;
    const text = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    warn(
      gw,
      DiagnosticCode.GatewaySelectorMatchesNothing,
      `Referenced selector not found: "${text}" (no Pod or WorkloadEntry has these labels)`,
      ["spec", "selector"],
    );
  }
}

function checkPeerAuthentications(snapshot: ConfigSnapshot, warn: Warn): void {
  // Two policies at the same scope (same namespace and same selector, or both namespace-wide) with
  // different modes: which one Istio applies depends on creation time, so the effect is unpredictable.
  const scopes = new Map<string, Resource[]>();
  for (const pa of snapshot.list("PeerAuthentication")) {
    const mode = pa.spec.mtls?.mode;
    if (mode === undefined || mode === "UNSET") continue;
    const labels = pa.spec.selector?.matchLabels ?? {};
    const selector = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    const scope = `${pa.metadata.namespace}|${selector}`;
    const list = scopes.get(scope);
    if (list === undefined) scopes.set(scope, [pa]);
    else list.push(pa);
  }
  for (const list of scopes.values()) {
    const modes = new Set(list.map((pa) => (pa.spec as { mtls?: { mode?: string } }).mtls?.mode));
    if (modes.size < 2) continue;
    const described = list
      .map((pa) => `${pa.metadata.name}=${(pa.spec as { mtls?: { mode?: string } }).mtls?.mode}`)
      .join(", ");
    for (const pa of list) {
      warn(
        pa,
        DiagnosticCode.ConflictingPeerAuthenticationModes,
        `PeerAuthentications at the same scope ask for different mTLS modes (${described})`,
        ["spec", "mtls", "mode"],
      );
    }
  }
}
