import { create } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  CircuitBreakers_ThresholdsSchema,
  CircuitBreakersSchema,
} from "@meshlet/api/envoy/config/cluster/v3/circuit_breaker_pb";
import {
  type Cluster,
  Cluster_CommonLbConfig_LocalityWeightedLbConfigSchema,
  Cluster_CommonLbConfigSchema,
  Cluster_DiscoveryType,
  Cluster_EdsClusterConfigSchema,
  Cluster_LbPolicy,
  Cluster_LeastRequestLbConfigSchema,
  Cluster_MaglevLbConfigSchema,
  Cluster_RingHashLbConfigSchema,
  Cluster_RoundRobinLbConfigSchema,
  Cluster_SlowStartConfigSchema,
  Cluster_TransportSocketMatchSchema,
  ClusterSchema,
  UpstreamConnectionOptionsSchema,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { OutlierDetectionSchema } from "@meshlet/api/envoy/config/cluster/v3/outlier_detection_pb";
import { TcpKeepaliveSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { ApiVersion, ConfigSourceSchema } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import {
  HttpProtocolOptionsSchema as CoreHttpProtocolOptionsSchema,
  Http2ProtocolOptionsSchema,
} from "@meshlet/api/envoy/config/core/v3/protocol_pb";
import { RawBufferSchema } from "@meshlet/api/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb";
import {
  type HttpProtocolOptions,
  HttpProtocolOptions_ExplicitHttpConfigSchema,
  HttpProtocolOptions_UseDownstreamHttpConfigSchema,
  HttpProtocolOptionsSchema,
} from "@meshlet/api/envoy/extensions/upstreams/http/v3/http_protocol_options_pb";
import { PercentSchema } from "@meshlet/api/envoy/type/v3/percent_pb";
import type { ResourceKey } from "@meshlet/config";
import { isHttp2Protocol } from "../model/protocol.js";
import type { Service, ServicePort } from "../model/service.js";
import { outboundClusterName, outboundSni } from "../naming/cluster-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { ConsolidatedDestinationRule } from "../push/destination-rules.js";
import type { PushContext } from "../push/push-context.js";
import type { MtlsMode } from "../push/security-policies.js";
import type { LbPolicyName, ProxyCapabilities } from "./capabilities.js";
import {
  duration,
  durationSeconds,
  type IstioClientTls,
  type IstioConnectionPool,
  type IstioConsistentHash,
  type IstioLoadBalancer,
  type IstioOutlierDetection,
  type IstioTrafficPolicy,
  num,
  view,
} from "./istio-fields.js";
import { tlsTransportSocket, upstreamTlsContext } from "./tls.js";
import { ignoreWarnings, type WarningSink } from "./warnings.js";

// DestinationRule traffic policy → Cluster, as Istio builds clusters for Envoy
// (istio/istio pilot/pkg/networking/core/cluster_builder.go, cluster_traffic_policy.go,
// cluster_tls.go: MergeTrafficPolicy, applyTrafficPolicy, applyConnectionPool, applyLoadBalancer,
// applyOutlierDetection, ApplyRingHashLoadBalancer, buildUpstreamTLSSettings) and for proxyless
// gRPC (pilot/pkg/networking/grpcgen/cds.go: EDS clusters with TLS ISTIO_MUTUAL, ROUND_ROBIN,
// LEAST_REQUEST or RING_HASH, and `http2MaxRequests` as the only circuit breaker). What the proxy
// would reject (per `capabilities`) is left out with a warning.

/** The typed_extension_protocol_options key of upstream HTTP options. */
export const HTTP_PROTOCOL_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** What clusters are translated for. */
export interface ClusterContext {
  readonly push: PushContext;
  /** The client proxy (whose DestinationRule applies; its locality for locality load balancing). */
  readonly proxy: Proxy;
  /** What the proxy accepts. */
  readonly capabilities: ProxyCapabilities;
  /** Where left-out features are reported. */
  readonly warn?: WarningSink;
}

/**
 * A cluster being built and the upstream HTTP protocol options that go with it (Istio's
 * `clusterWrapper`); {@link finishCluster} packs the options into `typed_extension_protocol_options`.
 */
export interface ClusterBuild {
  readonly cluster: Cluster;
  httpProtocolOptions?: HttpProtocolOptions;
}

/**
 * An EDS cluster whose endpoints come over ADS under its own name. Envoy flavour (Istio
 * `buildDefaultCluster`): `alt_stat_name` `<name>;`, an empty `common_lb_config`, an initial fetch
 * timeout of 0s and resource API V3 on the EDS config source. gRPC flavour (grpcgen `edsCluster`):
 * just the name, the type and `eds_config: { ads: {} }`.
 */
export function edsCluster(name: string, caps: Pick<ProxyCapabilities, "clusterDefaults">): Cluster {
  if (!caps.clusterDefaults) {
    return create(ClusterSchema, {
      name,
      clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.EDS },
      edsClusterConfig: create(Cluster_EdsClusterConfigSchema, {
        serviceName: name,
        edsConfig: create(ConfigSourceSchema, { configSourceSpecifier: { case: "ads", value: {} } }),
      }),
    });
  }
  return create(ClusterSchema, {
    name,
    altStatName: `${name};`,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.EDS },
    commonLbConfig: create(Cluster_CommonLbConfigSchema, {}),
    edsClusterConfig: create(Cluster_EdsClusterConfigSchema, {
      serviceName: name,
      edsConfig: create(ConfigSourceSchema, {
        configSourceSpecifier: { case: "ads", value: {} },
        initialFetchTimeout: create(DurationSchema, {}),
        resourceApiVersion: ApiVersion.V3,
      }),
    }),
  });
}

