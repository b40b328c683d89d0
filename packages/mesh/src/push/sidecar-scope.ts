import { formatResourceKey, resourceKeyOf, type Sidecar } from "@meshlet/config";
import { getOrCreate } from "../collections.js";
import type { SidecarEgressListener } from "../config-access.js";
import { hostSubsetOf, hostsOverlap, isWildcardHost } from "../model/host.js";
import { parseProtocol } from "../model/protocol.js";
import { type Service, serviceKey } from "../model/service.js";
import type { ConsolidatedDestinationRule } from "./destination-rules.js";
import { MESH_GATEWAY, type MeshVirtualService, virtualServiceDestinations } from "./virtual-services.js";

/** The services and VirtualServices one Sidecar egress listener imports (Istio `IstioEgressListenerWrapper`). */
export interface EgressListenerScope {
  /** The Sidecar's egress listener; undefined for the default catch-all (`*\/*`). */
  readonly listener?: SidecarEgressListener;
  /** Its `hosts` (`namespace/dnsName`). */
  readonly hosts: readonly string[];
  /** Imported services (trimmed to the listener's port when it has one). */
  readonly services: readonly Service[];
  /** Imported VirtualServices (bound to `mesh`), in precedence order. */
  readonly virtualServices: readonly MeshVirtualService[];
}

/**
 * What a proxy can see (Istio `SidecarScope`): the Sidecar that applies to it (or the default
 * `*\/*` scope), per egress listener the services and VirtualServices it imports, the union of
 * services, the DestinationRules of those services, and the config it depends on.
 */
export interface SidecarScope {
  /** The namespace the scope is computed for (the proxy's). */
  readonly namespace: string;
  /** The Sidecar resource, undefined for the default scope. */
  readonly sidecar?: Sidecar;
  readonly egressListeners: readonly EgressListenerScope[];
  /** Every imported service, one per host name. */
  readonly services: readonly Service[];
  /** `ALLOW_ANY` or `REGISTRY_ONLY`: the Sidecar's, else the mesh's. */
  readonly outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  /** Config keys (`Kind/namespace/name`) this scope was computed from. */
  readonly configDependencies: ReadonlySet<string>;
  /** Service keys (`namespace/hostname`) this scope imports. */
  readonly serviceDependencies: ReadonlySet<string>;
  /** The imported service with this exact host name. */
  service(hostname: string): Service | undefined;
  /** The DestinationRules of an imported host (before workload-selector choice). */
  destinationRules(hostname: string): readonly ConsolidatedDestinationRule[] | undefined;
}

/** What {@link buildSidecarScope} reads from the push context. */
export interface ScopeInputs {
  /** Services visible from a namespace (Istio `servicesExportedToNamespace`), oldest first. */
  servicesExportedTo(namespace: string): readonly Service[];
  /** Services with a host, one per namespace (Istio `ServiceIndex.HostnameAndNamespace`). */
  servicesByNamespace(hostname: string): ReadonlyMap<string, Service>;
  isServiceVisible(service: Service, namespace: string): boolean;
  virtualServicesForGateway(namespace: string, gateway: string): readonly MeshVirtualService[];
  destinationRules(namespace: string, service: Service): ConsolidatedDestinationRule[] | undefined;
  readonly meshOutboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
}

interface HostClassification {
  readonly exact: Set<string>;
  readonly all: string[];
}

const DEFAULT_EGRESS: SidecarEgressListener = { hosts: ["*/*"] };

/**
 * Builds the scope of a sidecar or proxyless client in `namespace` from `sidecar` (undefined = the
 * default scope), as Istio's `convertToSidecarScope` does with unified scoping: each egress
 * listener imports the services exported to the namespace whose host its `hosts` cover
 * (`ns/host`, `./host`, `*\/host`, wildcards), restricted to its port; VirtualServices bound to
 * `mesh` whose hosts overlap; services a VirtualService routes to are imported as well. Hosts
 * defined in several namespaces resolve to one service: the proxy's namespace first, then a
 * Kubernetes Service over a ServiceEntry.
 */
