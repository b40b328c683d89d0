import {
  type Diagnostic,
  formatPath,
  formatResourceKey,
  labelsMatch,
  type Resource,
  resourceKeyOf,
} from "@meshlet/config";
import { hostSubsetOf, isWildcardHost, resolveShortname } from "../model/host.js";
import type { Service } from "../model/service.js";
import type { PushContext } from "../push/push-context.js";
import { MESH_GATEWAY, type MeshVirtualService } from "../push/virtual-services.js";
import { PUBLIC } from "../push/visibility.js";

/**
 * Istio analyzer message codes meshlet reports (istio/istio pkg/config/analysis/msg/messages.yaml).
 */
export const IstioAnalyzerCode = {
  /** A referenced resource does not exist: host, subset, gateway, credentialName, selector (Error). */
  ReferencedResourceNotFound: "IST0101",
  /** Several VirtualServices bound to the mesh gateway define one host (Error). */
  ConflictingMeshGatewayVirtualServiceHosts: "IST0109",
  /** A route to a multi-port service does not say which port (Error). */
  VirtualServiceDestinationPortSelectorRequired: "IST0112",
  /** A DestinationRule subset selects no endpoint (Error). */
  DestinationRuleSubsetNotSelectPods: "IST0173",
  /** A DestinationRule host matches no service (Warning). */
  UnknownDestinationRuleHost: "IST0174",
} as const;

/** Istio's analyzer message level. */
export type AnalyzerLevel = "Error" | "Warning" | "Info";

/**
 * A finding about the mesh config as a whole: a `Diagnostic` (formatted by `formatDiagnostic`,
 * shown in `status$`) with Istio's analyzer code and level. Its `severity` is `warning` because
 * the resource stays in the config; `level` is what `istioctl analyze` would print.
 */
export interface MeshFinding extends Diagnostic {
  readonly level: AnalyzerLevel;
}

/** Options for {@link analyzeMesh}. */
export interface AnalyzeMeshOptions {
  /**
   * Whether the Secret `namespace/name` exists, for Gateway `credentialName`s. Defaults to looking
   * for a `Secret` in the snapshot (a kind that must be registered with the config store).
   */
  readonly secretExists?: (namespace: string, name: string) => boolean;
}

/**
 * Checks the config of a push context the way `istioctl analyze` would, using the registry:
 * - IST0101 `host`: a VirtualService routes to a host no service or ServiceEntry defines;
 * - IST0101 `host+subset in destinationrule` / `mirror+subset in destinationrule`: a route names a
 *   subset no DestinationRule for the host defines;
 * - IST0101 `gateway`: a VirtualService is bound to a Gateway that does not exist;
 * - IST0101 `credentialName`: a Gateway server's TLS secret does not exist in the namespace of the
 *   gateway workload; IST0101 `selector`: a Gateway selects no workload (checked when the config
 *   has workloads at all);
 * - IST0109: two VirtualServices bound to `mesh` and visible in a common namespace define one host;
 * - IST0112: a route to a service with several ports names no port;
 * - IST0173: a DestinationRule subset selects none of the host's endpoints;
 * - IST0174: a DestinationRule host matches no service.
 * Findings are sorted by resource and path, so the same config gives the same list.
 */
export function analyzeMesh(push: PushContext, options: AnalyzeMeshOptions = {}): MeshFinding[] {
  const out: MeshFinding[] = [];
  const report: Report = (resource, code, level, message, path) => {
    const origin = push.snapshot.originOf(resource);
    out.push({
      severity: "warning",
      level,
      code,
      message,
      source: origin?.source ?? "mesh",
      ...(origin?.file !== undefined ? { file: origin.file } : {}),
      ...(origin?.position !== undefined
        ? { line: origin.position.line, column: origin.position.column }
        : {}),
      resource: formatResourceKey(resourceKeyOf(resource)),
      path: formatPath(path),
    });
  };
  const notFound = (
    resource: Resource,
    reftype: string,
    refval: string,
    path: ReadonlyArray<string | number>,
  ) =>
    report(
      resource,
      IstioAnalyzerCode.ReferencedResourceNotFound,
      "Error",
      `Referenced ${reftype} not found: ${JSON.stringify(refval)}`,
      path,
    );

  checkVirtualServices(push, report, notFound);
  checkMeshHostConflicts(push, report);
  checkDestinationRules(push, report);
  checkGateways(push, options, notFound);
  return out.sort(
    (a, b) =>
      (a.resource ?? "").localeCompare(b.resource ?? "") ||
      (a.path ?? "").localeCompare(b.path ?? "") ||
      a.code.localeCompare(b.code),
  );
}

type Report = (
  r: Resource,
  code: string,
  level: AnalyzerLevel,
  message: string,
  path: ReadonlyArray<string | number>,
) => void;
type NotFound = (r: Resource, reftype: string, refval: string, path: ReadonlyArray<string | number>) => void;