/**
 * Istio `MergeTrafficPolicy`: the subset's (or the rule's) connection pool, load balancer, outlier
 * detection, TLS, tunnel and proxy protocol override the original's one by one; then a port-level
 * setting for `port` replaces connection pool, outlier detection, load balancer and TLS entirely
 * (port-level settings do not inherit: an unset field there means the default).
 */
export function mergeTrafficPolicy(
  original: IstioTrafficPolicy | undefined,
  subsetPolicy: IstioTrafficPolicy | undefined,
  port: number | undefined,
): IstioTrafficPolicy | undefined {
  if (subsetPolicy === undefined) return original;
  const base =
    original !== undefined && (original.portLevelSettings?.length ?? 0) > 0
      ? mergeTrafficPolicy(undefined, original, port)
      : original;
  const merged: {
    -readonly [K in keyof IstioTrafficPolicy]: IstioTrafficPolicy[K];
  } = {
    ...(base?.connectionPool !== undefined ? { connectionPool: base.connectionPool } : {}),
    ...(base?.loadBalancer !== undefined ? { loadBalancer: base.loadBalancer } : {}),
    ...(base?.outlierDetection !== undefined ? { outlierDetection: base.outlierDetection } : {}),
    ...(base?.tls !== undefined ? { tls: base.tls } : {}),
    ...(base?.tunnel !== undefined ? { tunnel: base.tunnel } : {}),
    ...(base?.proxyProtocol !== undefined ? { proxyProtocol: base.proxyProtocol } : {}),
  };
  if (subsetPolicy.connectionPool !== undefined) merged.connectionPool = subsetPolicy.connectionPool;
  if (subsetPolicy.outlierDetection !== undefined) merged.outlierDetection = subsetPolicy.outlierDetection;
  if (subsetPolicy.loadBalancer !== undefined) merged.loadBalancer = subsetPolicy.loadBalancer;
  if (subsetPolicy.tls !== undefined) merged.tls = subsetPolicy.tls;
  if (subsetPolicy.tunnel !== undefined) merged.tunnel = subsetPolicy.tunnel;
  if (subsetPolicy.proxyProtocol !== undefined) merged.proxyProtocol = subsetPolicy.proxyProtocol;
  if (port !== undefined) {
    const pls = (subsetPolicy.portLevelSettings ?? []).find((p) => p.port?.number === port);
    if (pls !== undefined) {
      delete merged.connectionPool;
      delete merged.outlierDetection;
      delete merged.loadBalancer;
      delete merged.tls;
      if (pls.connectionPool !== undefined) merged.connectionPool = pls.connectionPool;
      if (pls.outlierDetection !== undefined) merged.outlierDetection = pls.outlierDetection;
      if (pls.loadBalancer !== undefined) merged.loadBalancer = pls.loadBalancer;
      if (pls.tls !== undefined) merged.tls = pls.tls;
    }
  }
  return merged;
}

/**
 * The traffic policy of one cluster (Istio `applyDestinationRule`): the rule's policy merged for the
 * port, then, for a subset, the subset's policy merged over it.
 */
