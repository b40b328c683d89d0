import {
  type ConfigSnapshot,
  formatResourceKey,
  type Gateway,
  labelsMatch,
  type RequestAuthentication,
  resourceKeyOf,
  type Sidecar,
} from "@meshlet/config";
import { getOrCreate, pushTo, sameElements } from "../collections.js";
import { selectorLabels } from "../config-access.js";
import { hostSubsetOf, isWildcardHost } from "../model/host.js";
import { type IstioEndpoint, type Service, type ServiceTarget, serviceKey } from "../model/service.js";
import type { Proxy } from "../proxy/proxy.js";
import { Registry } from "../registry/registry.js";
import { type ProxyDependencies, proxyDependencies } from "./dependencies.js";
import {
  type ConsolidatedDestinationRule,
  DestinationRuleIndex,
  selectDestinationRule,
} from "./destination-rules.js";
import { type MeshConfig, meshConfig } from "./mesh-config.js";
import {
  authorizationPoliciesFor,
  composePeerAuthentication,
  type EffectivePeerAuthentication,
  type MtlsMode,
  mtlsModeForPort,
  type PolicyTarget,
  requestAuthenticationsFor,
  sortByCreation,
  type WorkloadAuthorizationPolicies,
} from "./security-policies.js";
import {
  buildGatewayScope,
  buildSidecarScope,
  type ScopeInputs,
  type SidecarScope,
} from "./sidecar-scope.js";
import { MESH_GATEWAY, type MeshVirtualService, VirtualServiceIndex } from "./virtual-services.js";
import { exportTargets, isExportedTo } from "./visibility.js";

/** Options for {@link PushContext.create}. */
export interface PushContextInit {
  /** The config to push. */
  readonly snapshot: ConfigSnapshot;
  /** The registry of that snapshot; built from it when absent (incrementally from `previous`'s when given). */
  readonly registry?: Registry;
  /** Mesh settings; Istio's defaults for fields not given. */
  readonly mesh?: Partial<MeshConfig>;
  /**
   * The context of the previous snapshot: what did not change is reused (the registry's unchanged
   * services; every index and scope when only endpoints changed). The answers are the same as
   * without it.
   */
  readonly previous?: PushContext;
}

/** A proxy, or just the namespace and labels of a workload, for policy lookups. */
export type WorkloadRef = Proxy | PolicyTarget;

/** Kinds whose objects the push context indexes (or its scopes are built from), besides the registry's. */
const INDEXED_KINDS = ["VirtualService", "DestinationRule", "Sidecar", "Gateway"] as const;

/** Kinds that can change while only endpoints do (with service definitions unchanged). */
const ENDPOINT_KINDS: ReadonlySet<string> = new Set([
  "EndpointSlice",
  "Pod",
  "WorkloadEntry",
  "Node",
  "Service",
  "ServiceEntry",
]);

/** The indexes of a push context that depend on service definitions and routing config, not on endpoints. */
interface Indexes {
  readonly virtualServices: VirtualServiceIndex;
  readonly destinationRules: DestinationRuleIndex;
  readonly privateServices: Map<string, Service[]>;
  readonly exportedServices: Map<string, Service[]>;
  readonly publicServices: Service[];
  readonly hostnameAndNamespace: Map<string, Map<string, Service>>;
  readonly sidecarsByNamespace: Map<string, Sidecar[]>;
  readonly rootSidecar: Sidecar | undefined;
  readonly gateways: readonly Gateway[];
  readonly scopes: Map<string, SidecarScope>;
  readonly vsByHost: WeakMap<SidecarScope, Map<string, MeshVirtualService | undefined>>;
}

/**
 * An immutable, indexed view of one config snapshot and its registry that generators query
 * (Istio's `PushContext`, istio/istio pilot/pkg/model/push_context.go, with `SidecarScope` from
 * sidecar.go). Every answer follows Istio's semantics; see each method. Per-proxy results that
 * only depend on the proxy's namespace and labels are memoised.
 */