interface RouteDestination {
  readonly host: string;
  readonly written: string;
  readonly subset?: string;
  readonly port?: number;
  readonly mirror: boolean;
  readonly path: Array<string | number>;
}

function* destinationsOf(vs: MeshVirtualService): Generator<RouteDestination> {
  const spec = vs.resource.spec;
  for (const [i, r] of vs.http.entries()) {
    for (const [j, d] of (r.route ?? []).entries()) {
      yield {
        ...dest(d.destination, spec.http?.[i]?.route?.[j]?.destination.host),
        mirror: false,
        path: ["spec", "http", i, "route", j, "destination"],
      };
    }
    if (r.mirror !== undefined)
      yield {
        ...dest(r.mirror, spec.http?.[i]?.mirror?.host),
        mirror: true,
        path: ["spec", "http", i, "mirror"],
      };
    for (const [j, m] of (r.mirrors ?? []).entries()) {
      yield {
        ...dest(m.destination, spec.http?.[i]?.mirrors?.[j]?.destination.host),
        mirror: true,
        path: ["spec", "http", i, "mirrors", j, "destination"],
      };
    }
  }
  for (const section of ["tcp", "tls"] as const) {
    for (const [i, r] of vs[section].entries()) {
      for (const [j, d] of (r.route ?? []).entries()) {
        yield {
          ...dest(d.destination, spec[section]?.[i]?.route?.[j]?.destination.host),
          mirror: false,
          path: ["spec", section, i, "route", j, "destination"],
        };
      }
    }
  }
}

function dest(d: { host: string; subset?: string; port?: { number?: number } }, written: string | undefined) {
  return {
    host: d.host,
    written: written ?? d.host,
    ...(d.subset !== undefined ? { subset: d.subset } : {}),
    ...(d.port?.number !== undefined ? { port: d.port.number } : {}),
  };
}

/** The service a VirtualService of `namespace` reaches under `host` (own namespace first, then any visible). */
function destinationService(push: PushContext, host: string, namespace: string): Service | undefined {
  const byNs = push.servicesByNamespace(host);
  const own = byNs.get(namespace);
  if (own !== undefined) return own;
  for (const s of byNs.values()) if (push.isServiceVisible(s, namespace)) return s;
  // ServiceEntries with wildcard hosts cover concrete names (*.example.com).
  return push.registry
    .services()
    .find(
      (s) =>
        isWildcardHost(s.hostname) && hostSubsetOf(host, s.hostname) && push.isServiceVisible(s, namespace),
    );
}

function checkVirtualServices(push: PushContext, report: Report, notFound: NotFound): void {
  const subsetsByHost = new Map<string, Set<string>>();
  const wildcardSubsets: Array<{ host: string; subsets: Set<string> }> = [];
  for (const dr of push.snapshot.list("DestinationRule")) {
    const host = resolveShortname(dr.spec.host, dr.metadata.namespace, push.mesh.domainSuffix);
    const names = new Set((dr.spec.subsets ?? []).map((s) => s.name));
    if (isWildcardHost(host)) wildcardSubsets.push({ host, subsets: names });
    else {
      const set = subsetsByHost.get(host) ?? new Set<string>();
      for (const n of names) set.add(n);
      subsetsByHost.set(host, set);
    }
  }
  const hasSubset = (host: string, subset: string) =>
    subsetsByHost.get(host)?.has(subset) === true ||
    wildcardSubsets.some((w) => hostSubsetOf(host, w.host) && w.subsets.has(subset));

  for (const vs of push.virtualServices()) {
    for (const d of destinationsOf(vs)) {
      const service = destinationService(push, d.host, vs.namespace);
      if (service === undefined) {
        notFound(vs.resource, "host", d.written, [...d.path, "host"]);
        continue;
      }
      if (d.subset !== undefined && !hasSubset(d.host, d.subset)) {
        notFound(
          vs.resource,
          d.mirror ? "mirror+subset in destinationrule" : "host+subset in destinationrule",
          `${d.written}+${d.subset}`,
          [...d.path, "subset"],
        );
      }
      if (d.port === undefined && service.ports.length > 1) {
        report(
          vs.resource,
          IstioAnalyzerCode.VirtualServiceDestinationPortSelectorRequired,
          "Error",
          `This VirtualService routes to a service ${JSON.stringify(d.written)} that exposes multiple ports [${service.ports.map((p) => p.port).join(" ")}]. Specifying a port in the destination is required to disambiguate.`,
          d.path,
        );
      }
    }
    const gateways = vs.resource.spec.gateways ?? [];
    vs.gateways.forEach((gw, i) => {
      if (gw === MESH_GATEWAY || gateways.length === 0) return;
      const [ns, name] = gw.split("/", 2) as [string, string];
      if (push.snapshot.get("Gateway", ns, name) === undefined)
        notFound(vs.resource, "gateway", gateways[i] ?? gw, ["spec", "gateways", i]);
    });
  }
}