export function buildSidecarScope(
  inputs: ScopeInputs,
  namespace: string,
  sidecar: Sidecar | undefined,
): SidecarScope {
  const deps = new Set<string>();
  if (sidecar !== undefined) deps.add(formatResourceKey(resourceKeyOf(sidecar)));
  const egress =
    sidecar?.spec.egress !== undefined && sidecar.spec.egress.length > 0
      ? sidecar.spec.egress
      : [DEFAULT_EGRESS];
  const exported = inputs.servicesExportedTo(namespace);
  const listeners: EgressListenerScope[] = egress.map((l) =>
    egressListener(inputs, namespace, l, exported, sidecar === undefined),
  );
  for (const l of listeners) for (const vs of l.virtualServices) addVsDependencies(deps, vs);

  const merged = new ServiceSet();
  for (const l of listeners) {
    for (const s of l.services) merged.add(s);
    const matchPort = l.listener !== undefined && needsPortMatch(l.listener);
    for (const vs of l.virtualServices) {
      for (const [host, ports] of virtualServiceDestinations(vs, namespace)) {
        const byNs = inputs.servicesByNamespace(host);
        let svc = byNs.get(namespace);
        if (svc === undefined) {
          // Not in our namespace: the first visible namespace, alphabetically (Istio pickFirstVisibleNamespace).
          const ns = [...byNs.keys()]
            .filter((n) => inputs.isServiceVisible(byNs.get(n) as Service, namespace))
            .sort()[0];
          svc = ns === undefined ? undefined : byNs.get(ns);
        }
        if (svc === undefined) continue;
        const matched = matchPort
          ? serviceOnListenerPort(svc, l.listener as SidecarEgressListener)
          : serviceOnPorts(svc, ports);
        if (matched !== undefined) merged.add(matched);
      }
    }
  }
  const policy = sidecar?.spec.outboundTrafficPolicy?.mode ?? inputs.meshOutboundTrafficPolicy;
  return completeScope(inputs, namespace, merged.list(), listeners, deps, policy, sidecar);
}

/**
 * The scope of a gateway (Istio `DefaultSidecarScopeForGateway`): every service exported to its
 * namespace, the `mesh` VirtualServices visible there; Sidecar resources never apply to gateways.
 */
export function buildGatewayScope(inputs: ScopeInputs, namespace: string): SidecarScope {
  const merged = new ServiceSet();
  for (const s of inputs.servicesExportedTo(namespace)) merged.add(s);
  const virtualServices = inputs.virtualServicesForGateway(namespace, MESH_GATEWAY);
  const services = merged.list();
  const deps = new Set<string>();
  for (const vs of virtualServices) addVsDependencies(deps, vs);
  const listeners = [{ hosts: ["*/*"], services, virtualServices }];
  return completeScope(
    inputs,
    namespace,
    services,
    listeners,
    deps,
    inputs.meshOutboundTrafficPolicy,
    undefined,
  );
}

/** Adds the services' DestinationRules and the dependencies on both, and builds the scope. */
function completeScope(
  inputs: ScopeInputs,
  namespace: string,
  services: Service[],
  listeners: EgressListenerScope[],
  deps: Set<string>,
  policy: "ALLOW_ANY" | "REGISTRY_ONLY",
  sidecar: Sidecar | undefined,
): SidecarScope {
  const drs = new Map<string, ConsolidatedDestinationRule[]>();
  const serviceDeps = new Set<string>();
  for (const s of services) {
    serviceDeps.add(serviceKey(s));
    deps.add(formatResourceKey(s.source));
    const rules = inputs.destinationRules(namespace, s);
    if (rules !== undefined) {
      drs.set(s.hostname, rules);
      for (const r of rules) for (const from of r.from) deps.add(formatResourceKey(from));
    }
  }
  const byHost = new Map(services.map((s) => [s.hostname, s]));
  return {
    namespace,
    ...(sidecar !== undefined ? { sidecar } : {}),
    egressListeners: listeners,
    services,
    outboundTrafficPolicy: policy,
    configDependencies: deps,
    serviceDependencies: serviceDeps,
    service: (hostname) => byHost.get(hostname),
    destinationRules: (hostname) => drs.get(hostname),
  };
}

function addVsDependencies(deps: Set<string>, vs: MeshVirtualService): void {
  deps.add(formatResourceKey(vs.key));
  for (const d of vs.delegates) deps.add(formatResourceKey(d));
}

function egressListener(
  inputs: ScopeInputs,
  namespace: string,
  listener: SidecarEgressListener,
  exported: readonly Service[],
  isDefault: boolean,
): EgressListenerScope {
  const hostsByNamespace = new Map<string, HostClassification>();
  for (const h of listener.hosts) {
    const slash = h.indexOf("/");
    if (slash < 0 || h.indexOf("/", slash + 1) >= 0) continue; // not namespace/dnsName
    let ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === ".") ns = namespace;
    const hc = getOrCreate(hostsByNamespace, ns, (): HostClassification => ({ exact: new Set(), all: [] }));
    if (!isWildcardHost(name)) hc.exact.add(name);
    hc.all.push(name);
  }
  const matchPort = needsPortMatch(listener);

  // Istio SelectVirtualServices: an explicit namespace import, or a */… import.
  const virtualServices: MeshVirtualService[] = [];
  for (const vs of inputs.virtualServicesForGateway(namespace, MESH_GATEWAY)) {
    const imports = [hostsByNamespace.get(vs.namespace), hostsByNamespace.get("*")];
    if (imports.some((hc) => hc !== undefined && vs.hosts.some((h) => vsHostMatches(hc, h))))
      virtualServices.push(vs);
  }

  // Istio selectServices (unified scoping): import, then one namespace per host.
  const imported: Service[] = [];
  for (const s of exported) {
    for (const hc of [hostsByNamespace.get(s.namespace), hostsByNamespace.get("*")]) {
      if (hc === undefined || !serviceHostMatches(hc, s.hostname)) continue;
      const m = matchPort ? serviceOnListenerPort(s, listener) : s;
      if (m !== undefined) imported.push(m);
      break;
    }
  }
  const chosen = new Map<string, Service>();
  for (const s of imported) {
    const existing = chosen.get(s.hostname);
    if (
      existing === undefined ||
      s.namespace === namespace ||
      (existing.registry !== "Kubernetes" &&
        s.registry === "Kubernetes" &&
        (s.namespace === namespace || existing.namespace !== namespace))
    ) {
      chosen.set(s.hostname, s);
    }
  }
  const services = imported.filter((s) => chosen.get(s.hostname)?.namespace === s.namespace);
  return {
    ...(isDefault ? {} : { listener }),
    hosts: listener.hosts,
    services,
    virtualServices,
  };
}