export function clusterTrafficPolicy(
  rule: ConsolidatedDestinationRule | undefined,
  port: number,
  subset = "",
): IstioTrafficPolicy | undefined {
  const top = mergeTrafficPolicy(undefined, view<IstioTrafficPolicy>(rule?.spec.trafficPolicy), port);
  if (subset === "") return top;
  const s = (rule?.spec.subsets ?? []).find((x) => x.name === subset);
  return mergeTrafficPolicy(top, view<IstioTrafficPolicy>(s?.trafficPolicy), port);
}

/**
 * The identities a client expects of a service port's endpoints, as Istio's `push.ServiceAccounts`
 * does: the service's own (annotations, ServiceEntry `subjectAltNames`; bare names in the trust
 * domain as `spiffe://<td>/ns/<ns>/sa/<name>` only when already SPIFFE IDs) plus each endpoint's,
 * sorted and unique.
 */
export function serviceAccountsFor(push: PushContext, service: Service, port: number): string[] {
  const out = new Set<string>(service.serviceAccounts);
  for (const e of push.endpoints(service, port)) if (e.serviceAccount !== "") out.add(e.serviceAccount);
  return [...out].sort();
}

/** What {@link applyTrafficPolicy} needs besides the policy. */
export interface TrafficPolicyOptions {
  readonly ctx: ClusterContext;
  /** The service port the cluster is for. */
  readonly port: ServicePort;
  /** SANs ISTIO_MUTUAL verifies when the rule names none (see {@link serviceAccountsFor}). */
  readonly serviceAccounts: readonly string[];
  /** SNI of ISTIO_MUTUAL when the rule names none: `outbound_.<port>_.<subset>_.<host>`. */
  readonly istioMtlsSni: string;
  /** MESH_EXTERNAL service: no auto mTLS. */
  readonly meshExternal?: boolean;
  /**
   * Envoy auto mTLS (MeshConfig `enableAutoMtls`): without a `tls` setting, endpoints labelled
   * `tlsMode: istio` get ISTIO_MUTUAL through `transport_socket_matches`, unless the destination's
   * mTLS mode is DISABLE. Proxyless gRPC has no auto mTLS (Istio grpcgen `applyTLS`).
   */
  readonly autoMtls?: { readonly enabled: boolean; readonly serviceMtlsMode?: MtlsMode };
  /** The DestinationRule the policy came from, for warnings. */
  readonly config?: ResourceKey;
}

/**
 * Istio `applyTrafficPolicy` for an outbound cluster: connection pool (every Envoy cluster gets the
 * default thresholds and the mesh connect timeout), HTTP/2 upgrade, outlier detection, load
 * balancer, TLS. For proxyless gRPC (Istio grpcgen `applyTrafficPolicy`): TLS, load balancer and the
 * `http2MaxRequests` circuit breaker only.
 */
export function applyTrafficPolicy(
  build: ClusterBuild,
  policy: IstioTrafficPolicy | undefined,
  options: TrafficPolicyOptions,
): void {
  const { ctx } = options;
  const caps = ctx.capabilities;
  const warn = ctx.warn ?? ignoreWarnings;
  const pool = view<IstioConnectionPool>(policy?.connectionPool);
  const lb = view<IstioLoadBalancer>(policy?.loadBalancer);
  const outlier = view<IstioOutlierDetection>(policy?.outlierDetection);
  if (caps.clusterDefaults) {
    applyConnectionPool(build, pool ?? {}, ctx.push.mesh.connectTimeout);
    applyH2Upgrade(build, options.port, pool);
  } else {
    applyGrpcCircuitBreakers(build.cluster, pool);
  }
  if (outlier !== undefined) {
    if (caps.outlierDetection) applyOutlierDetection(build.cluster, outlier);
    else {
      warn({
        code: "UNSUPPORTED_BY_CLIENT",
        message: `outlier detection is not supported by ${caps.client} (Istio does not send it to proxyless gRPC); left out`,
        ...(options.config ? { config: options.config } : {}),
        path: "spec.trafficPolicy.outlierDetection",
        client: caps.client,
      });
    }
  }
  applyLoadBalancer(build.cluster, lb, caps, warn, options.config);
  applyUpstreamTls(build, view<IstioClientTls>(policy?.tls), options);
}

/** Istio's default circuit-breaker thresholds: everything `MaxUint32`, remaining tracked. */
function defaultThresholds() {
  const max = 0xffffffff;
  return create(CircuitBreakers_ThresholdsSchema, {
    maxRetries: max,
    maxRequests: max,
    maxConnections: max,
    maxPendingRequests: max,
    trackRemaining: true,
  });
}

