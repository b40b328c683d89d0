/**
 * An extension provider of MeshConfig `extensionProviders` (field names as in Istio's MeshConfig
 * reference, `istio.mesh.v1alpha1`). Exactly one provider field is set; meshlet reads the ones its
 * generators support and keeps the others as written.
 */
export interface ExtensionProvider {
  readonly name: string;
  readonly envoyExtAuthzGrpc?: {
    readonly service: string;
    readonly port: number;
    readonly timeout?: string;
    readonly failOpen?: boolean;
    readonly statusOnError?: string;
    readonly includeRequestBodyInCheck?: Readonly<Record<string, unknown>>;
    readonly [field: string]: unknown;
  };
  readonly envoyExtAuthzHttp?: {
    readonly service: string;
    readonly port: number;
    readonly timeout?: string;
    readonly pathPrefix?: string;
    readonly failOpen?: boolean;
    readonly includeRequestHeadersInCheck?: readonly string[];
    readonly headersToUpstreamOnAllow?: readonly string[];
    readonly headersToDownstreamOnDeny?: readonly string[];
    readonly [field: string]: unknown;
  };
  readonly envoyFileAccessLog?: {
    readonly path: string;
    readonly logFormat?: Readonly<Record<string, unknown>>;
  };
  readonly envoyHttpAls?: { readonly service: string; readonly port: number; readonly logName?: string };
  readonly envoyTcpAls?: { readonly service: string; readonly port: number; readonly logName?: string };
  readonly envoyOtelAls?: { readonly service: string; readonly port: number; readonly logName?: string };
  readonly opentelemetry?: {
    readonly service: string;
    readonly port: number;
    readonly [field: string]: unknown;
  };
  readonly zipkin?: { readonly service: string; readonly port: number; readonly [field: string]: unknown };
  readonly prometheus?: Readonly<Record<string, unknown>>;
  readonly [provider: string]: unknown;
}

/**
 * The mesh-wide settings generators read: a subset of Istio's MeshConfig with Istio's names and
 * defaults (istio/istio pkg/config/mesh/mesh.go `DefaultMeshConfig`; istio.io
 * docs/reference/config/istio.mesh.v1alpha1). `domainSuffix` is istiod's `--domain` flag, not a
 * MeshConfig field. There is no mesh-wide mTLS mode field in Istio: without PeerAuthentication the
 * mode is PERMISSIVE, and a PeerAuthentication in `rootNamespace` sets it mesh-wide.
 */
export interface MeshConfig {
  /** Namespace whose Sidecar/PeerAuthentication/AuthorizationPolicy/… apply mesh-wide (`istio-system`). */
  readonly rootNamespace: string;
  /** Trust domain of workload identities (`cluster.local`). */
  readonly trustDomain: string;
  /** Other trust domains accepted as this one (`[]`). */
  readonly trustDomainAliases: readonly string[];
  /** Cluster DNS domain of Kubernetes service hosts (`cluster.local`). */
  readonly domainSuffix: string;
  /** Clients send Istio mTLS to endpoints labelled `security.istio.io/tlsMode: istio` (`true`). */
  readonly enableAutoMtls: boolean;
  /** `ALLOW_ANY` (default) forwards traffic to unknown hosts; `REGISTRY_ONLY` blocks it. */
  readonly outboundTrafficPolicy: { readonly mode: "ALLOW_ANY" | "REGISTRY_ONLY" };
  /** `exportTo` of Services/ServiceEntries that set none (`["*"]`). */
  readonly defaultServiceExportTo: readonly string[];
  /** `exportTo` of VirtualServices that set none (`["*"]`). */
  readonly defaultVirtualServiceExportTo: readonly string[];
  /** `exportTo` of DestinationRules that set none (`["*"]`). */
  readonly defaultDestinationRuleExportTo: readonly string[];
  /** Envoy access log path; `""` disables it (`/dev/stdout` logs to the proxy's stdout). */
  readonly accessLogFile: string;
  /** `TEXT` (default) or `JSON`. */
  readonly accessLogEncoding: "TEXT" | "JSON";
  /** Access log format; `""` uses Istio's default format. */
  readonly accessLogFormat: string;
  /** Generate trace spans (`true`). */
  readonly enableTracing: boolean;
  /** Upstream connect timeout (`10s`). */
  readonly connectTimeout: string;
  /** Outbound capture port (`15001`). */
  readonly proxyListenPort: number;
  /** Inbound capture port (`15006`). */
  readonly proxyInboundListenPort: number;
  /** Named providers for ext_authz (AuthorizationPolicy CUSTOM), access logs, tracing, metrics. */
  readonly extensionProviders: readonly ExtensionProvider[];
  /**
   * Retry policy of HTTP routes whose VirtualService sets none (Istio `defaultHttpRetryPolicy`, an
   * `HTTPRetry`); unset = Istio's built-in default (2 attempts).
   */
  readonly defaultHttpRetryPolicy?: Readonly<Record<string, unknown>>;
  /** Providers used when Telemetry names none. */
  readonly defaultProviders: {
    readonly metrics?: readonly string[];
    readonly tracing?: readonly string[];
    readonly accessLogging?: readonly string[];
  };
}

/** A MeshConfig with Istio's defaults for every field not given. */
export function meshConfig(overrides: Partial<MeshConfig> = {}): MeshConfig {
  return Object.freeze({
    rootNamespace: "istio-system",
    trustDomain: "cluster.local",
    trustDomainAliases: [],
    domainSuffix: "cluster.local",
    enableAutoMtls: true,
    outboundTrafficPolicy: { mode: "ALLOW_ANY" },
    defaultServiceExportTo: ["*"],
    defaultVirtualServiceExportTo: ["*"],
    defaultDestinationRuleExportTo: ["*"],
    accessLogFile: "",
    accessLogEncoding: "TEXT",
    accessLogFormat: "",
    enableTracing: true,
    connectTimeout: "10s",
    proxyListenPort: 15001,
    proxyInboundListenPort: 15006,
    extensionProviders: [],
    defaultProviders: {},
    ...overrides,
  } satisfies MeshConfig);
}
