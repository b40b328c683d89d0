import { create, type JsonObject } from "@bufbuild/protobuf";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { LocalitySchema, MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { HealthStatus } from "@meshlet/api/envoy/config/core/v3/health_check_pb";
import {
  EndpointSchema,
  type LbEndpoint,
  LbEndpointSchema,
  type LocalityLbEndpoints,
  LocalityLbEndpointsSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_components_pb";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { labelsMatch } from "@meshlet/config";
import { type IstioEndpoint, type Service, serviceSourceKey } from "../model/service.js";
import { outboundClusterName } from "../naming/cluster-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { ConsolidatedDestinationRule } from "../push/destination-rules.js";
import type { PushContext } from "../push/push-context.js";
import { clusterTrafficPolicy } from "./cluster.js";
import {
  type IstioLoadBalancer,
  type IstioLocalityLbSetting,
  type IstioOutlierDetection,
  num,
  view,
} from "./istio-fields.js";
import { carriedResult, objectKey } from "./shared-results.js";

// ClusterLoadAssignment from the registry, as Istio's EDS builder writes it
// (istio/istio pilot/pkg/xds/endpoints/endpoint_builder.go, pilot/pkg/networking/core/loadbalancer/
// loadbalancer.go): endpoints grouped by locality, the locality weight the sum of its endpoints'
// weights, only healthy endpoints (Istio's default, `SEND_UNHEALTHY_ENDPOINTS` off), locality
// failover priorities when outlier detection is on, and the DestinationRule's locality `distribute`.
// Proxyless gRPC reads the same resource (Istio registers the normal EDS generator for `grpc/EDS`).

/** What {@link buildLoadAssignment} builds. */
export interface LoadAssignmentInput {
  readonly push: PushContext;
  /** The client (its DestinationRule and locality). */
  readonly proxy: Proxy;
  readonly service: Service;
  /** Service port. */
  readonly port: number;
  /** `""` (default) for every endpoint, else a DestinationRule subset. */
  readonly subset?: string;
  /** The rule to apply; looked up for the proxy when undefined (`null` = none). */
  readonly rule?: ConsolidatedDestinationRule | null;
}

/** `region/zone/subzone` of a proxy: its node's locality, else its workload's in the registry. */
export function proxyLocality(push: PushContext, proxy: Proxy): string {
  if (proxy.locality !== undefined) {
    const { region, zone, subZone } = proxy.locality;
    return [region, zone, subZone].join("/").replace(/\/+$/, "");
  }
  for (const ip of proxy.ipAddresses) {
    const w = push.registry.workloadsByAddress(ip).find((x) => x.namespace === proxy.namespace);
    if (w !== undefined) return w.locality;
  }
  return "";
}

/** Istio `util.LocalityMatch`: `*` matches any part; a shorter rule matches every locality below it. */
export function localityMatch(locality: string, rule: string): boolean {
  const l = locality.split("/");
  const r = rule.split("/");
  for (let i = 0; i < r.length; i++) {
    if (r[i] === "*") continue;
    if (r[i] !== (l[i] ?? "")) return false;
  }
  return true;
}

/** The endpoint's workload metadata Istio sends: `<workload>;<ns>;<canonical name>;<canonical revision>;<cluster>`. */
function workloadMetadata(e: IstioEndpoint): string {
  const name =
    e.labels["service.istio.io/canonical-name"] ??
    e.labels["app.kubernetes.io/name"] ??
    e.labels.app ??
    e.workloadName;
  const revision =
    e.labels["service.istio.io/canonical-revision"] ??
    e.labels["app.kubernetes.io/version"] ??
    e.labels.version ??
    "latest";
  return [e.workloadName, e.namespace, name, revision, e.clusterId].join(";");
}

function lbEndpoint(e: IstioEndpoint): LbEndpoint {
  const filterMetadata: Record<string, JsonObject> = { istio: { workload: workloadMetadata(e) } };
  if (e.tlsMode === "istio") filterMetadata["envoy.transport_socket_match"] = { tlsMode: "istio" };
  return create(LbEndpointSchema, {
    hostIdentifier: {
      case: "endpoint",
      value: create(EndpointSchema, {
        address: create(AddressSchema, {
          address: {
            case: "socketAddress",
            value: create(SocketAddressSchema, {
              address: e.addresses[0] ?? "",
              portSpecifier: { case: "portValue", value: e.port },
            }),
          },
        }),
      }),
    },
    healthStatus: HealthStatus.HEALTHY,
    loadBalancingWeight: e.lbWeight > 0 ? e.lbWeight : 1,
    metadata: create(MetadataSchema, { filterMetadata }),
  });
}

function splitLocality(locality: string) {
  const [region = "", zone = "", subZone = ""] = locality.split("/");
  return { region, zone, subZone };
}

/**
 * The ClusterLoadAssignment of `outbound|<port>|<subset>|<host>` for a proxy: the healthy endpoints
 * of the service port (those whose labels include the subset's), grouped by locality (localities and
 * endpoints sorted, so equal inputs give equal bytes), with the DestinationRule's locality load
 * balancing applied. DNS-resolved services get no endpoints here (Istio's EDS builder skips them).
 */
export function buildLoadAssignment(input: LoadAssignmentInput): ClusterLoadAssignment {
  const { push, proxy, service } = input;
  const subset = input.subset ?? "";
  const clusterName = outboundClusterName(service.hostname, input.port, subset);
  const cla = create(ClusterLoadAssignmentSchema, { clusterName });
  if (
    service.resolution === "DNS" ||
    service.resolution === "DNSRoundRobin" ||
    service.resolution === "Passthrough"
  )
    return cla;
  const rule = input.rule === null ? undefined : (input.rule ?? push.destinationRule(proxy, service));
  let labels: Readonly<Record<string, string>> | undefined;
  if (subset !== "") {
    const s = (rule?.spec.subsets ?? []).find((x) => x.name === subset);
    if (s === undefined) return cla;
    labels = s.labels ?? {};
  }
  const byLocality = new Map<string, IstioEndpoint[]>();
  for (const e of push.endpoints(service, input.port)) {
    if (e.health !== "HEALTHY") continue;
    if (labels !== undefined && !labelsMatch(labels, e.labels)) continue;
    if (e.addresses.length === 0) continue;
    const list = byLocality.get(e.locality) ?? [];
    list.push(e);
    byLocality.set(e.locality, list);
  }
  const key = (e: IstioEndpoint) => `${e.addresses[0]}:${String(e.port).padStart(5, "0")}`;
  cla.endpoints = [...byLocality.keys()].sort().map((locality) => {
    const eps = (byLocality.get(locality) as IstioEndpoint[]).sort((a, b) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0,
    );
    const lbEndpoints = eps.map(lbEndpoint);
    return create(LocalityLbEndpointsSchema, {
      locality: create(LocalitySchema, splitLocality(locality)),
      lbEndpoints,
      loadBalancingWeight: lbEndpoints.reduce((sum, e) => sum + (e.loadBalancingWeight ?? 1), 0),
    });
  });
  const policy = clusterTrafficPolicy(rule, input.port, subset);
  const lb = view<IstioLoadBalancer>(policy?.loadBalancer);
  const setting = view<IstioLocalityLbSetting>(lb?.localityLbSetting);
  if (setting?.enabled === false) return cla;
  const outlier = view<IstioOutlierDetection>(policy?.outlierDetection);
  applyLocalityLoadBalancer(cla, proxyLocality(push, proxy), setting, outlier !== undefined);
  return cla;
}

const SHARED_LOAD_ASSIGNMENTS = Symbol("shared load assignments");

/**
 * {@link buildLoadAssignment} shared through the push context: every proxy that gets the same
 * service port, subset, DestinationRule and locality gets the same message object (Istio keys its
 * EDS cache the same way), which a ResourcePool encodes once; kept across push contexts until the
 * service's endpoints change. Treat the result as immutable.
 */
export function sharedLoadAssignment(input: LoadAssignmentInput): ClusterLoadAssignment {
  const { push, proxy, service } = input;
  const rule = input.rule === null ? undefined : (input.rule ?? push.destinationRule(proxy, service));
  const locality = proxyLocality(push, proxy);
  const key = `${serviceSourceKey(service)}|${input.port}|${input.subset ?? ""}|${objectKey(push, rule)}|${locality}`;
  return carriedResult(push, SHARED_LOAD_ASSIGNMENTS, push.registry.instances(service), key, undefined, () =>
    buildLoadAssignment({ ...input, rule: rule ?? null }),
  );
}

/**
 * Istio `loadbalancer.ApplyLocalityLoadBalancer` for EDS: with `distribute`, the first rule whose
 * `from` matches the proxy's locality sets the weight of the localities its `to` names and drops
 * the others; otherwise, when failover is enabled (outlier detection configured), localities get
 * priorities by how much of the proxy's locality they share (0 same subzone, 1 same zone, 2 same
 * region, 3 other; 4 for a region the `failover` rules do not name as the target), renumbered
 * without gaps.
 */
export function applyLocalityLoadBalancer(
  cla: ClusterLoadAssignment,
  locality: string,
  setting: IstioLocalityLbSetting | undefined,
  enableFailover: boolean,
): void {
  if (locality === "" || cla.endpoints.length === 0) return;
  const distribute = setting?.distribute ?? [];
  if (distribute.length > 0) {
    applyLocalityWeights(cla, locality, distribute);
    return;
  }
  if (!enableFailover) return;
  const proxy = splitLocality(locality);
  const failover = setting?.failover ?? [];
  const priorities = cla.endpoints.map((group) => {
    const l = group.locality ?? create(LocalitySchema, {});
    let p = 3;
    if (l.region === proxy.region) p = l.zone === proxy.zone ? (l.subZone === proxy.subZone ? 0 : 1) : 2;
    if (p === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule !== undefined && l.region !== rule.to) p = 4;
    }
    return p;
  });
  const distinct = [...new Set(priorities)].sort((a, b) => a - b);
  cla.endpoints.forEach((group, i) => {
    group.priority = distinct.indexOf(priorities[i] as number);
  });
}

function applyLocalityWeights(
  cla: ClusterLoadAssignment,
  locality: string,
  distribute: NonNullable<IstioLocalityLbSetting["distribute"]>,
): void {
  const localityOf = (g: LocalityLbEndpoints) =>
    [g.locality?.region ?? "", g.locality?.zone ?? "", g.locality?.subZone ?? ""].join("/");
  for (const setting of distribute) {
    if (setting.from === undefined || !localityMatch(locality, setting.from)) continue;
    const mismatched = new Set(cla.endpoints.keys());
    for (const [target, weight] of Object.entries(setting.to ?? {})) {
      const w = num(weight) ?? 0;
      const matched = new Map<number, number>();
      let total = 0;
      cla.endpoints.forEach((g, i) => {
        if (!mismatched.has(i) || !localityMatch(localityOf(g), target)) return;
        mismatched.delete(i);
        const original = g.loadBalancingWeight ?? 1;
        matched.set(i, original);
        total += original;
      });
      for (const [i, original] of matched) {
        const dest = (original * w) / total;
        if (dest > 0) (cla.endpoints[i] as LocalityLbEndpoints).loadBalancingWeight = Math.ceil(dest);
      }
    }
    cla.endpoints = cla.endpoints.filter((_, i) => !mismatched.has(i));
    return;
  }
}