function protocolOptions(build: ClusterBuild): HttpProtocolOptions {
  build.httpProtocolOptions ??= create(HttpProtocolOptionsSchema, {});
  return build.httpProtocolOptions;
}

/**
 * Istio `applyConnectionPool` (Envoy): the connect timeout (the pool's `tcp.connectTimeout`, else the
 * mesh's), circuit-breaker thresholds (`http2MaxRequests` → max_requests, `http1MaxPendingRequests`
 * → max_pending_requests, `maxRetries`, `tcp.maxConnections`, the rest at their defaults), TCP
 * keepalive, and the HTTP protocol options (idle timeout, max requests per connection, max
 * connection duration, max concurrent streams on HTTP/2, downstream protocol).
 */
export function applyConnectionPool(
  build: ClusterBuild,
  pool: IstioConnectionPool,
  meshConnectTimeout: string,
): void {
  const c = build.cluster;
  const threshold = defaultThresholds();
  const http = view<NonNullable<IstioConnectionPool["http"]>>(pool.http);
  const tcp = view<NonNullable<IstioConnectionPool["tcp"]>>(pool.tcp);
  let idleTimeout = duration(http?.idleTimeout);
  const maxRequestsPerConnection = num(http?.maxRequestsPerConnection) ?? 0;
  const maxConcurrentStreams = num(http?.maxConcurrentStreams) ?? 0;
  if ((num(http?.http2MaxRequests) ?? 0) > 0) threshold.maxRequests = http?.http2MaxRequests as number;
  if ((num(http?.http1MaxPendingRequests) ?? 0) > 0)
    threshold.maxPendingRequests = http?.http1MaxPendingRequests as number;
  if ((num(http?.maxRetries) ?? 0) > 0) threshold.maxRetries = http?.maxRetries as number;
  c.connectTimeout = duration(meshConnectTimeout) ?? create(DurationSchema, { seconds: 10n });
  let maxConnectionDuration: ReturnType<typeof duration>;
  if (tcp !== undefined) {
    const ct = duration(tcp.connectTimeout);
    if (ct !== undefined) c.connectTimeout = ct;
    if ((num(tcp.maxConnections) ?? 0) > 0) threshold.maxConnections = tcp.maxConnections as number;
    maxConnectionDuration = duration(tcp.maxConnectionDuration);
    idleTimeout ??= duration(tcp.idleTimeout);
    const ka = view<NonNullable<NonNullable<IstioConnectionPool["tcp"]>["tcpKeepalive"]>>(tcp.tcpKeepalive);
    if (ka !== undefined) {
      const keepalive = create(TcpKeepaliveSchema, {});
      if ((num(ka.probes) ?? 0) > 0) keepalive.keepaliveProbes = ka.probes as number;
      const time = durationSeconds(ka.time);
      if (time !== undefined && time > 0n) keepalive.keepaliveTime = Number(time);
      const interval = durationSeconds(ka.interval);
      if (interval !== undefined && interval > 0n) keepalive.keepaliveInterval = Number(interval);
      c.upstreamConnectionOptions = create(UpstreamConnectionOptionsSchema, { tcpKeepalive: keepalive });
    }
  }
  c.circuitBreakers = create(CircuitBreakersSchema, { thresholds: [threshold] });
  if (
    maxConnectionDuration !== undefined ||
    idleTimeout !== undefined ||
    maxRequestsPerConnection > 0 ||
    maxConcurrentStreams > 0
  ) {
    const options = protocolOptions(build);
    options.commonHttpProtocolOptions ??= create(CoreHttpProtocolOptionsSchema, {});
    const common = options.commonHttpProtocolOptions;
    if (idleTimeout !== undefined) common.idleTimeout = idleTimeout;
    if (maxRequestsPerConnection > 0) common.maxRequestsPerConnection = maxRequestsPerConnection;
    if (maxConnectionDuration !== undefined) common.maxConnectionDuration = maxConnectionDuration;
    const explicit = options.upstreamProtocolOptions;
    if (
      explicit.case === "explicitHttpConfig" &&
      explicit.value.protocolConfig.case === "http2ProtocolOptions" &&
      maxConcurrentStreams > 0
    ) {
      explicit.value.protocolConfig.value.maxConcurrentStreams = maxConcurrentStreams;
    }
  }
  if (http?.useClientProtocol === true) {
    protocolOptions(build).upstreamProtocolOptions = {
      case: "useDownstreamProtocolConfig",
      value: create(HttpProtocolOptions_UseDownstreamHttpConfigSchema, {
        httpProtocolOptions: {},
        http2ProtocolOptions: create(Http2ProtocolOptionsSchema, {}),
      }),
    };
  }
}

