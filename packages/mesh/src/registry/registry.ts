import type { ConfigSnapshot, EndpointSlice, WorkloadGroup } from "@meshlet/config";
import { map, type Observable, type OperatorFunction } from "rxjs";
import { pushTo } from "../collections.js";
import {
  type IstioEndpoint,
  type Service,
  type ServiceInstance,
  type ServiceTarget,
  serviceKey,
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

/**
 * The service registry at one config snapshot: services and their endpoints from Kubernetes
 * `Service` + `EndpointSlice` + `Pod`, `ServiceEntry` (inline endpoints, DNS hosts, workload
 * selectors) and `WorkloadEntry`, modelled as Istio's `model.Service` / `ServiceInstance` /
 * `IstioEndpoint`. Immutable; a new snapshot gives a new Registry (see {@link toRegistry}).
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
  #fingerprints: Map<string, string> | undefined;
  #byAddress: Map<string, ServiceInstance[]> | undefined;
  readonly #order = new Map<Service, number>();

  private constructor(snapshot: ConfigSnapshot, options: Required<RegistryOptions>) {
    this.version = snapshot.version;
    this.options = options;
    const workloadOptions = { trustDomain: options.trustDomain };
    const workloads: WorkloadInstance[] = [];
    const byNamespace = new Map<string, WorkloadInstance[]>();
    const pods = new Map<string, WorkloadInstance>();
    const podsByIp = new Map<string, WorkloadInstance[]>();
    const add = (w: WorkloadInstance | undefined) => {
      if (w === undefined) return;
      workloads.push(w);
      pushTo(byNamespace, w.namespace, w);
      for (const a of w.addresses) pushTo(this.#workloadsByAddress, a, w);
      if (w.kind === "Pod") {
        pods.set(`${w.namespace}/${w.name}`, w);
        for (const a of w.addresses) pushTo(podsByIp, `${w.namespace}/${a}`, w);
      }
    };
    for (const pod of snapshot.list("Pod")) add(podWorkload(snapshot, pod, workloadOptions));
    for (const we of snapshot.list("WorkloadEntry")) add(workloadEntryWorkload(we, workloadOptions));
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

    const services: Service[] = [];
    for (const svc of snapshot.list("Service")) {
      const service = convertKubeService(svc, options);
      services.push(service);
      const slices = slicesByService.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [];
      this.#instances.set(instanceKey(service), kubeServiceInstances(service, slices, lookup, options));
    }
    for (const se of snapshot.list("ServiceEntry")) {
      for (const service of convertServiceEntry(se)) {
        services.push(service);
        this.#instances.set(
          instanceKey(service),
          serviceEntryInstances(se, service, lookup.inNamespace(service.namespace), options),
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
    return this.#instances.get(instanceKey(service)) ?? [];
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
    const mine = this.#fingerprintsByKey();
    if (previous === undefined) return new Set(mine.keys());
    const theirs = previous.#fingerprintsByKey();
    const out = new Set<string>();
    for (const [key, fp] of mine) if (theirs.get(key) !== fp) out.add(key);
    for (const key of theirs.keys()) if (!mine.has(key)) out.add(key);
    return out;
  }

  #fingerprintsByKey(): Map<string, string> {
    if (this.#fingerprints !== undefined) return this.#fingerprints;
    const parts = new Map<string, string[]>();
    for (const service of this.#services) {
      const text = JSON.stringify([
        serviceFingerprint(service),
        this.instances(service).map((i) => [i.servicePort, i.endpoint]),
      ]);
      pushTo(parts, serviceKey(service), text);
    }
    // Computed once, on first use; the registry's contents never change.
    this.#fingerprints = new Map([...parts].map(([k, v]) => [k, v.join("\n")]));
    return this.#fingerprints;
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

function instanceKey(s: Service): string {
  return `${s.source.kind}/${s.source.namespace}/${s.source.name}|${s.hostname}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