function checkMeshHostConflicts(push: PushContext, report: Report): void {
  const byHost = new Map<string, MeshVirtualService[]>();
  for (const vs of push.virtualServices()) {
    if (!vs.gateways.includes(MESH_GATEWAY)) continue;
    for (const h of new Set(vs.hosts)) {
      const list = byHost.get(h) ?? [];
      list.push(vs);
      byHost.set(h, list);
    }
  }
  const defaults = push.mesh.defaultVirtualServiceExportTo;
  for (const [host, list] of byHost) {
    if (list.length < 2) continue;
    // Only VirtualServices some namespace sees together conflict (istioctl's exportTo scoping).
    const conflicting = list.filter((a) => list.some((b) => b !== a && visibleTogether(a, b, defaults)));
    if (conflicting.length < 2) continue;
    const names = conflicting.map((v) => `${v.namespace}/${v.name}`).join(",");
    for (const vs of conflicting) {
      const index = (vs.resource.spec.hosts ?? []).findIndex(
        (h) => resolveShortname(h, vs.namespace, push.mesh.domainSuffix) === host,
      );
      report(
        vs.resource,
        IstioAnalyzerCode.ConflictingMeshGatewayVirtualServiceHosts,
        "Error",
        `The VirtualServices ${names} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        ["spec", "hosts", Math.max(index, 0)],
      );
    }
  }
}

function visibleTogether(a: MeshVirtualService, b: MeshVirtualService, defaults: readonly string[]): boolean {
  const namespacesOf = (v: MeshVirtualService): "*" | Set<string> => {
    const ex = v.exportTo;
    if (ex === undefined || ex.size === 0) return defaults.includes(PUBLIC) ? "*" : new Set([v.namespace]);
    if (ex.has(PUBLIC)) return "*";
    return new Set([...ex].map((e) => (e === "." ? v.namespace : e)));
  };
  const na = namespacesOf(a);
  const nb = namespacesOf(b);
  if (na === "*" || nb === "*") return true;
  for (const n of na) if (nb.has(n)) return true;
  return false;
}

function checkDestinationRules(push: PushContext, report: Report): void {
  for (const dr of push.snapshot.list("DestinationRule")) {
    const host = resolveShortname(dr.spec.host, dr.metadata.namespace, push.mesh.domainSuffix);
    const services = push.servicesMatchingHost(host);
    if (services.length === 0 && !isWildcardHost(host)) {
      report(
        dr,
        IstioAnalyzerCode.UnknownDestinationRuleHost,
        "Warning",
        `The host ${host} defined in the DestinationRule does not match any services in the mesh.`,
        ["spec", "host"],
      );
      continue;
    }
    if (isWildcardHost(host)) continue;
    (dr.spec.subsets ?? []).forEach((subset, i) => {
      const labels = subset.labels ?? {};
      const selects = services.some((s) =>
        push.registry.instances(s).some((inst) => labelsMatch(labels, inst.endpoint.labels)),
      );
      if (!selects) {
        report(
          dr,
          IstioAnalyzerCode.DestinationRuleSubsetNotSelectPods,
          "Error",
          `The Subset ${subset.name} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`,
          ["spec", "subsets", i],
        );
      }
    });
  }
}

function checkGateways(push: PushContext, options: AnalyzeMeshOptions, notFound: NotFound): void {
  const workloads = push.registry.workloads();
  const secretExists =
    options.secretExists ??
    ((ns: string, name: string) => push.snapshot.get("Secret", ns, name) !== undefined);
  for (const gw of push.snapshot.list("Gateway")) {
    const selector = gw.spec.selector ?? {};
    // The secret lives with the gateway workload (istio/istio analyzers/gateway/secret.go).
    const workload = workloads.find((w) => labelsMatch(selector, w.labels));
    if (workload === undefined && workloads.length > 0) {
      // Istio reports the selector and cannot tell where the secret should be.
      const text = Object.entries(selector)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      notFound(gw, "selector", text, ["spec", "selector"]);
      continue;
    }
    // Config without any workload (validating a directory of Istio YAML): meshlet looks for the
    // secret in the Gateway's own namespace, where gateways are usually deployed with it.
    const secretNamespace = workload?.namespace ?? gw.metadata.namespace;
    (gw.spec.servers ?? []).forEach((server, i) => {
      const cn = server.tls?.credentialName;
      if (cn === undefined || cn === "") return;
      if (!secretExists(secretNamespace, cn))
        notFound(gw, "credentialName", cn, ["spec", "servers", i, "tls", "credentialName"]);
    });
  }
}