export class PushContext {
  readonly snapshot: ConfigSnapshot;
  readonly registry: Registry;
  readonly mesh: MeshConfig;
  /** The snapshot version this context was built from. */
  readonly version: string;
  /**
   * Whether only endpoints changed since the `previous` context it was created from: EndpointSlices,
   * Pods, WorkloadEntries, Nodes, and Services or ServiceEntries whose definitions stayed the same;
   * no other config (Istio's incremental EDS case). Such a context keeps every index and scope of
   * the previous one, and its {@link PushContext.carried} values.
   */
  readonly endpointsOnly: boolean;
  readonly #virtualServices: VirtualServiceIndex;
  readonly #destinationRules: DestinationRuleIndex;
  readonly #privateServices: Map<string, Service[]>;
  readonly #exportedServices: Map<string, Service[]>;
  readonly #publicServices: Service[];
  readonly #hostnameAndNamespace: Map<string, Map<string, Service>>;
  readonly #sidecarsByNamespace: Map<string, Sidecar[]>;
  readonly #rootSidecar: Sidecar | undefined;
  readonly #gateways: readonly Gateway[];
  readonly #scopes: Map<string, SidecarScope>;
  readonly #vsByHost: WeakMap<SidecarScope, Map<string, MeshVirtualService | undefined>>;
  readonly #shared = new Map<unknown, unknown>();
  readonly #carried: Map<unknown, unknown>;

  private constructor(init: PushContextInit) {
    this.snapshot = init.snapshot;
    this.version = init.snapshot.version;
    this.mesh = meshConfig(init.mesh);
    const previous = init.previous;
    const sameMesh = previous !== undefined && JSON.stringify(previous.mesh) === JSON.stringify(this.mesh);
    this.registry =
      init.registry ??
      (sameMesh && previous !== undefined
        ? previous.registry.update(init.snapshot)
        : Registry.fromSnapshot(init.snapshot, {
            domainSuffix: this.mesh.domainSuffix,
            trustDomain: this.mesh.trustDomain,
          }));
    const reuse =
      sameMesh &&
      previous !== undefined &&
      INDEXED_KINDS.every((kind) => sameElements(previous.snapshot.list(kind), init.snapshot.list(kind))) &&
      this.registry.sameServiceDefinitions(previous.registry);
    this.endpointsOnly =
      reuse && previous !== undefined && onlyEndpointKindsChanged(previous.snapshot, init.snapshot);
    this.#carried = this.endpointsOnly && previous !== undefined ? previous.#carried : new Map();
    const indexes = reuse && previous !== undefined ? previous.#indexes() : this.#buildIndexes();
    this.#virtualServices = indexes.virtualServices;
    this.#destinationRules = indexes.destinationRules;
    this.#privateServices = indexes.privateServices;
    this.#exportedServices = indexes.exportedServices;
    this.#publicServices = indexes.publicServices;
    this.#hostnameAndNamespace = indexes.hostnameAndNamespace;
    this.#sidecarsByNamespace = indexes.sidecarsByNamespace;
    this.#rootSidecar = indexes.rootSidecar;
    this.#gateways = indexes.gateways;
    this.#scopes = indexes.scopes;
    this.#vsByHost = indexes.vsByHost;
  }

