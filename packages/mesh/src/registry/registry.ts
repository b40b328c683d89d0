import type { ConfigSnapshot, EndpointSlice, WorkloadGroup } from "@meshlet/config";
import { map, type Observable, type OperatorFunction } from "rxjs";
import { pushTo, sameElements } from "../collections.js";
import {
  type IstioEndpoint,
  type Service,
  type ServiceInstance,
  type ServiceTarget,
  serviceKey,
  serviceSourceKey,
} from "../model/service.js";
import {
  convertKubeService,
  kubeServiceInstances,
  SERVICE_NAME_LABEL,
  type WorkloadLookup,
} from "./kube-services.js";
import { convertServiceEntry, serviceEntryInstances } from "./service-entries.js";
import { podWorkload, type WorkloadInstance, workloadEntryWorkload } from "./workload.js";

/** Options for {@link Registry.fromSnapshot}. */
export interface RegistryOptions {
  /** Cluster domain of Kubernetes service hosts (default `cluster.local`). */
  readonly domainSuffix?: string;
  /** Cluster id endpoints are tagged with (default `Kubernetes`, Istio's default `CLUSTER_ID`). */
  readonly clusterId?: string;
  /** Trust domain of workload identities (default `cluster.local`). */
  readonly trustDomain?: string;
}

/** What a registry converted from which config objects, so the next registry can reuse it. */
interface Conversions {
  /** The Node list the pod localities were read from. */
  readonly nodes: readonly unknown[];
  /** Workloads by the Pod or WorkloadEntry object they were converted from. */
  readonly workloads: Map<object, WorkloadInstance | undefined>;
  /** Services by the Service or ServiceEntry object they were converted from. */
  readonly services: Map<object, readonly Service[]>;
  /** Instances by instance key, with the inputs they were computed from. */
  readonly instances: Map<string, InstanceInputs>;
}

interface InstanceInputs {
  readonly service: Service;
  /** EndpointSlices (Kubernetes) or the ServiceEntry, in order. */
  readonly sources: readonly object[];
  /** The workloads of the service's namespace the instances were matched against. */
  readonly workloads: readonly WorkloadInstance[];
  /** False when the sources name workloads of other namespaces too (then never reused). */
  readonly reusable: boolean;
  readonly instances: ServiceInstance[];
}

/**
 * The service registry at one config snapshot: services and their endpoints from Kubernetes
 * `Service` + `EndpointSlice` + `Pod`, `ServiceEntry` (inline endpoints, DNS hosts, workload
 * selectors) and `WorkloadEntry`, modelled as Istio's `model.Service` / `ServiceInstance` /
 * `IstioEndpoint`. Immutable; a new snapshot gives a new Registry (see {@link toRegistry}), built
 * incrementally from the previous one with {@link Registry.update}.
 */
export class Registry {
  /** Version of the snapshot this registry was built from. */
  readonly version: string;
  /** The options in effect (defaults filled in). */
  readonly options: Required<RegistryOptions>;
  readonly #services: Service[];
  readonly #byHostname = new Map<string, Service[]>();
  readonly #instances = new Map<string, ServiceInstance[]>();
  readonly #workloads: WorkloadInstance[];
  readonly #workloadsByAddress = new Map<string, WorkloadInstance[]>();
  readonly #groups: readonly WorkloadGroup[];
  readonly #conversions: Conversions;
  #byKey: Map<string, Service[]> | undefined;
  readonly #fingerprints = new Map<string, string>();
  #byAddress: Map<string, ServiceInstance[]> | undefined;
  readonly #order = new Map<Service, number>();

