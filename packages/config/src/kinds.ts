import type { IWasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import type { IGateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway";
import type { IServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import type { ISidecar } from "@kubernetes-models/istio/networking.istio.io/v1/Sidecar";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import type { IWorkloadEntry } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry";
import type { IWorkloadGroup } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadGroup";
import type { IEnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter";
import type { IProxyConfig } from "@kubernetes-models/istio/networking.istio.io/v1beta1/ProxyConfig";
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import type { IPeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import type { IRequestAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication";
import type { ITelemetry } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IReplicaSet } from "kubernetes-models/apps/v1/ReplicaSet";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { ICronJob } from "kubernetes-models/batch/v1/CronJob";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IEndpointSlice } from "kubernetes-models/discovery.k8s.io/v1/EndpointSlice";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IPod } from "kubernetes-models/v1/Pod";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { Resource } from "./resource.js";
import { telemetryRules, wasmPluginRules } from "./rules/extension-rules.js";
import type { Findings, RuleIssue } from "./rules/findings.js";
import { endpointSliceRules, podTemplateRules } from "./rules/kubernetes-rules.js";
import {
  destinationRuleRules,
  envoyFilterRules,
  gatewayRules,
  proxyConfigRules,
  serviceEntryRules,
  sidecarRules,
  virtualServiceRules,
  workloadEntryRules,
  workloadGroupRules,
} from "./rules/networking-rules.js";
import {
  authorizationPolicyRules,
  peerAuthenticationRules,
  requestAuthenticationRules,
} from "./rules/security-rules.js";
import { fieldTreeOf } from "./schema/unknown-fields.js";
import { upstreamSchema } from "./schema/upstream-schema.js";
import { upstreamValidators } from "./schema/upstream-validators.js";
import type { StandardSchemaV1 } from "./standard-schema.js";

export type { RuleIssue } from "./rules/findings.js";

/**
 * Everything meshlet needs to know about a kind: where it lives in the API (group, versions,
 * plural for REST paths), whether it is namespaced, the schema its body must satisfy, and the rules
 * beyond the schema. The schema sees the whole object; `apiVersion`, `kind` and `metadata` identity
 * are checked before it.
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
  /**
   * Rules the schema cannot express (for Istio kinds: its admission webhook's validation), run once
   * the schema passes. Errors keep the resource out; warnings are reported and the resource is kept.
   */
  readonly rules?: (resource: Resource) => readonly RuleIssue[];
}

const NETWORKING = "networking.istio.io";
const SECURITY = "security.istio.io";
const TELEMETRY = "telemetry.istio.io";
const EXTENSIONS = "extensions.istio.io";
/** The API groups of Istio's CRDs: an unknown kind in one of these is an error, not a skipped kind. */
export const ISTIO_GROUPS: readonly string[] = [NETWORKING, SECURITY, TELEMETRY, EXTENSIONS];
const NETWORKING_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;
const SECURITY_VERSIONS = ["v1", "v1beta1"] as const;

function upstream(group: string, kind: string, rules?: (r: Resource) => Findings) {
  const key = group === "" ? kind : `${group}/${kind}`;
  const validate = upstreamValidators[key];
  const root = fieldTreeOf(key);
  if (validate === undefined || root === undefined) throw new Error(`no upstream schema for ${key}`);
  return {
    schema: upstreamSchema(validate, root, key),
    ...(rules !== undefined ? { rules: (r: Resource) => rules(r).issues } : {}),
  };
}

function istio(
  group: string,
  kind: string,
  plural: string,
  versions: readonly string[],
  rules: (r: Resource) => Findings,
): KindDefinition {
  return { kind, group, versions, plural, namespaced: true, ...upstream(group, kind, rules) };
}

function kube(
  group: string,
  kind: string,
  plural: string,
  options: { namespaced?: boolean; rules?: (r: Resource) => Findings } = {},
): KindDefinition {
  return {
    kind,
    group,
    versions: ["v1"],
    plural,
    namespaced: options.namespaced ?? true,
    ...upstream(group, kind, options.rules),
  };
}

/**
 * The kinds every `KindRegistry` starts with: all of Istio's configuration kinds, checked against
 * Istio's published CRD schemas plus Istio's validation rules, and the Kubernetes kinds a mesh reads
 * (Services, EndpointSlices, Pods and the workloads that template them, ServiceAccounts, Secrets,
 * ConfigMaps, Namespaces), checked against Kubernetes' own OpenAPI schemas.
 */
export const builtinKinds: readonly KindDefinition[] = [
  istio(NETWORKING, "VirtualService", "virtualservices", NETWORKING_VERSIONS, virtualServiceRules),
  istio(NETWORKING, "DestinationRule", "destinationrules", NETWORKING_VERSIONS, destinationRuleRules),
  istio(NETWORKING, "Gateway", "gateways", NETWORKING_VERSIONS, gatewayRules),
  istio(NETWORKING, "ServiceEntry", "serviceentries", NETWORKING_VERSIONS, serviceEntryRules),
  istio(NETWORKING, "Sidecar", "sidecars", NETWORKING_VERSIONS, sidecarRules),
  istio(NETWORKING, "WorkloadEntry", "workloadentries", NETWORKING_VERSIONS, workloadEntryRules),
  istio(NETWORKING, "WorkloadGroup", "workloadgroups", NETWORKING_VERSIONS, workloadGroupRules),
  istio(NETWORKING, "EnvoyFilter", "envoyfilters", ["v1alpha3"], envoyFilterRules),
  istio(NETWORKING, "ProxyConfig", "proxyconfigs", ["v1beta1"], proxyConfigRules),
  istio(SECURITY, "PeerAuthentication", "peerauthentications", SECURITY_VERSIONS, peerAuthenticationRules),
  istio(
    SECURITY,
    "AuthorizationPolicy",
    "authorizationpolicies",
    SECURITY_VERSIONS,
    authorizationPolicyRules,
  ),
  istio(
    SECURITY,
    "RequestAuthentication",
    "requestauthentications",
    SECURITY_VERSIONS,
    requestAuthenticationRules,
  ),
  istio(TELEMETRY, "Telemetry", "telemetries", ["v1", "v1alpha1"], telemetryRules),
  istio(EXTENSIONS, "WasmPlugin", "wasmplugins", ["v1alpha1"], wasmPluginRules),
  kube("", "Service", "services"),
  kube("discovery.k8s.io", "EndpointSlice", "endpointslices", { rules: endpointSliceRules }),
  kube("", "Pod", "pods", { rules: podTemplateRules }),
  kube("", "Namespace", "namespaces", { namespaced: false }),
  kube("", "ServiceAccount", "serviceaccounts"),
  kube("", "Secret", "secrets"),
  kube("", "ConfigMap", "configmaps"),
  kube("apps", "Deployment", "deployments", { rules: podTemplateRules }),
  kube("apps", "StatefulSet", "statefulsets", { rules: podTemplateRules }),
  kube("apps", "DaemonSet", "daemonsets", { rules: podTemplateRules }),
  kube("apps", "ReplicaSet", "replicasets", { rules: podTemplateRules }),
  kube("batch", "Job", "jobs", { rules: podTemplateRules }),
  kube("batch", "CronJob", "cronjobs", { rules: podTemplateRules }),
];

type Spec<T extends { spec?: unknown }> = NonNullable<T["spec"]>;

/** `VirtualService.spec` as Istio's CRD schema defines it. */
export type VirtualServiceSpec = Spec<IVirtualService>;
/** `DestinationRule.spec` as Istio's CRD schema defines it. */
export type DestinationRuleSpec = Spec<IDestinationRule>;
/** `Gateway.spec` as Istio's CRD schema defines it. */
export type GatewaySpec = Spec<IGateway>;
/** `ServiceEntry.spec` as Istio's CRD schema defines it. */
export type ServiceEntrySpec = Spec<IServiceEntry>;
/** `Sidecar.spec` as Istio's CRD schema defines it. */
export type SidecarSpec = Spec<ISidecar>;
/** `WorkloadEntry.spec` as Istio's CRD schema defines it. */
export type WorkloadEntrySpec = Spec<IWorkloadEntry>;
/** `WorkloadGroup.spec` as Istio's CRD schema defines it. */
export type WorkloadGroupSpec = Spec<IWorkloadGroup>;
/** `EnvoyFilter.spec` as Istio's CRD schema defines it. */
export type EnvoyFilterSpec = Spec<IEnvoyFilter>;
/** `ProxyConfig.spec` as Istio's CRD schema defines it. */
export type ProxyConfigSpec = Spec<IProxyConfig>;
/** `PeerAuthentication.spec` as Istio's CRD schema defines it. */
export type PeerAuthenticationSpec = Spec<IPeerAuthentication>;
/** `AuthorizationPolicy.spec` as Istio's CRD schema defines it. */
export type AuthorizationPolicySpec = Spec<IAuthorizationPolicy>;
/** One entry of `AuthorizationPolicy.spec.rules`. */
export type AuthorizationPolicyRule = NonNullable<AuthorizationPolicySpec["rules"]>[number];
/** `rules[].from[].source` of an AuthorizationPolicy. */
export type AuthorizationPolicySource = NonNullable<
  NonNullable<AuthorizationPolicyRule["from"]>[number]["source"]
>;
/** `rules[].to[].operation` of an AuthorizationPolicy. */
export type AuthorizationPolicyOperation = NonNullable<
  NonNullable<AuthorizationPolicyRule["to"]>[number]["operation"]
>;
/** `rules[].when[]` of an AuthorizationPolicy. */
export type AuthorizationPolicyCondition = NonNullable<AuthorizationPolicyRule["when"]>[number];
/** `RequestAuthentication.spec` as Istio's CRD schema defines it. */
export type RequestAuthenticationSpec = Spec<IRequestAuthentication>;
/** One entry of `RequestAuthentication.spec.jwtRules`. */
export type JwtRule = NonNullable<RequestAuthenticationSpec["jwtRules"]>[number];
/** `Telemetry.spec` as Istio's CRD schema defines it. */
export type TelemetrySpec = Spec<ITelemetry>;
/** `WasmPlugin.spec` as Istio's CRD schema defines it. */
export type WasmPluginSpec = Spec<IWasmPlugin>;

/** `networking.istio.io` VirtualService. */
export type VirtualService = Resource<"VirtualService", VirtualServiceSpec>;
/** `networking.istio.io` DestinationRule. */
export type DestinationRule = Resource<"DestinationRule", DestinationRuleSpec>;
/** `networking.istio.io` Gateway. */
export type Gateway = Resource<"Gateway", GatewaySpec>;
/** `networking.istio.io` ServiceEntry. */
export type ServiceEntry = Resource<"ServiceEntry", ServiceEntrySpec>;
/** `networking.istio.io` Sidecar. */
export type Sidecar = Resource<"Sidecar", SidecarSpec>;
/** `networking.istio.io` WorkloadEntry. */
export type WorkloadEntry = Resource<"WorkloadEntry", WorkloadEntrySpec>;
/** `networking.istio.io` WorkloadGroup. */
export type WorkloadGroup = Resource<"WorkloadGroup", WorkloadGroupSpec>;
/** `networking.istio.io` EnvoyFilter. */
export type EnvoyFilter = Resource<"EnvoyFilter", EnvoyFilterSpec>;
/** `networking.istio.io` ProxyConfig. */
export type ProxyConfig = Resource<"ProxyConfig", ProxyConfigSpec>;
/** `security.istio.io` PeerAuthentication. */
export type PeerAuthentication = Resource<"PeerAuthentication", PeerAuthenticationSpec>;
/** `security.istio.io` AuthorizationPolicy. */
export type AuthorizationPolicy = Resource<"AuthorizationPolicy", AuthorizationPolicySpec>;
/** `security.istio.io` RequestAuthentication. */
export type RequestAuthentication = Resource<"RequestAuthentication", RequestAuthenticationSpec>;
/** `telemetry.istio.io` Telemetry. */
export type Telemetry = Resource<"Telemetry", TelemetrySpec>;
/** `extensions.istio.io` WasmPlugin. */
export type WasmPlugin = Resource<"WasmPlugin", WasmPluginSpec>;
/** Core v1 Service. */
export type Service = Resource<"Service", Spec<IService>>;
/** discovery.k8s.io/v1 EndpointSlice (its fields are top-level; `spec` is absent). */
export type EndpointSlice = Resource<"EndpointSlice", undefined> &
  Omit<IEndpointSlice, "metadata" | "kind" | "apiVersion">;
/** Core v1 Pod. */
export type Pod = Resource<"Pod", Spec<IPod>> & { readonly status?: IPod["status"] };
/** Core v1 Namespace. */
export type Namespace = Resource<"Namespace", INamespace["spec"]>;
/** Core v1 ServiceAccount (no `spec`). */
export type ServiceAccount = Resource<"ServiceAccount", undefined> &
  Omit<IServiceAccount, "metadata" | "kind" | "apiVersion">;
/** Core v1 Secret (no `spec`). */
export type Secret = Resource<"Secret", undefined> & Omit<ISecret, "metadata" | "kind" | "apiVersion">;
/** Core v1 ConfigMap (no `spec`). */
export type ConfigMap = Resource<"ConfigMap", undefined> &
  Omit<IConfigMap, "metadata" | "kind" | "apiVersion">;
/** apps/v1 Deployment. */
export type Deployment = Resource<"Deployment", Spec<IDeployment>>;
/** apps/v1 StatefulSet. */
export type StatefulSet = Resource<"StatefulSet", Spec<IStatefulSet>>;
/** apps/v1 DaemonSet. */
export type DaemonSet = Resource<"DaemonSet", Spec<IDaemonSet>>;
/** apps/v1 ReplicaSet. */
export type ReplicaSet = Resource<"ReplicaSet", Spec<IReplicaSet>>;
/** batch/v1 Job. */
export type Job = Resource<"Job", Spec<IJob>>;
/** batch/v1 CronJob. */
export type CronJob = Resource<"CronJob", Spec<ICronJob>>;

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
  ProxyConfig: ProxyConfig;
  PeerAuthentication: PeerAuthentication;
  AuthorizationPolicy: AuthorizationPolicy;
  RequestAuthentication: RequestAuthentication;
  Telemetry: Telemetry;
  WasmPlugin: WasmPlugin;
  Service: Service;
  EndpointSlice: EndpointSlice;
  Pod: Pod;
  Namespace: Namespace;
  ServiceAccount: ServiceAccount;
  Secret: Secret;
  ConfigMap: ConfigMap;
  Deployment: Deployment;
  StatefulSet: StatefulSet;
  DaemonSet: DaemonSet;
  ReplicaSet: ReplicaSet;
  Job: Job;
  CronJob: CronJob;
}