/** Istio `setH2Options`: the cluster speaks HTTP/2 upstream (explicit `http2_protocol_options`). */
export function setH2Options(build: ClusterBuild): void {
  const options = protocolOptions(build);
  if (options.upstreamProtocolOptions.case !== undefined) return;
  options.upstreamProtocolOptions = {
    case: "explicitHttpConfig",
    value: create(HttpProtocolOptions_ExplicitHttpConfigSchema, {
      protocolConfig: { case: "http2ProtocolOptions", value: create(Http2ProtocolOptionsSchema, {}) },
    }),
  };
}

/** Whether the cluster speaks HTTP/2 upstream (Istio `isHttp2Cluster`). */
export function isHttp2Cluster(build: ClusterBuild): boolean {
  const u = build.httpProtocolOptions?.upstreamProtocolOptions;
  return u?.case === "explicitHttpConfig" && u.value.protocolConfig.case === "http2ProtocolOptions";
}

/**
 * Istio `applyH2Upgrade` (outbound, Envoy): `h2UpgradePolicy: UPGRADE` upgrades the cluster to
 * HTTP/2; HTTP/2 and gRPC ports speak HTTP/2 anyway (`buildDefaultCluster`). The mesh-wide policy is
 * DO_NOT_UPGRADE, Istio's default.
 */
function applyH2Upgrade(build: ClusterBuild, port: ServicePort, pool: IstioConnectionPool | undefined): void {
  const override = view<NonNullable<IstioConnectionPool["http"]>>(pool?.http)?.h2UpgradePolicy;
  if (isHttp2Protocol(port.protocol) || override === "UPGRADE") setH2Options(build);
}

/** grpcgen `applyCircuitBreakers`: only `http2MaxRequests` → `thresholds[0].max_requests`. */
function applyGrpcCircuitBreakers(c: Cluster, pool: IstioConnectionPool | undefined): void {
  const max = num(view<NonNullable<IstioConnectionPool["http"]>>(pool?.http)?.http2MaxRequests) ?? 0;
  if (max > 0)
    c.circuitBreakers = create(CircuitBreakersSchema, {
      thresholds: [create(CircuitBreakers_ThresholdsSchema, { maxRequests: max })],
    });
}

/**
 * Istio `applyOutlierDetection`: success-rate ejection off; consecutive 5xx and gateway errors
 * (enforced at 100% when above 0), interval, base ejection time, max ejection percent, local-origin
 * errors when split; the healthy panic threshold is `minHealthPercent` (Istio disables Envoy's 50%
 * default, which matters little with few pods).
 */
export function applyOutlierDetection(c: Cluster, outlier: IstioOutlierDetection): void {
  const out = create(OutlierDetectionSchema, { enforcingSuccessRate: 0 });
  const c5xx = num(outlier.consecutive5xxErrors);
  if (c5xx !== undefined) {
    out.consecutive5xx = c5xx;
    out.enforcingConsecutive5xx = c5xx > 0 ? 100 : 0;
  }
  const gw = num(outlier.consecutiveGatewayErrors);
  if (gw !== undefined) {
    out.consecutiveGatewayFailure = gw;
    out.enforcingConsecutiveGatewayFailure = gw > 0 ? 100 : 0;
  }
  const interval = duration(outlier.interval);
  if (interval !== undefined) out.interval = interval;
  const base = duration(outlier.baseEjectionTime);
  if (base !== undefined) out.baseEjectionTime = base;
  if ((num(outlier.maxEjectionPercent) ?? 0) > 0)
    out.maxEjectionPercent = outlier.maxEjectionPercent as number;
  if (outlier.splitExternalLocalOriginErrors === true) {
    out.splitExternalLocalOriginErrors = true;
    if ((num(outlier.consecutiveLocalOriginFailures) ?? 0) > 0) {
      out.consecutiveLocalOriginFailure = outlier.consecutiveLocalOriginFailures as number;
      out.enforcingConsecutiveLocalOriginFailure = 100;
    }
    out.enforcingLocalOriginSuccessRate = 0;
  }
  c.outlierDetection = out;
  const minHealth = num(outlier.minHealthPercent) ?? 0;
  if (minHealth >= 0) {
    c.commonLbConfig ??= create(Cluster_CommonLbConfigSchema, {});
    c.commonLbConfig.healthyPanicThreshold = create(PercentSchema, { value: minHealth });
  }
}

