import { z } from "zod";
import type { Resource } from "./resource.js";
import { withSpec } from "./schemas/common.js";
import { EndpointSliceBody, NamespaceSpec, PodSpec, PodStatus, ServiceSpec } from "./schemas/core.js";
import {
  DestinationRuleSpec,
  EnvoyFilterSpec,
  GatewaySpec,
  ServiceEntrySpec,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
  WorkloadGroupSpec,
} from "./schemas/networking.js";
import {
  AuthorizationPolicySpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
} from "./schemas/security.js";
import { TelemetrySpec } from "./schemas/telemetry.js";
import type { StandardSchemaV1 } from "./standard-schema.js";

/**
 * Everything meshlet needs to know about a kind: where it lives in the API (group, versions,
 * plural for REST paths), whether it is namespaced, and the schema its body must satisfy.
 * The schema sees the whole object; `apiVersion`, `kind` and `metadata` are checked before it.
 */
export interface KindDefinition {
  readonly kind: string;
  /** API group; `""` for the Kubernetes core group. */
  readonly group: string;
  /** Accepted versions, preferred first. */
  readonly versions: readonly string[];
  /** Lower-case plural used in REST paths (`virtualservices`). */
  readonly plural: string;
  readonly namespaced: boolean;
  readonly schema: StandardSchemaV1;
}

const NETWORKING = "networking.istio.io";
const SECURITY = "security.istio.io";
const TELEMETRY = "telemetry.istio.io";
const NETWORKING_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;
const SECURITY_VERSIONS = ["v1", "v1beta1"] as const;

const VirtualServiceBody = withSpec(VirtualServiceSpec);
const DestinationRuleBody = withSpec(DestinationRuleSpec);
const GatewayBody = withSpec(GatewaySpec);
const ServiceEntryBody = withSpec(ServiceEntrySpec);
const SidecarBody = withSpec(SidecarSpec);
const WorkloadEntryBody = withSpec(WorkloadEntrySpec);
const WorkloadGroupBody = withSpec(WorkloadGroupSpec);
const EnvoyFilterBody = withSpec(EnvoyFilterSpec);
const PeerAuthenticationBody = withSpec(PeerAuthenticationSpec);
const AuthorizationPolicyBody = withSpec(AuthorizationPolicySpec);
const RequestAuthenticationBody = withSpec(RequestAuthenticationSpec);
const TelemetryBody = withSpec(TelemetrySpec);
const ServiceBody = z.looseObject({ spec: ServiceSpec });
const PodBody = z.looseObject({ spec: PodSpec, status: PodStatus.optional() });
const NamespaceBody = z.looseObject({ spec: NamespaceSpec.optional() });

/** The kinds every `KindRegistry` starts with: the Istio API a mesh needs plus core registry kinds. */
export const builtinKinds: readonly KindDefinition[] = [
  {
    kind: "VirtualService",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "virtualservices",
    namespaced: true,
    schema: VirtualServiceBody,
  },
  {
    kind: "DestinationRule",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "destinationrules",
    namespaced: true,
    schema: DestinationRuleBody,
  },
  {
    kind: "Gateway",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "gateways",
    namespaced: true,
    schema: GatewayBody,
  },
  {
    kind: "ServiceEntry",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "serviceentries",
    namespaced: true,
    schema: ServiceEntryBody,
  },
  {
    kind: "Sidecar",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "sidecars",
    namespaced: true,
    schema: SidecarBody,
  },
  {
    kind: "WorkloadEntry",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "workloadentries",
    namespaced: true,
    schema: WorkloadEntryBody,
  },
  {
    kind: "WorkloadGroup",
    group: NETWORKING,
    versions: NETWORKING_VERSIONS,
    plural: "workloadgroups",
    namespaced: true,
    schema: WorkloadGroupBody,
  },
  {
    kind: "EnvoyFilter",
    group: NETWORKING,
    versions: ["v1alpha3"],
    plural: "envoyfilters",
    namespaced: true,
    schema: EnvoyFilterBody,
  },
  {
    kind: "PeerAuthentication",
    group: SECURITY,
    versions: SECURITY_VERSIONS,
    plural: "peerauthentications",
    namespaced: true,
    schema: PeerAuthenticationBody,
  },
  {
    kind: "AuthorizationPolicy",
    group: SECURITY,
    versions: SECURITY_VERSIONS,
    plural: "authorizationpolicies",
    namespaced: true,
    schema: AuthorizationPolicyBody,
  },
  {
    kind: "RequestAuthentication",
    group: SECURITY,
    versions: SECURITY_VERSIONS,
    plural: "requestauthentications",
    namespaced: true,
    schema: RequestAuthenticationBody,
  },
  {
    kind: "Telemetry",
    group: TELEMETRY,
    versions: ["v1", "v1alpha1"],
    plural: "telemetries",
    namespaced: true,
    schema: TelemetryBody,
  },
  { kind: "Service", group: "", versions: ["v1"], plural: "services", namespaced: true, schema: ServiceBody },
  {
    kind: "EndpointSlice",
    group: "discovery.k8s.io",
    versions: ["v1"],
    plural: "endpointslices",
    namespaced: true,
    schema: EndpointSliceBody,
  },
  { kind: "Pod", group: "", versions: ["v1"], plural: "pods", namespaced: true, schema: PodBody },
  {
    kind: "Namespace",
    group: "",
    versions: ["v1"],
    plural: "namespaces",
    namespaced: false,
    schema: NamespaceBody,
  },
];

