import { DEFAULT_ISTIO_PROXY_VERSION, istioProxyImage } from "../istio-proxy-versions.js";
import type { LabelSelector } from "./label-selector.js";
import type { ProxyConfig } from "./proxy-config.js";

/** The proxy's compute resources (`global.proxy.resources` in Istio's values). */
export interface ProxyResources {
  readonly requests?: { readonly cpu?: string; readonly memory?: string };
  readonly limits?: { readonly cpu?: string; readonly memory?: string };
}

/**
 * What the injector puts into pods. Field names follow Istio's Helm values
 * (`values.global.proxy.*`, `meshConfig.defaultConfig`), so a reader of Istio's
 * injection-template.yaml finds the same knobs; defaults are Istio's, except that the control
 * plane addresses point at meshletd.
 */
export interface InjectorConfig {
  /** `enabled`: inject unless a pod opts out (the webhook's selectors choose namespaces). `disabled`: only pods that opt in. */
  readonly policy: "enabled" | "disabled";
  /** Templates applied when a pod names none with `inject.istio.io/templates` (default `["sidecar"]`). */
  readonly defaultTemplates: readonly string[];
  /** Namespaces never injected (Istio's: kube-system, kube-public, kube-node-lease, local-path-storage). */
  readonly ignoredNamespaces: readonly string[];
  /** Pods whose labels match any of these are not injected unless they opt in explicitly. */
  readonly neverInjectSelector: readonly LabelSelector[];
  /** Pods whose labels match any of these are injected unless they opt out explicitly. */
  readonly alwaysInjectSelector: readonly LabelSelector[];
  /** The `istio-proxy` image (`docker.io/istio/proxyv2:<pinned version>`). */
  readonly proxyImage: string;
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  readonly imagePullSecrets: readonly string[];
  /** `CA_ADDR`: where the agent sends its CSR (meshletd's Istio CA API, TLS, port 15012). */
  readonly caAddress: string;
  /**
   * The mesh-wide ProxyConfig (`meshConfig.defaultConfig`), merged under each pod's
   * `proxy.istio.io/config`; its `discoveryAddress` is where the agent opens ADS.
   */
  readonly defaultProxyConfig: ProxyConfig;
  /** `istio.io/rev` this injector serves; `""` is the default revision. */
  readonly revision: string;
  readonly clusterDomain: string;
  /** `ISTIO_META_CLUSTER_ID` (`global.multiCluster.clusterName`, default `Kubernetes`). */
  readonly clusterId: string;
  readonly trustDomain: string;
  /** `ISTIO_META_MESH_ID`; defaults to the trust domain, as Istio's template does. */
  readonly meshId?: string;
  readonly network?: string;
  /** Audience of the projected service-account token the agent presents to the CA. */
  readonly tokenAudience: string;
  readonly proxy: {
    readonly resources: ProxyResources;
    readonly logLevel: string;
    readonly componentLogLevel: string;
    /** The agent's own log level (`global.logging.level`). */
    readonly agentLogLevel: string;
    readonly statusPort: number;
    readonly readinessInitialDelaySeconds: number;
    readonly readinessPeriodSeconds: number;
    readonly readinessFailureThreshold: number;
    readonly includeIPRanges: string;
    readonly excludeIPRanges: string;
    readonly includeInboundPorts: string;
    readonly excludeInboundPorts: string;
    readonly includeOutboundPorts: string;
    readonly excludeOutboundPorts: string;
    readonly privileged: boolean;
    readonly capNetBindService: boolean;
    readonly enableCoreDump: boolean;
    readonly holdApplicationUntilProxyStarts: boolean;
  };
  /** Rewrite applications' HTTP/TCP/gRPC probes through the agent (needed under STRICT mTLS). */
  readonly rewriteAppHTTPProbe: boolean;
  /** Merge application metrics into the agent's `:15020/stats/prometheus` (Istio's default). */
  readonly enablePrometheusMerge: boolean;
  /** Extra annotations set on every injected pod. */
  readonly injectedAnnotations: Readonly<Record<string, string>>;
}

/** Namespaces Istio never injects (`pkg/kube/inject` `IgnoredNamespaces`). */
export const IGNORED_NAMESPACES: readonly string[] = [
  "kube-system",
  "kube-public",
  "kube-node-lease",
  "local-path-storage",
];

/** meshletd's Service as rendered by default: `meshletd.meshlet-system.svc`. */
export const DEFAULT_CONTROL_PLANE_HOST = "meshletd.meshlet-system.svc";

/**
 * The defaults: Istio's chart values (proxy resources 100m/128Mi requests, 2/1Gi limits, readiness
 * 1s/2s/30, `third-party-jwt` with audience `istio-ca`) with meshletd as discovery and CA address.
 */
export const DEFAULT_INJECTOR_CONFIG: InjectorConfig = {
  policy: "enabled",
  defaultTemplates: ["sidecar"],
  ignoredNamespaces: IGNORED_NAMESPACES,
  neverInjectSelector: [],
  alwaysInjectSelector: [],
  proxyImage: istioProxyImage(DEFAULT_ISTIO_PROXY_VERSION),
  imagePullSecrets: [],
  caAddress: `${DEFAULT_CONTROL_PLANE_HOST}:15012`,
  defaultProxyConfig: { discoveryAddress: `${DEFAULT_CONTROL_PLANE_HOST}:15012` },
  revision: "",
  clusterDomain: "cluster.local",
  clusterId: "Kubernetes",
  trustDomain: "cluster.local",
  tokenAudience: "istio-ca",
  proxy: {
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } },
    logLevel: "warning",
    componentLogLevel: "misc:error",
    agentLogLevel: "default:info",
    statusPort: 15020,
    readinessInitialDelaySeconds: 1,
    readinessPeriodSeconds: 2,
    readinessFailureThreshold: 30,
    includeIPRanges: "*",
    excludeIPRanges: "",
    includeInboundPorts: "*",
    excludeInboundPorts: "",
    includeOutboundPorts: "",
    excludeOutboundPorts: "",
    privileged: false,
    capNetBindService: false,
    enableCoreDump: false,
    holdApplicationUntilProxyStarts: false,
  },
  rewriteAppHTTPProbe: true,
  enablePrometheusMerge: true,
  injectedAnnotations: {},
};

/** A partial configuration: anything not given keeps its default. */
export type InjectorConfigInput = Partial<Omit<InjectorConfig, "proxy">> & {
  readonly proxy?: Partial<InjectorConfig["proxy"]>;
};

/** The defaults with `input` laid over them (`proxy` merged field by field). */
export function resolveInjectorConfig(input: InjectorConfigInput = {}): InjectorConfig {
  return {
    ...DEFAULT_INJECTOR_CONFIG,
    ...input,
    proxy: { ...DEFAULT_INJECTOR_CONFIG.proxy, ...input.proxy },
  };
}