  #indexes(): Indexes {
    return {
      virtualServices: this.#virtualServices,
      destinationRules: this.#destinationRules,
      privateServices: this.#privateServices,
      exportedServices: this.#exportedServices,
      publicServices: this.#publicServices,
      hostnameAndNamespace: this.#hostnameAndNamespace,
      sidecarsByNamespace: this.#sidecarsByNamespace,
      rootSidecar: this.#rootSidecar,
      gateways: this.#gateways,
      scopes: this.#scopes,
      vsByHost: this.#vsByHost,
    };
  }

  #buildIndexes(): Indexes {
    const mesh = this.mesh;
    const privateServices = new Map<string, Service[]>();
    const exportedServices = new Map<string, Service[]>();
    const publicServices: Service[] = [];
    const hostnameAndNamespace = new Map<string, Map<string, Service>>();
    // Istio initServiceRegistry: services indexed by visibility, and one service per host and namespace.
    for (const s of this.registry.services()) {
      const byNs = getOrCreate(hostnameAndNamespace, s.hostname, () => new Map<string, Service>());
      const existing = byNs.get(s.namespace);
      if (existing === undefined || (existing.registry !== "Kubernetes" && s.registry === "Kubernetes")) {
        byNs.set(s.namespace, s);
      }
      const targets = exportTargets(s.exportTo, s.namespace, mesh.defaultServiceExportTo);
      if (targets === "*") publicServices.push(s);
      else {
        for (const ns of targets) pushTo(ns === s.namespace ? privateServices : exportedServices, ns, s);
      }
    }
    const virtualServices = new VirtualServiceIndex(
      this.snapshot.list("VirtualService"),
      mesh.domainSuffix,
      mesh.defaultVirtualServiceExportTo,
    );
    const destinationRules = new DestinationRuleIndex(this.snapshot.list("DestinationRule"), {
      domainSuffix: mesh.domainSuffix,
      rootNamespace: mesh.rootNamespace,
      defaultExportTo: mesh.defaultDestinationRuleExportTo,
    });
    // Istio initSidecarScopes: Sidecars with a selector first, then without; oldest first.
    const sidecars = sortByCreation(this.snapshot.list("Sidecar"));
    const ordered = [
      ...sidecars.filter((s) => s.spec.workloadSelector !== undefined),
      ...sidecars.filter((s) => s.spec.workloadSelector === undefined),
    ];
    const sidecarsByNamespace = new Map<string, Sidecar[]>();
    for (const s of ordered) pushTo(sidecarsByNamespace, s.metadata.namespace, s);
    return {
      virtualServices,
      destinationRules,
      privateServices,
      exportedServices,
      publicServices,
      hostnameAndNamespace,
      sidecarsByNamespace,
      rootSidecar: ordered.find(
        (s) => s.metadata.namespace === mesh.rootNamespace && s.spec.workloadSelector === undefined,
      ),
      gateways: sortByCreation(this.snapshot.list("Gateway")),
      scopes: new Map(),
      vsByHost: new WeakMap(),
    };
  }

  /** A push context for a snapshot (and its registry, built when not given). */
  static create(init: PushContextInit): PushContext {
    return new PushContext(init);
  }

  /**
   * A value derived from this context and shared by every generation that uses it, created on first
   * use: what generators compute once per push for all the proxies that need it (Istio's xDS
   * caches: the clusters of a service port, a route configuration for a scope). `key` identifies
   * the value; `create` must depend on nothing but this context and the key.
   */
  shared<T>(key: unknown, create: () => T): T {
    return memo(this.#shared, key, create);
  }

  /**
   * Like {@link PushContext.shared}, for values that stay valid while only endpoints change: the
   * next context keeps them when it is {@link PushContext.endpointsOnly}. A value that depends on
   * endpoints must be found through something that changes with them (the registry's instance
   * list of a service is a new object when its endpoints change, and the same one otherwise).
   */
  carried<T>(key: unknown, create: () => T): T {
    return memo(this.#carried, key, create);
  }

  // ----- services -------------------------------------------------------------------------------

  /**
   * Services visible from `namespace` (Istio `servicesExportedToNamespace`): private ones of the
   * namespace, those exported to it by name, then public ones; oldest first within each group.
   */
  servicesExportedTo(namespace: string): Service[] {
    return [
      ...(this.#privateServices.get(namespace) ?? []),
      ...(this.#exportedServices.get(namespace) ?? []),
      ...this.#publicServices,
    ];
  }

  /** Whether `service` is visible from `namespace` (Istio `IsServiceVisible`). */
  isServiceVisible(service: Service, namespace: string): boolean {
    return isExportedTo(service.exportTo, service.namespace, namespace, this.mesh.defaultServiceExportTo);
  }

  /** The services a proxy sees: its sidecar scope's (sidecars, proxyless) or gateway scope's services. */
  servicesForProxy(proxy: Proxy): readonly Service[] {
    return this.sidecarScope(proxy).services;
  }

  /** The service a proxy reaches under `hostname` (exact host), as its scope resolves it. */
  serviceForHostname(proxy: Proxy, hostname: string): Service | undefined {
    return this.sidecarScope(proxy).service(hostname);
  }

  /** Services with this host, at most one per namespace (a Kubernetes Service over a ServiceEntry). */
  servicesByNamespace(hostname: string): ReadonlyMap<string, Service> {
    return this.#hostnameAndNamespace.get(hostname) ?? new Map();
  }

  /**
   * Services whose host `host` covers, as a VirtualService or DestinationRule host does: the exact
   * host, or every service host under a wildcard (`*.example.com`, `*`).
   */
  servicesMatchingHost(host: string): Service[] {
    if (!isWildcardHost(host)) return [...(this.#hostnameAndNamespace.get(host)?.values() ?? [])];
    const out: Service[] = [];
    for (const [name, byNs] of this.#hostnameAndNamespace)
      if (hostSubsetOf(name, host)) out.push(...byNs.values());
    return out;
  }

  /** The service ports a proxy's workload serves (Istio `ServiceTargets`), by its IPs. */
  serviceTargets(proxy: Proxy): ServiceTarget[] {
    return this.registry.serviceTargets({ ipAddresses: proxy.ipAddresses, namespace: proxy.namespace });
  }

  /**
   * Endpoints of `service` on service port `port`, all health states; with `subsetLabels`, only the
   * endpoints whose labels include them (a DestinationRule subset).
   */
  endpoints(
    service: Service,
    port: number,
    subsetLabels?: Readonly<Record<string, string>>,
  ): IstioEndpoint[] {
    const all = this.registry.endpoints(service, port);
    return subsetLabels === undefined ? all : all.filter((e) => labelsMatch(subsetLabels, e.labels));
  }

  /**
   * The labels that select config for a proxy (Istio `SetWorkloadLabels`): the registry's labels of
   * the Pod with the proxy's IP in its namespace, plus the node's `STATIC_LABELS`; the node's
   * `LABELS` when the registry has no such Pod (VMs, proxies outside Kubernetes). Registry labels
   * win because node metadata is only what the client claims.
   */
  proxyLabels(proxy: Proxy): Readonly<Record<string, string>> {
    for (const ip of proxy.ipAddresses) {
      const pod = this.registry
        .workloadsByAddress(ip)
        .find((w) => w.kind === "Pod" && w.namespace === proxy.namespace);
      if (pod !== undefined) return { ...(proxy.metadata.staticLabels ?? {}), ...pod.labels };
    }
    return proxy.labels;
  }

  // ----- Sidecar scope --------------------------------------------------------------------------

  /**
   * The Sidecar resource that applies to a sidecar or proxyless proxy (Istio `getSidecarScope`): in
   * its namespace, the oldest Sidecar whose selector matches its labels, else the namespace's Sidecar
   * without selector, else the root namespace's Sidecar without selector; gateways get none.
   */
  sidecarFor(proxy: Proxy): Sidecar | undefined {
    if (proxy.kind === "gateway") return undefined;
    const labels = this.proxyLabels(proxy);
    for (const s of this.#sidecarsByNamespace.get(proxy.namespace) ?? []) {
      const selector = selectorLabels(s.spec.workloadSelector);
      if (s.spec.workloadSelector === undefined || labelsMatch(selector ?? {}, labels)) return s;
    }
    return this.#rootSidecar;
  }

  /** The proxy's scope (services, VirtualServices, DestinationRules it sees); memoised per Sidecar and namespace. */
  sidecarScope(proxy: Proxy): SidecarScope {
    const sidecar = this.sidecarFor(proxy);
    const key =
      proxy.kind === "gateway"
        ? `gateway|${proxy.namespace}`
        : `sidecar|${proxy.namespace}|${sidecar === undefined ? "" : formatResourceKey(resourceKeyOf(sidecar))}`;
    let scope = this.#scopes.get(key);
    if (scope === undefined) {
      const inputs = this.#scopeInputs();
      scope =
        proxy.kind === "gateway"
          ? buildGatewayScope(inputs, proxy.namespace)
          : buildSidecarScope(inputs, proxy.namespace, sidecar);
      this.#scopes.set(key, scope);
    }
    return scope;
  }

  #scopeInputs(): ScopeInputs {
    return {
      servicesExportedTo: (ns) => this.servicesExportedTo(ns),
      servicesByNamespace: (host) => this.servicesByNamespace(host),
      isServiceVisible: (s, ns) => this.isServiceVisible(s, ns),
      virtualServicesForGateway: (ns, gw) => this.virtualServicesForGateway(ns, gw),
      destinationRules: (ns, s) => this.#destinationRules.lookup(ns, s),
      meshOutboundTrafficPolicy: this.mesh.outboundTrafficPolicy.mode,
    };
  }

  // ----- VirtualServices ------------------------------------------------------------------------

  /** Every VirtualService (delegates merged into their roots; delegates themselves left out), oldest first. */
  virtualServices(): readonly MeshVirtualService[] {
    return this.#virtualServices.all;
  }

  /**
   * VirtualServices bound to `gateway` (`mesh`, or a Gateway as `namespace/name` or short name) and
   * visible from `namespace`, in Istio's precedence order. For gateways, every VirtualService for a
   * host contributes routes (Istio merges them); for `mesh`, see {@link virtualServiceForHost}.
   */
  virtualServicesForGateway(namespace: string, gateway: string): readonly MeshVirtualService[] {
    const gw = gateway === MESH_GATEWAY || gateway.includes("/") ? gateway : `${namespace}/${gateway}`;
    return this.#virtualServices.forGateway(namespace, gw);
  }

  /**
   * The VirtualService that routes `hostname` for a sidecar or proxyless proxy. Sidecars do not
   * merge VirtualServices for one host (istioctl IST0109): among those in the proxy's scope, the
   * first with `hostname` as an exact host wins, else the one with the most specific wildcard host
   * that covers it (Istio `MostSpecificWildcardVirtualServiceIndex`), earlier first on ties.
   */
  virtualServiceForHost(proxy: Proxy, hostname: string): MeshVirtualService | undefined {
    const scope = this.sidecarScope(proxy);
    const memo = getOrCreate(this.#vsByHost, scope, () => new Map<string, MeshVirtualService | undefined>());
    if (memo.has(hostname)) return memo.get(hostname);
    const vses = scope.egressListeners.flatMap((l) => l.virtualServices);
    let found = vses.find((vs) => vs.hosts.includes(hostname));
    if (found === undefined) {
      let longest = -1;
      for (const vs of vses) {
        for (const h of vs.hosts) {
          if (isWildcardHost(h) && hostSubsetOf(hostname, h) && h.length > longest) {
            found = vs;
            longest = h.length;
          }
        }
      }
    }
    memo.set(hostname, found);
    return found;
  }

  // ----- DestinationRules -----------------------------------------------------------------------

  /**
   * The DestinationRule that applies to `service` for a client (Istio `SidecarScope.DestinationRule`
   * over `PushContext.destinationRule`): the client namespace's rules, else the service
   * namespace's exported rules, else the root namespace's; a rule with a workload selector in the
   * client's namespace that selects the client wins over the catch-all rule.
   */
  destinationRule(client: WorkloadRef, service: Service): ConsolidatedDestinationRule | undefined {
    const target = this.#target(client);
    return selectDestinationRule(this.#destinationRules.lookup(target.namespace, service), target);
  }

  /** Every rule found for `service` from `namespace`, before workload-selector choice. */
  destinationRules(namespace: string, service: Service): readonly ConsolidatedDestinationRule[] | undefined {
    return this.#destinationRules.lookup(namespace, service);
  }

  // ----- security policies ----------------------------------------------------------------------

  /** The PeerAuthentication in effect for a workload (see `composePeerAuthentication`). */
  peerAuthentication(workload: WorkloadRef): EffectivePeerAuthentication {
    return composePeerAuthentication(
      this.snapshot.list("PeerAuthentication"),
      this.mesh.rootNamespace,
      this.#target(workload),
    );
  }

  /** The mTLS mode of a workload port (its target port); PERMISSIVE when no policy says otherwise. */
  mtlsMode(workload: WorkloadRef, port: number): MtlsMode {
    return mtlsModeForPort(this.peerAuthentication(workload), port);
  }

  /** AuthorizationPolicies that apply to a workload, by action (root namespace first, oldest first). */
  authorizationPolicies(workload: WorkloadRef): WorkloadAuthorizationPolicies {
    return authorizationPoliciesFor(
      this.snapshot.list("AuthorizationPolicy"),
      this.mesh.rootNamespace,
      this.#target(workload),
    );
  }

  /** RequestAuthentications that apply to a workload. */
  requestAuthentications(workload: WorkloadRef): RequestAuthentication[] {
    return requestAuthenticationsFor(
      this.snapshot.list("RequestAuthentication"),
      this.mesh.rootNamespace,
      this.#target(workload),
    );
  }

  // ----- gateways -------------------------------------------------------------------------------

  /**
   * The Gateways a gateway proxy serves (Istio `mergeGateways`, with `ScopeGatewayToNamespace`
   * off, its default): every Gateway whose `selector` matches the proxy's labels, or that has no
   * selector; oldest first.
   */
  gatewaysForProxy(proxy: Proxy): Gateway[] {
    if (proxy.kind !== "gateway") return [];
    const labels = this.proxyLabels(proxy);
    return this.#gateways.filter(
      (g) => g.spec.selector === undefined || labelsMatch(g.spec.selector, labels),
    );
  }

  // ----- dependencies ---------------------------------------------------------------------------

  /**
   * What the proxy's config depends on: its Sidecar, the VirtualServices (and delegates) and
   * DestinationRules in its scope, the services it sees and serves, its Gateways (with their
   * VirtualServices and `credentialName` Secrets) for gateways, its own Pod/WorkloadEntry, and the
   * namespaces whose policies may apply (its own and the root namespace).
   */
  dependencies(proxy: Proxy): ProxyDependencies {
    const scope = this.sidecarScope(proxy);
    // The scope's sets are shared by every proxy of the scope; only the proxy's own additions are new.
    const configs = new Set<string>();
    const services = new Set<string>();
    for (const t of this.serviceTargets(proxy)) {
      services.add(serviceKey(t.service));
      configs.add(formatResourceKey(t.service.source));
    }
    for (const ip of proxy.ipAddresses) {
      for (const w of this.registry.workloadsByAddress(ip)) {
        if (w.namespace === proxy.namespace) configs.add(formatResourceKey(w.source));
      }
    }
    for (const gw of this.gatewaysForProxy(proxy)) {
      configs.add(formatResourceKey(resourceKeyOf(gw)));
      for (const server of gw.spec.servers ?? []) {
        const secret = server.tls?.credentialName;
        if (secret !== undefined && secret !== "") {
          configs.add(formatResourceKey({ kind: "Secret", namespace: proxy.namespace, name: secret }));
        }
      }
      for (const vs of this.virtualServicesForGateway(
        proxy.namespace,
        `${gw.metadata.namespace}/${gw.metadata.name}`,
      )) {
        configs.add(formatResourceKey(vs.key));
        for (const d of vs.delegates) configs.add(formatResourceKey(d));
      }
    }
    return proxyDependencies(
      [scope.configDependencies, configs],
      [scope.serviceDependencies, services],
      new Set([proxy.namespace, this.mesh.rootNamespace]),
    );
  }

  #target(ref: WorkloadRef): PolicyTarget {
    return "id" in ref ? { namespace: ref.namespace, labels: this.proxyLabels(ref) } : ref;
  }
}

function memo<T>(map: Map<unknown, unknown>, key: unknown, create: () => T): T {
  if (map.has(key)) return map.get(key) as T;
  const value = create();
  map.set(key, value);
  return value;
}

/** Whether every kind other than the endpoint kinds has the same objects in both snapshots. */
function onlyEndpointKindsChanged(previous: ConfigSnapshot, next: ConfigSnapshot): boolean {
  for (const kind of new Set([...previous.kinds(), ...next.kinds()])) {
    if (!ENDPOINT_KINDS.has(kind) && !sameElements(previous.list(kind), next.list(kind))) return false;
  }
  return true;
}