/** `networking.istio.io` VirtualService. */
export type VirtualService = Resource<"VirtualService", z.infer<typeof VirtualServiceSpec>>;
/** `networking.istio.io` DestinationRule. */
export type DestinationRule = Resource<"DestinationRule", z.infer<typeof DestinationRuleSpec>>;
/** `networking.istio.io` Gateway. */
export type Gateway = Resource<"Gateway", z.infer<typeof GatewaySpec>>;
/** `networking.istio.io` ServiceEntry. */
export type ServiceEntry = Resource<"ServiceEntry", z.infer<typeof ServiceEntrySpec>>;
/** `networking.istio.io` Sidecar. */
export type Sidecar = Resource<"Sidecar", z.infer<typeof SidecarSpec>>;
/** `networking.istio.io` WorkloadEntry. */
export type WorkloadEntry = Resource<"WorkloadEntry", z.infer<typeof WorkloadEntrySpec>>;
/** `networking.istio.io` WorkloadGroup. */
export type WorkloadGroup = Resource<"WorkloadGroup", z.infer<typeof WorkloadGroupSpec>>;
/** `networking.istio.io` EnvoyFilter. */
export type EnvoyFilter = Resource<"EnvoyFilter", z.infer<typeof EnvoyFilterSpec>>;
/** `security.istio.io` PeerAuthentication. */
export type PeerAuthentication = Resource<"PeerAuthentication", z.infer<typeof PeerAuthenticationSpec>>;
/** `security.istio.io` AuthorizationPolicy. */
export type AuthorizationPolicy = Resource<"AuthorizationPolicy", z.infer<typeof AuthorizationPolicySpec>>;
/** `security.istio.io` RequestAuthentication. */
export type RequestAuthentication = Resource<
  "RequestAuthentication",
  z.infer<typeof RequestAuthenticationSpec>
>;
/** `telemetry.istio.io` Telemetry. */
export type Telemetry = Resource<"Telemetry", z.infer<typeof TelemetrySpec>>;
/** Core v1 Service. */
export type Service = Resource<"Service", z.infer<typeof ServiceSpec>>;
/** discovery.k8s.io/v1 EndpointSlice (its fields are top-level; `spec` is absent). */
export type EndpointSlice = Resource<"EndpointSlice", undefined> & z.infer<typeof EndpointSliceBody>;
/** Core v1 Pod. */
export type Pod = Resource<"Pod", z.infer<typeof PodSpec>> & { readonly status?: z.infer<typeof PodStatus> };
/** Core v1 Namespace. */
export type Namespace = Resource<"Namespace", z.infer<typeof NamespaceSpec> | undefined>;

/** Maps each built-in kind name to its TypeScript type, for typed snapshot lookups. */
export interface KnownKinds {
  VirtualService: VirtualService;
  DestinationRule: DestinationRule;
  Gateway: Gateway;
  ServiceEntry: ServiceEntry;
  Sidecar: Sidecar;
  WorkloadEntry: WorkloadEntry;
  WorkloadGroup: WorkloadGroup;
  EnvoyFilter: EnvoyFilter;
  PeerAuthentication: PeerAuthentication;
  AuthorizationPolicy: AuthorizationPolicy;
  RequestAuthentication: RequestAuthentication;
  Telemetry: Telemetry;
  Service: Service;
  EndpointSlice: EndpointSlice;
  Pod: Pod;
  Namespace: Namespace;
}