  private constructor(snapshot: ConfigSnapshot, options: Required<RegistryOptions>, previous?: Conversions) {
    this.version = snapshot.version;
    this.options = options;
    const workloadOptions = { trustDomain: options.trustDomain };
    const nodes = snapshot.list("Node");
    // Pods read their locality from Nodes: their conversions carry over only while Nodes are unchanged.
    const reuse = previous !== undefined;
    const reusePods = previous !== undefined && sameElements(previous.nodes, nodes);
    const conversions: Conversions = {
      nodes,
      workloads: new Map(),
      services: new Map(),
      instances: new Map(),
    };
    this.#conversions = conversions;
    const workloads: WorkloadInstance[] = [];
    const byNamespace = new Map<string, WorkloadInstance[]>();
    const pods = new Map<string, WorkloadInstance>();
    const podsByIp = new Map<string, WorkloadInstance[]>();
    const add = (object: object, convert: () => WorkloadInstance | undefined, reusable: boolean) => {
      const w = reusable && previous?.workloads.has(object) ? previous.workloads.get(object) : convert();
      conversions.workloads.set(object, w);
      if (w === undefined) return;
      workloads.push(w);
      pushTo(byNamespace, w.namespace, w);
      for (const a of w.addresses) pushTo(this.#workloadsByAddress, a, w);
      if (w.kind === "Pod") {
        pods.set(`${w.namespace}/${w.name}`, w);
        for (const a of w.addresses) pushTo(podsByIp, `${w.namespace}/${a}`, w);
      }
    };
    for (const pod of snapshot.list("Pod"))
      add(pod, () => podWorkload(snapshot, pod, workloadOptions), reusePods);
    for (const we of snapshot.list("WorkloadEntry"))
      add(we, () => workloadEntryWorkload(we, workloadOptions), reuse);
    this.#workloads = workloads;
    this.#groups = snapshot.list("WorkloadGroup");

    const lookup: WorkloadLookup = {
      inNamespace: (ns) => byNamespace.get(ns) ?? [],
      pod: (ns, name) => pods.get(`${ns}/${name}`),
      podsByIp: (ns, ip) => podsByIp.get(`${ns}/${ip}`) ?? [],
    };
    const slicesByService = new Map<string, EndpointSlice[]>();
    for (const slice of snapshot.list("EndpointSlice")) {
      const svcName = slice.metadata.labels?.[SERVICE_NAME_LABEL];
      if (svcName !== undefined) pushTo(slicesByService, `${slice.metadata.namespace}/${svcName}`, slice);
    }
    // Instances are recomputed only when their service, sources or namespace's workloads changed
    // (by identity: the config store keeps the object of an unchanged resource).
    const instancesOf = (
      service: Service,
      sources: readonly object[],
      reusable: () => boolean,
      compute: () => ServiceInstance[],
    ) => {
      const key = instanceKey(service);
      const workloadsInNs = lookup.inNamespace(service.namespace);
      const before = previous?.instances.get(key);
      const same =
        before?.reusable === true &&
        before.service === service &&
        sameElements(before.sources, sources) &&
        sameElements(before.workloads, workloadsInNs);
      const entry: InstanceInputs = same
        ? { ...before, workloads: workloadsInNs }
        : { service, sources, workloads: workloadsInNs, reusable: reusable(), instances: compute() };
      conversions.instances.set(key, entry);
      this.#instances.set(key, entry.instances);
    };
    const convert = (object: object, compute: () => Service[]): readonly Service[] => {
      const converted = previous?.services.get(object) ?? compute();
      conversions.services.set(object, converted);
      return converted;
    };

    const services: Service[] = [];
    for (const svc of snapshot.list("Service")) {
      const [service] = convert(svc, () => [convertKubeService(svc, options)]) as [Service];
      services.push(service);
      const slices = slicesByService.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [];
      instancesOf(
        service,
        slices,
        () => slices.every((slice) => slicesStayInNamespace(slice, service.namespace)),
        () => kubeServiceInstances(service, slices, lookup, options),
      );
    }
    for (const se of snapshot.list("ServiceEntry")) {
      for (const service of convert(se, () => convertServiceEntry(se))) {
        services.push(service);
        instancesOf(
          service,
          [se],
          () => true,
          () => serviceEntryInstances(se, service, lookup.inNamespace(service.namespace), options),
        );
      }
    }
    // Istio SortServicesByCreationTime: creation time, then name, then namespace.
    services.sort(
      (a, b) =>
        (a.creationTime ?? 0) - (b.creationTime ?? 0) ||
        compare(a.name, b.name) ||
        compare(a.namespace, b.namespace) ||
        compare(a.source.kind, b.source.kind),
    );
    this.#services = services;
    services.forEach((s, i) => {
      pushTo(this.#byHostname, s.hostname, s);
      this.#order.set(s, i);
    });
  }

  /** Builds the registry of a snapshot. */
  static fromSnapshot(snapshot: ConfigSnapshot, options: RegistryOptions = {}): Registry {
    return new Registry(snapshot, {
      domainSuffix: options.domainSuffix ?? "cluster.local",
      clusterId: options.clusterId ?? "Kubernetes",
      trustDomain: options.trustDomain ?? "cluster.local",
    });
  }

  /**
   * The registry of a newer snapshot, with this registry's options, reusing what this one converted
   * from the same config objects (a config store keeps the object of an unchanged resource): a
   * Service, ServiceEntry, Pod or WorkloadEntry that did not change keeps its converted object, and
   * a service whose EndpointSlices (or ServiceEntry) and namespace workloads did not change keeps
   * its instances. The result is what {@link Registry.fromSnapshot} would build; only the work and
   * the object identities differ (unchanged services stay the same objects, which lets caches keyed
   * by them carry over).
   */
  update(snapshot: ConfigSnapshot): Registry {
    return new Registry(snapshot, this.options, this.#conversions);
  }

  /** Every service, oldest first (Istio's order; later duplicates lose to earlier ones). */
  services(): readonly Service[] {
    return this.#services;
  }

  /** Services with this host name, in any namespace, oldest first. */
  servicesForHostname(hostname: string): readonly Service[] {
    return this.#byHostname.get(hostname) ?? [];
  }

  /**
   * The service with this host in this namespace. When several define it (a Kubernetes Service and
   * ServiceEntries), the Kubernetes Service wins, then the oldest (Istio `initServiceRegistry`:
   * a ServiceEntry cannot squat a Kubernetes host).
   */
  service(hostname: string, namespace: string): Service | undefined {
    let chosen: Service | undefined;
    for (const s of this.#byHostname.get(hostname) ?? []) {
      if (s.namespace !== namespace) continue;
      if (chosen === undefined || (chosen.registry !== "Kubernetes" && s.registry === "Kubernetes"))
        chosen = s;
    }
    return chosen;
  }

  /**
   * Every endpoint of every port of `service`. Copies of a service (e.g. a Sidecar scope's with
   * fewer ports) find the instances of the service they were copied from.
   */
  instances(service: Service): readonly ServiceInstance[] {
    return this.#instances.get(instanceKey(service)) ?? NO_INSTANCES;
  }

  /** Endpoints of the service port numbered `port` (all health states; EDS keeps only HEALTHY ones). */
  endpoints(service: Service, port: number): IstioEndpoint[] {
    return this.instances(service)
      .filter((i) => i.servicePort.port === port)
      .map((i) => i.endpoint);
  }

  /** Pods (with an IP, not finished) and WorkloadEntries. */
  workloads(): readonly WorkloadInstance[] {
    return this.#workloads;
  }

  /** Workloads with this address. */
  workloadsByAddress(address: string): readonly WorkloadInstance[] {
    return this.#workloadsByAddress.get(address) ?? [];
  }

  /** WorkloadGroups (auto-registration templates; see `workloadEntryFromGroup`). */
  workloadGroups(): readonly WorkloadGroup[] {
    return this.#groups;
  }

  /**
   * The service ports a workload at these addresses serves, with the port it listens on (Istio
   * `GetProxyServiceTargets`): every endpoint whose address is one of `ipAddresses`, one entry per
   * service port. Limited to `namespace` when given (a sidecar's own services live in its namespace,
   * except ServiceEntries, which may select it from anywhere they are defined).
   */
  serviceTargets(workload: {
    readonly ipAddresses: readonly string[];
    readonly namespace?: string;
  }): ServiceTarget[] {
    const out: ServiceTarget[] = [];
    const seen = new Set<string>();
    // Instances in service order (oldest service first), found through the address index.
    const hits = new Set<ServiceInstance>();
    for (const ip of workload.ipAddresses)
      for (const i of this.#instancesByAddress().get(ip) ?? []) hits.add(i);
    const ordered = [...hits].sort((a, b) => this.#order.get(a.service)! - this.#order.get(b.service)!);
    for (const { service, servicePort, endpoint } of ordered) {
      if (
        workload.namespace !== undefined &&
        service.registry === "Kubernetes" &&
        service.namespace !== workload.namespace
      ) {
        continue;
      }
      const key = `${serviceKey(service)}|${servicePort.port}|${endpoint.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ service, port: servicePort, targetPort: endpoint.port });
    }
    return out;
  }

  #instancesByAddress(): Map<string, ServiceInstance[]> {
    if (this.#byAddress !== undefined) return this.#byAddress;
    const index = new Map<string, ServiceInstance[]>();
    for (const service of this.#services) {
      for (const inst of this.instances(service))
        for (const a of inst.endpoint.addresses) pushTo(index, a, inst);
    }
    // Built on first use; the registry's contents never change.
    this.#byAddress = index;
    return index;
  }

  /**
   * Keys (`<namespace>/<hostname>`) of services that differ between `previous` and this registry:
   * added, removed, or with a changed definition or endpoint. What a controller pushes after a
   * registry change.
   */
  changedServices(previous: Registry | undefined): Set<string> {
    const mine = this.#servicesByKey();
    if (previous === undefined) return new Set(mine.keys());
    const theirs = previous.#servicesByKey();
    const out = new Set<string>();
    for (const [key, services] of mine) {
      const before = theirs.get(key);
      if (before === undefined) out.add(key);
      else if (
        !this.#sameAs(previous, services, before) &&
        this.#fingerprint(key) !== previous.#fingerprint(key)
      )
        out.add(key);
    }
    for (const key of theirs.keys()) if (!mine.has(key)) out.add(key);
    return out;
  }

  /**
   * Whether every service has the same definition here as in `previous` (the same objects, or equal
   * ones), so that only endpoints can differ: what lets a push context keep its scopes (Istio pushes
   * such a change as an incremental EDS update).
   */
  sameServiceDefinitions(previous: Registry): boolean {
    if (previous.#services.length !== this.#services.length) return false;
    for (let i = 0; i < this.#services.length; i++) {
      const a = this.#services[i] as Service;
      const b = previous.#services[i] as Service;
      if (a !== b && JSON.stringify(serviceFingerprint(a)) !== JSON.stringify(serviceFingerprint(b)))
        return false;
    }
    return true;
  }

  #sameAs(previous: Registry, mine: readonly Service[], theirs: readonly Service[]): boolean {
    if (!sameElements(mine, theirs)) return false;
    return mine.every((s) => this.instances(s) === previous.instances(s));
  }

  #servicesByKey(): Map<string, Service[]> {
    if (this.#byKey !== undefined) return this.#byKey;
    const byKey = new Map<string, Service[]>();
    for (const service of this.#services) pushTo(byKey, serviceKey(service), service);
    // Built on first use; the registry's contents never change.
    this.#byKey = byKey;
    return byKey;
  }

  /** The definition and endpoints of the services under `key`, as text (computed once per key). */
  #fingerprint(key: string): string {
    let fp = this.#fingerprints.get(key);
    if (fp === undefined) {
      fp = (this.#servicesByKey().get(key) ?? [])
        .map((service) =>
          JSON.stringify([
            serviceFingerprint(service),
            this.instances(service).map((i) => [i.servicePort, i.endpoint]),
          ]),
        )
        .join("\n");
      this.#fingerprints.set(key, fp);
    }
    return fp;
  }
}

/**
 * RxJS operator: a {@link Registry} for each config snapshot (`store.snapshots$.pipe(toRegistry())`).
 */
export function toRegistry(options: RegistryOptions = {}): OperatorFunction<ConfigSnapshot, Registry> {
  return map((snapshot: ConfigSnapshot) => Registry.fromSnapshot(snapshot, options));
}

/** `registry$` from `snapshots$`: {@link toRegistry} applied. */
export function registry$(
  snapshots$: Observable<ConfigSnapshot>,
  options: RegistryOptions = {},
): Observable<Registry> {
  return snapshots$.pipe(toRegistry(options));
}

function serviceFingerprint(service: Service): unknown {
  return { ...service, exportTo: service.exportTo === undefined ? undefined : [...service.exportTo].sort() };
}

const instanceKey = serviceSourceKey;

/** The instances of a service the registry does not know (one object, so callers can key on it). */
const NO_INSTANCES: readonly ServiceInstance[] = Object.freeze([]);

/** Whether every Pod a slice targets is in `namespace` (as Kubernetes' EndpointSlice controller writes them). */
function slicesStayInNamespace(slice: EndpointSlice, namespace: string): boolean {
  return (slice.endpoints ?? []).every(
    (ep) => ep.targetRef?.namespace === undefined || ep.targetRef.namespace === namespace,
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