/** Istio `hostClassification.Matches`: exact hosts by lookup, wildcards by `SubsetOf`. */
function serviceHostMatches(hc: HostClassification, host: string): boolean {
  if (hc.exact.has(host)) return true;
  const wild = isWildcardHost(host);
  return hc.all.some((imported) => (wild || isWildcardHost(imported)) && hostSubsetOf(host, imported));
}

/** Istio `hostClassification.VSMatches` for classic VirtualServices: overlap in either direction. */
function vsHostMatches(hc: HostClassification, vsHost: string): boolean {
  if (hc.exact.has(vsHost)) return true;
  const wild = isWildcardHost(vsHost);
  return hc.all.some((imported) => (wild || isWildcardHost(imported)) && hostsOverlap(vsHost, imported));
}

/** A listener with a port matches services on that port, unless it is an HTTP_PROXY listener (Istio `needsPortMatch`). */
function needsPortMatch(l: SidecarEgressListener): boolean {
  const port = l.port;
  return port !== undefined && port.number !== 0 && parseProtocol(port.protocol ?? "") !== "HTTP_PROXY";
}

function serviceOnListenerPort(s: Service, l: SidecarEgressListener): Service | undefined {
  const port = s.ports.find((p) => p.port === l.port?.number);
  if (port === undefined) return undefined;
  return s.ports.length === 1 ? s : { ...s, ports: [port] };
}

/** Istio `serviceMatchingVirtualServicePorts`: port 0 (unset) means every port. */
function serviceOnPorts(s: Service, ports: ReadonlySet<number>): Service | undefined {
  if (ports.size === 0 || ports.has(0)) return s;
  const found = s.ports.filter((p) => ports.has(p.port));
  if (found.length === s.ports.length) return s;
  return found.length > 0 ? { ...s, ports: found } : undefined;
}

/**
 * Services of a scope, one per host (Istio `appendSidecarServices`): the first one added stays,
 * except that a Kubernetes Service replaces a ServiceEntry; two entries for one host from the same
 * namespace, registry and resolution merge their ports.
 */
class ServiceSet {
  readonly #list: Service[] = [];
  readonly #index = new Map<string, number>();

  add(s: Service): void {
    const at = this.#index.get(s.hostname);
    if (at === undefined) {
      this.#index.set(s.hostname, this.#list.length);
      this.#list.push(s);
      return;
    }
    const existing = this.#list[at] as Service;
    if (existing === s) return;
    if (existing.registry === "Kubernetes" && s.registry !== "Kubernetes") return;
    if (existing.registry !== "Kubernetes" && s.registry === "Kubernetes") {
      this.#list[at] = s;
      return;
    }
    const samePorts =
      existing.ports.length === s.ports.length &&
      existing.ports.every(
        (p, i) =>
          p.port === s.ports[i]?.port && p.name === s.ports[i]?.name && p.protocol === s.ports[i]?.protocol,
      );
    if (samePorts) return;
    const mergeable =
      existing.namespace === s.namespace &&
      existing.resolution === s.resolution &&
      existing.registry === s.registry &&
      sameRecord(existing.labels, s.labels) &&
      sameRecord(existing.selector, s.selector) &&
      sameSet(existing.exportTo, s.exportTo);
    if (!mergeable) return;
    const ports = [...existing.ports];
    for (const p of s.ports) if (!ports.some((q) => q.port === p.port)) ports.push(p);
    this.#list[at] = { ...existing, ports };
  }

  list(): Service[] {
    return [...this.#list];
  }
}

function sameRecord(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const ae = Object.entries(a ?? {});
  return ae.length === Object.keys(b ?? {}).length && ae.every(([k, v]) => b?.[k] === v);
}

function sameSet(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if ((a?.size ?? 0) !== (b?.size ?? 0)) return false;
  for (const x of a ?? []) if (!b?.has(x)) return false;
  return true;
}
