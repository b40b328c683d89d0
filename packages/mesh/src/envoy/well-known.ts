// Envoy extension names and Istio's fixed values the Envoy generators emit. Sources:
// envoyproxy/envoy (extension names in each extension's docs), istio/istio pkg/wellknown,
// pilot/pkg/xds/filters/filters.go, pilot/pkg/networking/util/util.go, pilot/pkg/networking/core/listener.go.

/** Envoy's extension names, as Istio spells them (istio/istio pkg/wellknown). */
export const Wellknown = {
  tlsInspector: "envoy.filters.listener.tls_inspector",
  httpInspector: "envoy.filters.listener.http_inspector",
  originalDst: "envoy.filters.listener.original_dst",
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  tcpProxy: "envoy.filters.network.tcp_proxy",
  networkRbac: "envoy.filters.network.rbac",
  networkExtAuthz: "envoy.filters.network.ext_authz",
  router: "envoy.filters.http.router",
  fault: "envoy.filters.http.fault",
  cors: "envoy.filters.http.cors",
  grpcStats: "envoy.filters.http.grpc_stats",
  grpcWeb: "envoy.filters.http.grpc_web",
  httpRbac: "envoy.filters.http.rbac",
  httpExtAuthz: "envoy.filters.http.ext_authz",
  jwtAuthn: "envoy.filters.http.jwt_authn",
  rateLimit: "envoy.filters.http.ratelimit",
  tlsTransportSocket: "envoy.transport_sockets.tls",
  rawBufferTransportSocket: "envoy.transport_sockets.raw_buffer",
  fileAccessLog: "envoy.access_loggers.file",
  httpGrpcAccessLog: "envoy.access_loggers.http_grpc",
  tcpGrpcAccessLog: "envoy.access_loggers.tcp_grpc",
  otelAccessLog: "envoy.access_loggers.open_telemetry",
  otelTracer: "envoy.tracers.opentelemetry",
  previousHosts: "envoy.retry_host_predicates.previous_hosts",
  /** Istio's peer metadata exchange (HTTP filter, TCP network and cluster filter). */
  metadataExchange: "istio.metadata_exchange",
  /** Istio's ALPN override filter (outbound). */
  alpn: "istio.alpn",
  /** Istio's standard metrics filter (HTTP and network). */
  stats: "istio.stats",
} as const;

/** `filter_chain_match.transport_protocol` values (Istio `TLSTransportProtocol`, `RawBufferTransportProtocol`). */
export const TransportProtocol = { tls: "tls", rawBuffer: "raw_buffer" } as const;

/** ALPN sets Istio matches and sends (istio/istio pilot/pkg/networking/core/listener.go, util/util.go). */
export const Alpn = {
  /** What the HTTP inspector detects on plaintext (`plaintextHTTPALPNs`, `HTTP10` off). */
  plaintextHttp: ["http/1.1", "h2c"],
  /** What a client sidecar sends over Istio mTLS for HTTP (`mtlsHTTPALPNs`). */
  mtlsHttp: ["istio-http/1.0", "istio-http/1.1", "istio-h2"],
  /** Every Istio mTLS ALPN (`allIstioMtlsALPNs`). */
  allIstioMtls: ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"],
  /** TCP over Istio mTLS with metadata exchange (`mtlsTCPWithMxcALPNs`). */
  mtlsTcpWithMxc: ["istio-peer-exchange", "istio"],
  /** Server ALPN of an HTTP mTLS chain (`util.ALPNHttp`). */
  http: ["h2", "http/1.1"],
  /** Server ALPN of a TCP mTLS chain with metadata exchange (`util.ALPNDownstreamWithMxc`). */
  downstreamWithMxc: ["istio-peer-exchange", "h2", "http/1.1"],
  /** Client ALPN of an ISTIO_MUTUAL cluster for TCP (`util.ALPNInMeshWithMxc`). */
  inMeshWithMxc: ["istio-peer-exchange", "istio"],
} as const;

/**
 * Cipher suites Istio allows on sidecar mTLS servers (istio/istio pilot/pkg/security/authn/utils
 * `SupportedCiphers`).
 */
export const SUPPORTED_CIPHERS: readonly string[] = [
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "AES256-GCM-SHA384",
  "AES128-GCM-SHA256",
];

/** The cluster the Istio agent serves SDS on, named in every workload SDS config (Istio `SDSClusterName`). */
export const SDS_CLUSTER = "sds-grpc";
/** SDS resource-name suffix of a credential's CA (Istio `SdsCaSuffix`). */
export const SDS_CA_SUFFIX = "-cacert";
/** Prefix Istio gives a `credentialName` in SDS (`credentials.KubernetesSecretTypeURI`). */
export const KUBERNETES_SECRET_PREFIX = "kubernetes://";
/** The server name inbound HTTP sets (Istio `EnvoyServerName`). */
export const ENVOY_SERVER_NAME = "istio-envoy";
/** Istio's `DefaultMaxDirectResponseBodySizeBytes` (1 MiB). */
export const MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024;
/** Filter metadata key Istio uses on config objects (`util.IstioMetadataKey`). */
export const ISTIO_METADATA_KEY = "istio";