function unsupportedLb(
  caps: ProxyCapabilities,
  warn: WarningSink,
  policy: LbPolicyName,
  config: ResourceKey | undefined,
  fallback: string,
): void {
  warn({
    code: "UNSUPPORTED_BY_CLIENT",
    message: `load balancer ${policy} is not supported by ${caps.client} (it would NACK the cluster${policy === "RING_HASH" ? " or crash, grpc/grpc#31766" : ""}); ${fallback}`,
    ...(config ? { config } : {}),
    path: "spec.trafficPolicy.loadBalancer",
    client: caps.client,
  });
}

/**
 * Istio `applyLoadBalancer`: locality-weighted load balancing when the rule distributes traffic by
 * locality (or fails over with outlier detection); `simple`: LEAST_REQUEST (also for LEAST_CONN and,
 * for Envoy, when unset: Istio's default), RANDOM, ROUND_ROBIN (slow start with
 * `warmupDurationSecs`); then consistent hashing ({@link applyRingHashLoadBalancer}). For gRPC the
 * unset policy is ROUND_ROBIN (enum default, grpcgen), and a policy the client rejects is left out
 * with a warning.
 */
export function applyLoadBalancer(
  c: Cluster,
  lb: IstioLoadBalancer | undefined,
  caps: ProxyCapabilities,
  warn: WarningSink = ignoreWarnings,
  config?: ResourceKey,
): void {
  const locality = view<NonNullable<IstioLoadBalancer["localityLbSetting"]>>(lb?.localityLbSetting);
  if (
    caps.clusterDefaults &&
    ((locality?.distribute?.length ?? 0) > 0 ||
      (c.outlierDetection !== undefined &&
        ((locality?.failover?.length ?? 0) > 0 || (locality?.failoverPriority?.length ?? 0) > 0)))
  ) {
    c.commonLbConfig ??= create(Cluster_CommonLbConfigSchema, {});
    c.commonLbConfig.localityConfigSpecifier = {
      case: "localityWeightedLbConfig",
      value: create(Cluster_CommonLbConfig_LocalityWeightedLbConfigSchema, {}),
    };
  }
  const warmup = duration(lb?.warmupDurationSecs);
  const slowStart =
    warmup !== undefined
      ? { slowStartConfig: create(Cluster_SlowStartConfigSchema, { slowStartWindow: warmup }) }
      : undefined;
  const leastRequest = () => {
    c.lbPolicy = Cluster_LbPolicy.LEAST_REQUEST;
    if (slowStart)
      c.lbConfig = {
        case: "leastRequestLbConfig",
        value: create(Cluster_LeastRequestLbConfigSchema, slowStart),
      };
  };
  const roundRobin = () => {
    c.lbPolicy = Cluster_LbPolicy.ROUND_ROBIN;
    if (slowStart && caps.clusterDefaults) {
      c.lbConfig = { case: "roundRobinLbConfig", value: create(Cluster_RoundRobinLbConfigSchema, slowStart) };
    }
  };
  const simple = lb?.simple ?? "UNSPECIFIED";
  switch (simple) {
    case "LEAST_CONN":
    case "LEAST_REQUEST":
      if (caps.lbPolicies.has("LEAST_REQUEST")) leastRequest();
      else {
        unsupportedLb(caps, warn, "LEAST_REQUEST", config, "ROUND_ROBIN is used");
        roundRobin();
      }
      break;
    case "RANDOM":
      if (caps.lbPolicies.has("RANDOM")) c.lbPolicy = Cluster_LbPolicy.RANDOM;
      else {
        unsupportedLb(caps, warn, "RANDOM", config, "ROUND_ROBIN is used");
        roundRobin();
      }
      break;
    case "ROUND_ROBIN":
      roundRobin();
      break;
    case "PASSTHROUGH":
      if (caps.clusterDefaults) {
        c.lbPolicy = Cluster_LbPolicy.CLUSTER_PROVIDED;
        c.clusterDiscoveryType = { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST };
        c.edsClusterConfig = undefined;
        c.loadAssignment = undefined;
      } else {
        warn({
          code: "UNSUPPORTED_BY_CLIENT",
          message: `load balancer PASSTHROUGH is not supported by ${caps.client}; ROUND_ROBIN is used`,
          ...(config ? { config } : {}),
          path: "spec.trafficPolicy.loadBalancer.simple",
          client: caps.client,
        });
      }
      break;
    default:
      if (caps.clusterDefaults) leastRequest();
  }
  applyRingHashLoadBalancer(c, lb, caps, warn, config);
}

