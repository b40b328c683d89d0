import type {
  AuthorizationPolicy,
  DestinationRule,
  EndpointSlice,
  Gateway,
  Service as KubeService,
  PeerAuthentication,
  Pod,
  RequestAuthentication,
  Resource,
  ServiceEntry,
  Sidecar,
  VirtualService,
  WorkloadEntry,
  WorkloadGroup,
} from "@meshlet/config";

// The one place where @meshlet/mesh reads the shape of @meshlet/config's resource types. Spec types
// are derived from the exported resource types (never redefined), and the few fields those types
// do not declare (Kubernetes status and metadata details) are read here, so a change of the config
// schemas touches this file only.

/** `VirtualService.spec`. */
export type VirtualServiceSpec = VirtualService["spec"];
/** One `http` route of a VirtualService. */
export type HttpRoute = NonNullable<VirtualServiceSpec["http"]>[number];
/** One `match` of an HTTP route. */
export type HttpMatchRequest = NonNullable<HttpRoute["match"]>[number];
/** Istio `StringMatch` (`exact` | `prefix` | `regex`). */
export type StringMatch = NonNullable<HttpMatchRequest["uri"]>;
/** A weighted HTTP destination. */
export type HttpRouteDestination = NonNullable<HttpRoute["route"]>[number];
/** Istio `Destination`: host, subset, port. */
export type Destination = HttpRouteDestination["destination"];
/** One `tcp` route of a VirtualService. */
export type TcpRoute = NonNullable<VirtualServiceSpec["tcp"]>[number];
/** One `tls` route of a VirtualService. */
export type TlsRoute = NonNullable<VirtualServiceSpec["tls"]>[number];
/** `DestinationRule.spec`. */
export type DestinationRuleSpec = DestinationRule["spec"];
/** A DestinationRule subset. */
export type Subset = NonNullable<DestinationRuleSpec["subsets"]>[number];
/** A DestinationRule traffic policy. */
export type TrafficPolicy = NonNullable<DestinationRuleSpec["trafficPolicy"]>;
/** `Gateway.spec`. */
export type GatewaySpec = Gateway["spec"];
/** One Gateway server. */
export type GatewayServer = NonNullable<GatewaySpec["servers"]>[number];
/** `Sidecar.spec`. */
export type SidecarSpec = Sidecar["spec"];
/** One Sidecar egress listener. */
export type SidecarEgressListener = NonNullable<SidecarSpec["egress"]>[number];
/** `ServiceEntry.spec`. */
export type ServiceEntrySpec = ServiceEntry["spec"];
/** A ServiceEntry port. */
export type ServiceEntryPort = NonNullable<ServiceEntrySpec["ports"]>[number];
/** `WorkloadEntry.spec` (also ServiceEntry endpoints and WorkloadGroup templates). */
export type WorkloadEntrySpec = WorkloadEntry["spec"];
/** `WorkloadGroup.spec`. */
export type WorkloadGroupSpec = WorkloadGroup["spec"];
/** `PeerAuthentication.spec`. */
export type PeerAuthenticationSpec = PeerAuthentication["spec"];
/** `AuthorizationPolicy.spec`. */
export type AuthorizationPolicySpec = AuthorizationPolicy["spec"];
/** `RequestAuthentication.spec`. */
export type RequestAuthenticationSpec = RequestAuthentication["spec"];
/** A Kubernetes Service port. */
export type KubeServicePort = NonNullable<KubeService["spec"]["ports"]>[number];
/** An EndpointSlice endpoint. */
export type EndpointSliceEndpoint = NonNullable<EndpointSlice["endpoints"]>[number];

/**
 * The labels of an Istio workload selector. Istio's `networking` selectors (ServiceEntry, Sidecar,
 * EnvoyFilter) name the field `labels`; the `type.v1beta1` ones (DestinationRule, security
 * policies) name it `matchLabels`. Both spellings are accepted wherever a selector is read.
 */
export function selectorLabels(selector: object | undefined): Readonly<Record<string, string>> | undefined {
  if (selector === undefined) return undefined;
  const s = selector as {
    readonly matchLabels?: Readonly<Record<string, string>>;
    readonly labels?: Readonly<Record<string, string>>;
  };
  return s.labels ?? s.matchLabels;
}

/** `metadata.creationTimestamp` in ms since the epoch; undefined when absent or unparsable. */
export function creationTime(resource: Resource): number | undefined {
  const ts = resource.metadata.creationTimestamp;
  if (typeof ts !== "string") return undefined;
  const ms = Date.parse(ts);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `metadata.deletionTimestamp` is set: the object is being deleted. */
export function isTerminating(resource: Resource): boolean {
  return typeof resource.metadata.deletionTimestamp === "string";
}

/** The owner references of an object (kind and name). */
export function ownerReferences(resource: Resource): Array<{ kind: string; name: string }> {
  const refs = resource.metadata.ownerReferences;
  if (!Array.isArray(refs)) return [];
  return refs.flatMap((r) =>
    typeof r === "object" && r !== null && typeof r.kind === "string" && typeof r.name === "string"
      ? [{ kind: r.kind as string, name: r.name as string }]
      : [],
  );
}

/** Pod IPs from `status.podIPs` (or `status.podIP`). */
export function podIps(pod: Pod): string[] {
  const status = pod.status as { podIP?: unknown; podIPs?: unknown } | undefined;
  const list = status?.podIPs;
  if (Array.isArray(list)) {
    const ips = list.flatMap((e) => (typeof e?.ip === "string" && e.ip !== "" ? [e.ip as string] : []));
    if (ips.length > 0) return ips;
  }
  return typeof status?.podIP === "string" && status.podIP !== "" ? [status.podIP] : [];
}

/**
 * Whether a pod is ready: its `Ready` condition when present (`status.conditions`), otherwise phase
 * `Running` (config written by hand often has no conditions).
 */
export function podReady(pod: Pod): boolean {
  const status = pod.status as { phase?: unknown; conditions?: unknown } | undefined;
  const conditions = status?.conditions;
  if (Array.isArray(conditions)) {
    const ready = conditions.find((c) => c?.type === "Ready");
    if (ready !== undefined) return ready.status === "True";
  }
  return status?.phase === undefined || status.phase === "Running";
}

/** Whether a pod has finished (`Succeeded`/`Failed`): it has no endpoints. */
export function podFinished(pod: Pod): boolean {
  const phase = (pod.status as { phase?: unknown } | undefined)?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** The pod's service account (`spec.serviceAccountName`; Kubernetes admission defaults it to `default`). */
export function podServiceAccount(pod: Pod): string {
  const sa = pod.spec.serviceAccountName;
  return sa === undefined || sa === "" ? "default" : sa;
}

/** Named container ports of a pod: port name → container port. */
export function podNamedPorts(pod: Pod): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      const name = (p as { name?: unknown }).name;
      if (typeof name === "string" && name !== "") out.set(name, p.containerPort);
    }
  }
  return out;
}

/** Kubernetes Service fields beyond the ones @meshlet/config's schema declares. */
export function kubeServiceExtras(service: KubeService): {
  clusterIps: string[];
  publishNotReadyAddresses: boolean;
} {
  const spec = service.spec as { clusterIPs?: unknown; publishNotReadyAddresses?: unknown };
  return {
    clusterIps: Array.isArray(spec.clusterIPs) ? spec.clusterIPs.filter((s) => typeof s === "string") : [],
    publishNotReadyAddresses: spec.publishNotReadyAddresses === true,
  };
}
