// The benchmark's xDS content. Shape "fanout": 1000 clusters (each with an Istio-style mTLS
// transport socket, so each encodes to about 1 KiB), 1000 load assignments, listeners and route
// configurations. Shape "sidecar": what one Istio sidecar gets (outbound clusters, their load
// assignments, virtualOutbound and the outbound HTTP listeners with their routes), to which every
// proxy adds its own inbound side (ownResources). `generation` is baked into every shared
// resource, so two generations differ in every resource.
import { create } from "@bufbuild/protobuf";
import { anyPack, StructSchema } from "@bufbuild/protobuf/wkt";
import {
  Cluster_DiscoveryType,
  Cluster_LbPolicy,
  ClusterSchema,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { TransportSocketSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { DecoratorSchema } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RBACSchema as HttpRbacSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { TcpProxySchema } from "@meshlet/api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb";
import {
  SubjectAltNameMatcher_SanType,
  SubjectAltNameMatcherSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/common_pb";
import {
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { resources, Snapshot } from "@meshlet/xds";

const namespace = "bench";
const trustDomain = "cluster.local";

export function clusterName(i, port = 8080) {
  return `outbound|${port}||svc-${i}.${namespace}.svc.${trustDomain}`;
}

export function routeName(i) {
  return `route-${i}`;
}

/** mTLS to the upstream the way an Istio sidecar does it: SDS certs, SAN checks, ALPN, SNI. */
function transportSocket(i, generation, sanCount) {
  const host = `svc-${i}.${namespace}.svc.${trustDomain}`;
  const sans = [];
  for (let s = 0; s < sanCount; s++) {
    sans.push(
      create(SubjectAltNameMatcherSchema, {
        sanType: SubjectAltNameMatcher_SanType.URI,
        matcher: {
          matchPattern: {
            case: "exact",
            value: `spiffe://${trustDomain}/ns/${namespace}/sa/svc-${i}-account-${s}-g${generation}`,
          },
        },
      }),
    );
  }
  const ads = { configSourceSpecifier: { case: "ads", value: {} }, resourceApiVersion: 2 };
  const tls = create(UpstreamTlsContextSchema, {
    sni: `outbound_.8080_._.${host}`,
    commonTlsContext: {
      alpnProtocols: ["istio-peer-exchange", "istio", "h2"],
      tlsParams: { tlsMinimumProtocolVersion: 3, cipherSuites: ["ECDHE-ECDSA-AES256-GCM-SHA384"] },
      tlsCertificateSdsSecretConfigs: [{ name: "default", sdsConfig: ads }],
      validationContextType: {
        case: "combinedValidationContext",
        value: {
          defaultValidationContext: { matchTypedSubjectAltNames: sans },
          validationContextSdsSecretConfig: { name: "ROOTCA", sdsConfig: ads },
        },
      },
    },
  });
  return create(TransportSocketSchema, {
    name: "envoy.transport_sockets.tls",
    configType: { case: "typedConfig", value: anyPack(UpstreamTlsContextSchema, tls) },
  });
}

function cluster(i, generation, sanCount, port = 8080) {
  const c = resources.cluster({ name: clusterName(i, port), connectTimeoutMs: 10_000 });
  c.transportSocket = transportSocket(i, generation, sanCount);
  c.metadata = {
    $typeName: "envoy.config.core.v3.Metadata",
    filterMetadata: {
      istio: create(StructSchema, {
        fields: {
          generation: { kind: { case: "numberValue", value: generation } },
          service: { kind: { case: "stringValue", value: `svc-${i}.${namespace}.svc.${trustDomain}` } },
        },
      }),
    },
    typedFilterMetadata: {},
  };
  return c;
}

function loadAssignment(i, generation, endpointsPerCluster, port = 8080) {
  const endpoints = [];
  for (let e = 0; e < endpointsPerCluster; e++) {
    endpoints.push({
      address: `10.${(i >> 8) & 255}.${i & 255}.${e + 1}`,
      port: 8080 + (generation % 1000),
      locality: { region: "eu-west", zone: `eu-west-${e % 3}` },
    });
  }
  return resources.loadAssignment({ clusterName: clusterName(i, port), endpoints });
}

/** The port of outbound service i: 8080 in the fanout shape; 80, 8080 or 9090 in the sidecar one. */
export function servicePort(shape, i) {
  return shape.kind === "sidecar" ? sidecarOutboundPorts[i % sidecarOutboundPorts.length] : 8080;
}

/** The EDS names a proxy subscribes to (every outbound cluster's). */
export function edsNames(shape) {
  return Array.from({ length: shape.clusters }, (_, i) => clusterName(i, servicePort(shape, i)));
}

/** The RDS names a proxy subscribes to: the shared routes, and (sidecar) its own inbound ones. */
export function rdsNames(shape) {
  if (shape.kind === "sidecar") {
    return [
      ...sidecarOutboundPorts.map(String),
      ...sidecarInboundPorts.filter((p) => p.http).map((p) => inboundName(p.port)),
    ];
  }
  return Array.from({ length: shape.listeners }, (_, i) => routeName(i));
}

/**
 * The benchmark's shared resource set for one generation.
 * @param {{ kind: "fanout" | "sidecar", clusters: number, listeners: number, endpointsPerCluster: number, sanCount: number }} shape
 */
export function buildInput(shape, generation) {
  if (shape.kind === "sidecar") return sidecarInput(shape, generation);
  const clusters = [];
  const endpoints = [];
  for (let i = 0; i < shape.clusters; i++) {
    clusters.push(cluster(i, generation, shape.sanCount));
    endpoints.push(loadAssignment(i, generation, shape.endpointsPerCluster));
  }
  const listeners = [];
  const routes = [];
  const perRoute = Math.ceil(shape.clusters / shape.listeners);
  for (let l = 0; l < shape.listeners; l++) {
    const listener = resources.apiListener({ name: `listener-${l}`, routeConfigName: routeName(l) });
    listener.statPrefix = `listener-${l}-g${generation}`;
    listeners.push(listener);
    const virtualHosts = [];
    for (let i = l * perRoute; i < Math.min(shape.clusters, (l + 1) * perRoute); i++) {
      virtualHosts.push({
        name: `svc-${i}:8080`,
        domains: [`svc-${i}.${namespace}.svc.${trustDomain}`, `svc-${i}`, `g${generation}`],
        routes: [{ prefix: "/", cluster: clusterName(i), timeoutMs: 15_000 }],
      });
    }
    routes.push(resources.routeConfiguration({ name: routeName(l), virtualHosts }));
  }
  return { clusters, endpoints, listeners, routes };
}

/** Replaces one resource of a type in an input with its next generation. */
export function withOneChanged(input, kind, index, generation, shape) {
  const next = { ...input };
  const port = servicePort(shape, index);
  if (kind === "endpoint") {
    next.endpoints = [...input.endpoints];
    next.endpoints[index] = loadAssignment(index, generation, shape.endpointsPerCluster, port);
  } else if (kind === "cluster") {
    next.clusters = [...input.clusters];
    next.clusters[index] = cluster(index, generation, shape.sanCount, port);
  } else {
    throw new Error(`unknown resource kind ${kind}`);
  }
  return next;
}

// ---- the sidecar shape (--shape sidecar): names and structure as Istio gives a sidecar's
// resources (@meshlet/mesh src/naming, after istio/istio pilot/pkg/networking). Shared by every
// proxy: the outbound side. Its own: the inbound side, which carries the workload's identity.

/** The ports of the sidecar shape's outbound HTTP listeners and routes ("80", "8080", "9090"). */
export const sidecarOutboundPorts = [80, 8080, 9090];

/** A workload's inbound ports: four HTTP (HTTP/1.1, gRPC, admin, metrics) and one TCP. */
export const sidecarInboundPorts = [
  { port: 8080, http: true },
  { port: 8443, http: true },
  { port: 9090, http: true },
  { port: 9091, http: true },
  { port: 5432, http: false },
];

/** `inbound|<port>||`: Istio's name of the inbound cluster, and of the inbound route configuration. */
function inboundName(port) {
  return `inbound|${port}||`;
}

const adsSource = { configSourceSpecifier: { case: "ads", value: {} }, resourceApiVersion: 2 };
const seconds = (s) => ({ seconds: BigInt(s), nanos: 0 });

function tcpProxyFilter(statPrefix, clusterName) {
  return {
    name: "envoy.filters.network.tcp_proxy",
    configType: {
      case: "typedConfig",
      value: anyPack(
        TcpProxySchema,
        create(TcpProxySchema, { statPrefix, clusterSpecifier: { case: "cluster", value: clusterName } }),
      ),
    },
  };
}

/** The clusters every sidecar has whatever its services: BlackHole, Passthrough, InboundPassthrough. */
function specialClusters() {
  const originalDst = (name, bind) =>
    create(ClusterSchema, {
      name,
      clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST },
      lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
      connectTimeout: seconds(10),
      ...(bind
        ? {
            upstreamBindConfig: {
              sourceAddress: { address: bind, portSpecifier: { case: "portValue", value: 0 } },
            },
          }
        : {}),
    });
  return [
    create(ClusterSchema, {
      name: "BlackHoleCluster",
      clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
      connectTimeout: seconds(10),
    }),
    originalDst("PassthroughCluster"),
    originalDst("InboundPassthroughCluster", "127.0.0.6"),
  ];
}

/**
 * The shared part of the sidecar shape: `shape.clusters` outbound services (each an mTLS EDS
 * cluster and its load assignment) on ports 80, 8080 and 9090; the three special clusters;
 * virtualOutbound and one outbound HTTP listener per port, with its route configuration (a virtual
 * host per service on the port, and allow_any).
 */
function sidecarInput(shape, generation) {
  const clusters = [];
  const endpoints = [];
  for (let i = 0; i < shape.clusters; i++) {
    const port = servicePort(shape, i);
    clusters.push(cluster(i, generation, shape.sanCount, port));
    endpoints.push(loadAssignment(i, generation, shape.endpointsPerCluster, port));
  }
  clusters.push(...specialClusters());
  const virtualOutbound = create(ListenerSchema, {
    name: "virtualOutbound",
    address: socket("0.0.0.0", 15001),
    useOriginalDst: true,
    statPrefix: `virtualOutbound-g${generation}`,
    filterChains: [
      {
        name: "virtualOutbound-catchall-tcp",
        filters: [tcpProxyFilter("PassthroughCluster", "PassthroughCluster")],
      },
    ],
  });
  const listeners = [virtualOutbound];
  const routes = [];
  for (const port of sidecarOutboundPorts) {
    const listener = resources.httpListener({
      name: `0.0.0.0_${port}`,
      address: "0.0.0.0",
      port,
      routeConfigName: String(port),
    });
    listener.bindToPort = false; // traffic reaches it through virtualOutbound (Istio's capture)
    listener.statPrefix = `outbound_0.0.0.0_${port}-g${generation}`;
    listeners.push(listener);
    const virtualHosts = [];
    for (let i = 0; i < shape.clusters; i++) {
      if (servicePort(shape, i) !== port) continue;
      const host = `svc-${i}.${namespace}.svc.${trustDomain}`;
      virtualHosts.push({
        name: `${host}:${port}`,
        domains: [host, `svc-${i}`, `svc-${i}.${namespace}`, `g${generation}`],
        routes: [{ prefix: "/", cluster: clusterName(i, port), timeoutMs: 15_000 }],
      });
    }
    virtualHosts.push({
      name: "allow_any",
      domains: ["*"],
      routes: [{ prefix: "/", cluster: "PassthroughCluster" }],
    });
    routes.push(resources.routeConfiguration({ name: String(port), virtualHosts }));
  }
  return { clusters, endpoints, listeners, routes };
}

function socket(address, port) {
  return {
    address: { case: "socketAddress", value: { address, portSpecifier: { case: "portValue", value: port } } },
  };
}

/** A proxy's pod IP; proxy -1 is the workload used to time building one snapshot. */
function podIp(proxy) {
  return proxy < 0
    ? "10.255.255.254"
    : `10.${128 + ((proxy >> 16) & 127)}.${(proxy >> 8) & 255}.${proxy & 255}`;
}

/**
 * A sidecar's own resources (10): its `virtualInbound` listener (a filter chain per inbound port:
 * mTLS, and for HTTP ports the workload's authorization policy as an RBAC filter in front of
 * the router), an `inbound|<port>||` cluster per port (ORIGINAL_DST through 127.0.0.6, with the
 * workload's service in its metadata) and an `inbound|<port>||` route configuration per HTTP port
 * (decorated with the service's host). Istio inlines the inbound routes in virtualInbound; here
 * they are RDS resources, as the lead's shape asks for a route configuration of the proxy's own.
 * Every one names the workload (`wl-<proxy>`), so no two proxies share one: the worst case for
 * sharing (replicas of one workload would share them all by content).
 */
export function sidecarOwn(proxy) {
  const host = `wl-${proxy}.${namespace}.svc.${trustDomain}`;
  const clusters = sidecarInboundPorts.map(({ port }) =>
    create(ClusterSchema, {
      name: inboundName(port),
      clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST },
      lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
      connectTimeout: seconds(10),
      upstreamBindConfig: {
        sourceAddress: { address: "127.0.0.6", portSpecifier: { case: "portValue", value: 0 } },
      },
      // filter_metadata values are google.protobuf.Struct, which protobuf-es takes as a JSON object.
      metadata: { filterMetadata: { istio: { services: [{ host, name: `wl-${proxy}`, namespace }] } } },
    }),
  );
  const routes = sidecarInboundPorts
    .filter((p) => p.http)
    .map(({ port }) => {
      const route = resources.routeConfiguration({
        name: inboundName(port),
        virtualHosts: [
          {
            name: `inbound|http|${port}`,
            domains: ["*"],
            routes: [{ prefix: "/", cluster: inboundName(port), timeoutMs: 0 }],
          },
        ],
      });
      route.virtualHosts[0].routes[0].decorator = create(DecoratorSchema, { operation: `${host}:${port}/*` });
      route.validateClusters = false;
      return route;
    });
  const tls = anyPack(
    DownstreamTlsContextSchema,
    create(DownstreamTlsContextSchema, {
      requireClientCertificate: true,
      commonTlsContext: {
        alpnProtocols: ["h2", "http/1.1"],
        tlsCertificateSdsSecretConfigs: [{ name: "default", sdsConfig: adsSource }],
        validationContextType: {
          case: "combinedValidationContext",
          value: {
            defaultValidationContext: {},
            validationContextSdsSecretConfig: { name: "ROOTCA", sdsConfig: adsSource },
          },
        },
      },
    }),
  );
  const rbac = anyPack(
    HttpRbacSchema,
    create(HttpRbacSchema, {
      rules: {
        action: 0, // ALLOW
        policies: {
          [`ns[${namespace}]-policy[wl-${proxy}]-rule[0]`]: {
            permissions: [{ rule: { case: "any", value: true } }],
            principals: [
              {
                identifier: {
                  case: "authenticated",
                  value: {
                    principalName: {
                      matchPattern: {
                        case: "exact",
                        value: `spiffe://${trustDomain}/ns/${namespace}/sa/wl-${proxy}-client`,
                      },
                    },
                  },
                },
              },
            ],
          },
        },
      },
    }),
  );
  const filterChains = sidecarInboundPorts.map(({ port, http }) => ({
    name: `0.0.0.0_${port}`,
    filterChainMatch: { destinationPort: port, transportProtocol: "tls" },
    transportSocket: { name: "envoy.transport_sockets.tls", configType: { case: "typedConfig", value: tls } },
    filters: [
      http
        ? {
            name: "envoy.filters.network.http_connection_manager",
            configType: {
              case: "typedConfig",
              value: anyPack(
                HttpConnectionManagerSchema,
                create(HttpConnectionManagerSchema, {
                  statPrefix: `inbound_0.0.0.0_${port}`,
                  routeSpecifier: {
                    case: "rds",
                    value: { configSource: adsSource, routeConfigName: inboundName(port) },
                  },
                  httpFilters: [
                    { name: "envoy.filters.http.rbac", configType: { case: "typedConfig", value: rbac } },
                    {
                      name: "envoy.filters.http.router",
                      configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
                    },
                  ],
                }),
              ),
            },
          }
        : tcpProxyFilter(`inbound_0.0.0.0_${port}`, inboundName(port)),
    ],
  }));
  const virtualInbound = create(ListenerSchema, {
    name: "virtualInbound",
    address: socket("0.0.0.0", 15006),
    useOriginalDst: true,
    statPrefix: `virtualInbound-${podIp(proxy)}`,
    filterChains,
  });
  return { clusters, listeners: [virtualInbound], routes };
}

/** How many own resources {@link sidecarOwn} gives a proxy. */
export const sidecarOwnCount =
  1 + sidecarInboundPorts.length + sidecarInboundPorts.filter((p) => p.http).length;

export function createSnapshot(input) {
  const snapshot = Snapshot.create(input);
  snapshot.consistent();
  return snapshot;
}

/**
 * A proxy's own listeners (per-proxy mode): `count` inbound listeners on the proxy's pod IP,
 * routed through the shared first route configuration. Proxy -1 is the fresh set used to time
 * "building one" snapshot.
 */
export function ownListeners(proxy, count) {
  const out = [];
  const ip =
    proxy < 0 ? "10.255.255.254" : `10.${128 + ((proxy >> 16) & 127)}.${(proxy >> 8) & 255}.${proxy & 255}`;
  for (let k = 0; k < count; k++) {
    out.push(
      resources.listener({
        name: `inbound|${15006 + k}|proxy-${proxy}`,
        routeConfigName: routeName(0),
        address: ip,
        port: 15006 + k,
      }),
    );
  }
  return out;
}