/**
 * Istio `ApplyRingHashLoadBalancer`: `maglev` → MAGLEV (table size when given); `ringHash` →
 * RING_HASH (minimum ring size when given); otherwise RING_HASH with the deprecated
 * `minimumRingSize`, default 1024. MAGLEV is left out for clients that reject it (RING_HASH with
 * Envoy's default ring size instead), and consistent hashing altogether for clients without
 * RING_HASH (gRPC C-core 28/29, whose picker crashes).
 */
export function applyRingHashLoadBalancer(
  c: Cluster,
  lb: IstioLoadBalancer | undefined,
  caps: ProxyCapabilities,
  warn: WarningSink = ignoreWarnings,
  config?: ResourceKey,
): void {
  const hash = view<IstioConsistentHash>(lb?.consistentHash);
  if (hash === undefined) return;
  const bigint = (v: unknown) => {
    const n =
      typeof v === "string" && /^\d+$/.test(v)
        ? BigInt(v)
        : typeof v === "number" && Number.isInteger(v)
          ? BigInt(v)
          : 0n;
    return n;
  };
  const maglev = view<{ tableSize?: unknown }>(hash.maglev);
  const ring = view<{ minimumRingSize?: unknown }>(hash.ringHash);
  if (maglev !== undefined && caps.lbPolicies.has("MAGLEV")) {
    c.lbPolicy = Cluster_LbPolicy.MAGLEV;
    const size = bigint(maglev.tableSize);
    if (size !== 0n)
      c.lbConfig = {
        case: "maglevLbConfig",
        value: create(Cluster_MaglevLbConfigSchema, { tableSize: size }),
      };
    return;
  }
  if (!caps.lbPolicies.has("RING_HASH")) {
    unsupportedLb(
      caps,
      warn,
      maglev !== undefined ? "MAGLEV" : "RING_HASH",
      config,
      "consistent hashing is left out",
    );
    return;
  }
  if (maglev !== undefined) unsupportedLb(caps, warn, "MAGLEV", config, "RING_HASH is used");
  c.lbPolicy = Cluster_LbPolicy.RING_HASH;
  if (ring !== undefined) {
    const size = bigint(ring.minimumRingSize);
    if (size !== 0n)
      c.lbConfig = {
        case: "ringHashLbConfig",
        value: create(Cluster_RingHashLbConfigSchema, { minimumRingSize: size }),
      };
    else c.lbConfig = { case: undefined };
    return;
  }
  const legacy = bigint(hash.minimumRingSize);
  c.lbConfig = {
    case: "ringHashLbConfig",
    value: create(Cluster_RingHashLbConfigSchema, { minimumRingSize: legacy !== 0n ? legacy : 1024n }),
  };
}

/**
 * Istio `buildUpstreamTLSSettings`: ISTIO_MUTUAL gets the service's identities as SANs and the
 * Istio mTLS SNI unless the rule gives its own; without a `tls` setting, Envoy auto mTLS sends
 * ISTIO_MUTUAL to endpoints labelled `tlsMode: istio` (transport socket match `tlsMode-istio`,
 * plaintext otherwise). Proxyless gRPC: ISTIO_MUTUAL only, with SANs and without SNI (grpcgen
 * `applyTLS`); SIMPLE/MUTUAL are left out with a warning, as Istio leaves them out.
 */
export function applyUpstreamTls(
  build: ClusterBuild,
  tls: IstioClientTls | undefined,
  options: TrafficPolicyOptions,
): void {
  const { ctx } = options;
  const caps = ctx.capabilities;
  const warn = ctx.warn ?? ignoreWarnings;
  const c = build.cluster;
  const grpc = caps.secrets === "certificate-provider";
  let resolved = tls;
  let auto = false;
  if (tls?.mode === "ISTIO_MUTUAL") {
    resolved = {
      ...tls,
      ...((tls.subjectAltNames?.length ?? 0) === 0 ? { subjectAltNames: options.serviceAccounts } : {}),
      ...(!grpc && (tls.sni === undefined || tls.sni === "") ? { sni: options.istioMtlsSni } : {}),
    };
  } else if (tls === undefined && !grpc) {
    const a = options.autoMtls;
    if (a?.enabled && options.meshExternal !== true && a.serviceMtlsMode !== "DISABLE") {
      resolved = {
        mode: "ISTIO_MUTUAL",
        subjectAltNames: options.serviceAccounts,
        sni: options.istioMtlsSni,
      };
      auto = true;
    }
  }
  const result = upstreamTlsContext(resolved, {
    secrets: caps.secrets,
    http2: isHttp2Cluster(build),
    clusterName: c.name,
  });
  if (result.error !== undefined) {
    warn({
      code: grpc ? "UNSUPPORTED_BY_CLIENT" : "INVALID_CONFIG",
      message: `${result.error}; the cluster ${c.name} has no TLS`,
      ...(options.config ? { config: options.config } : {}),
      path: "spec.trafficPolicy.tls",
      ...(grpc ? { client: caps.client } : {}),
    });
    return;
  }
  if (result.context === undefined) return;
  const socket = tlsTransportSocket(result.context);
  if (!auto) {
    c.transportSocket = socket;
    return;
  }
  c.transportSocketMatches = [
    create(Cluster_TransportSocketMatchSchema, {
      name: "tlsMode-istio",
      match: { tlsMode: "istio" },
      transportSocket: socket,
    }),
    create(Cluster_TransportSocketMatchSchema, {
      name: "tlsMode-disabled",
      match: {},
      transportSocket: {
        name: "envoy.transport_sockets.raw_buffer",
        configType: { case: "typedConfig", value: rawBuffer() },
      },
    }),
  ];
}

/** Istio's `defaultTransportSocketMatch` carries an empty RawBuffer config. */
function rawBuffer() {
  return anyPack(RawBufferSchema, create(RawBufferSchema, {}));
}

/** Packs the build's HTTP protocol options into `typed_extension_protocol_options` and returns the cluster. */
export function finishCluster(build: ClusterBuild): Cluster {
  if (build.httpProtocolOptions !== undefined) {
    build.cluster.typedExtensionProtocolOptions[HTTP_PROTOCOL_OPTIONS_KEY] = anyPack(
      HttpProtocolOptionsSchema,
      build.httpProtocolOptions,
    );
  }
  return build.cluster;
}

/** Input of {@link buildOutboundCluster}. */
export interface OutboundClusterInput {
  readonly service: Service;
  readonly port: ServicePort;
  /** `""` (default) for the service's default cluster. */
  readonly subset?: string;
  /** The rule to apply; looked up for the proxy when undefined (`null` = none). */
  readonly rule?: ConsolidatedDestinationRule | null;
  /** Envoy auto mTLS (ignored for proxyless). */
  readonly autoMtls?: TrafficPolicyOptions["autoMtls"];
}

/**
 * One outbound EDS cluster `outbound|<port>|<subset>|<host>` with the DestinationRule's traffic
 * policy for that port (and subset) applied, as Istio's cluster builders do for the proxy kind in
 * `ctx.capabilities`. Returns undefined for a subset the rule does not define.
 */
export function buildOutboundCluster(ctx: ClusterContext, input: OutboundClusterInput): Cluster | undefined {
  const subset = input.subset ?? "";
  const rule =
    input.rule === null ? undefined : (input.rule ?? ctx.push.destinationRule(ctx.proxy, input.service));
  if (subset !== "" && !(rule?.spec.subsets ?? []).some((s) => s.name === subset)) return undefined;
  const name = outboundClusterName(input.service.hostname, input.port.port, subset);
  const build: ClusterBuild = { cluster: edsCluster(name, ctx.capabilities) };
  if (ctx.capabilities.clusterDefaults && isHttp2Protocol(input.port.protocol)) setH2Options(build);
  applyTrafficPolicy(build, clusterTrafficPolicy(rule, input.port.port, subset), {
    ctx,
    port: input.port,
    serviceAccounts: serviceAccountsFor(ctx.push, input.service, input.port.port),
    istioMtlsSni: outboundSni(input.service.hostname, input.port.port, subset),
    meshExternal: input.service.meshExternal,
    ...(input.autoMtls ? { autoMtls: input.autoMtls } : {}),
    ...(rule?.from[0] ? { config: rule.from[0] } : {}),
  });
  return finishCluster(build);
}
