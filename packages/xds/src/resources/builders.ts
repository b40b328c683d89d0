import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_LbPolicy,
  ClusterSchema,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { type Address, AddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import {
  ApiVersion,
  type ConfigSource,
  ConfigSourceSchema,
} from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import { HealthStatus } from "@meshlet/api/envoy/config/core/v3/health_check_pb";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { type Route, RouteSchema } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RouteConfiguration,
  RouteConfigurationSchema,
} from "@meshlet/api/envoy/config/route/v3/route_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { durationFromMs } from "../duration.js";
import { XdsError } from "../errors.js";

/** A ConfigSource pointing at the ADS stream the resource arrived on (xDS v3). */
export function adsConfigSource(): ConfigSource {
  return create(ConfigSourceSchema, {
    configSourceSpecifier: { case: "ads", value: {} },
    resourceApiVersion: ApiVersion.V3,
  });
}

function socketAddress(address: string, port: number): Address {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new XdsError("invalid-argument", `port ${port} for ${address} is not an integer in 0..65535`);
  }
  return create(AddressSchema, {
    address: { case: "socketAddress", value: { address, portSpecifier: { case: "portValue", value: port } } },
  });
}

/** Options of {@link cluster}. */
export interface ClusterOptions {
  name: string;
  /** Discovery type; EDS (endpoints from the control plane over ADS) by default. */
  type?: "EDS" | "STATIC" | "STRICT_DNS" | "LOGICAL_DNS";
  /** EDS resource name when it differs from the cluster name. */
  edsServiceName?: string;
  /** Load-balancing policy; ROUND_ROBIN by default. */
  lbPolicy?: keyof typeof Cluster_LbPolicy;
  connectTimeoutMs?: number;
  /** Endpoints for STATIC and DNS clusters (EDS clusters get theirs from a ClusterLoadAssignment). */
  endpoints?: readonly EndpointOptions[];
}

/** A v3 Cluster; by default an EDS cluster fed over ADS, as Envoy and proxyless gRPC expect. */
export function cluster(options: ClusterOptions): Cluster {
  const type = options.type ?? "EDS";
  const lbPolicy = Cluster_LbPolicy[options.lbPolicy ?? "ROUND_ROBIN"];
  if (lbPolicy === undefined)
    throw new XdsError("invalid-argument", `cluster "${options.name}": unknown lbPolicy`);
  return create(ClusterSchema, {
    name: options.name,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType[type] },
    lbPolicy,
    connectTimeout: durationFromMs(options.connectTimeoutMs ?? 5000),
    ...(type === "EDS"
      ? {
          edsClusterConfig: {
            edsConfig: adsConfigSource(),
            serviceName:
              options.edsServiceName && options.edsServiceName !== options.name ? options.edsServiceName : "",
          },
        }
      : {
          loadAssignment: loadAssignment({ clusterName: options.name, endpoints: options.endpoints ?? [] }),
        }),
  });
}

/** One endpoint of {@link loadAssignment}. */
export interface EndpointOptions {
  address: string;
  port: number;
  /** Endpoint weight within its locality. */
  weight?: number;
  health?: keyof typeof HealthStatus;
  /** Locality; endpoints are grouped by locality and priority. */
  locality?: { region?: string; zone?: string; subZone?: string };
  priority?: number;
}

/** Options of {@link loadAssignment}. */
export interface LoadAssignmentOptions {
  clusterName: string;
  endpoints: readonly EndpointOptions[];
}

/**
 * A ClusterLoadAssignment (EDS). Every locality gets a load-balancing weight of 1 unless all its
 * endpoints say otherwise: gRPC ignores localities without a weight.
 */
export function loadAssignment(options: LoadAssignmentOptions): ClusterLoadAssignment {
  const groups = new Map<string, EndpointOptions[]>();
  for (const e of options.endpoints) {
    const key = JSON.stringify([
      e.locality?.region ?? "",
      e.locality?.zone ?? "",
      e.locality?.subZone ?? "",
      e.priority ?? 0,
    ]);
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  return create(ClusterLoadAssignmentSchema, {
    clusterName: options.clusterName,
    endpoints: [...groups.values()].map((group) => {
      const first = group[0]!;
      return {
        locality: first.locality ?? {},
        priority: first.priority ?? 0,
        loadBalancingWeight: 1,
        lbEndpoints: group.map((e) => ({
          hostIdentifier: { case: "endpoint" as const, value: { address: socketAddress(e.address, e.port) } },
          healthStatus: HealthStatus[e.health ?? "HEALTHY"],
          ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
        })),
      };
    }),
  });
}

/** One route of {@link routeConfiguration}. */
export type RouteOptions = {
  /** Path prefix to match ("" matches everything); or an exact `path`. */
  prefix?: string;
  path?: string;
  timeoutMs?: number;
} & ({ cluster: string } | { weightedClusters: readonly { name: string; weight: number }[] });

/** One virtual host of {@link routeConfiguration}. */
export interface VirtualHostOptions {
  name: string;
  domains: readonly string[];
  routes: readonly RouteOptions[];
}

/** A RouteConfiguration (RDS) with virtual hosts and prefix/path routes to clusters. */
export function routeConfiguration(options: {
  name: string;
  virtualHosts: readonly VirtualHostOptions[];
}): RouteConfiguration {
  return create(RouteConfigurationSchema, {
    name: options.name,
    virtualHosts: options.virtualHosts.map((vh) => ({
      name: vh.name,
      domains: [...vh.domains],
      routes: vh.routes.map(routeEntry),
    })),
  });
}

function routeEntry(r: RouteOptions): Route {
  if ("weightedClusters" in r) {
    if (r.weightedClusters.length === 0)
      throw new XdsError("invalid-argument", "weightedClusters must not be empty");
    for (const w of r.weightedClusters) {
      if (!Number.isInteger(w.weight) || w.weight < 0) {
        throw new XdsError(
          "invalid-argument",
          `weighted cluster "${w.name}": weight ${w.weight} is not a non-negative integer`,
        );
      }
    }
  }
  return create(RouteSchema, {
    match: {
      pathSpecifier:
        r.path !== undefined ? { case: "path", value: r.path } : { case: "prefix", value: r.prefix ?? "" },
    },
    action: {
      case: "route",
      value: {
        clusterSpecifier:
          "cluster" in r
            ? { case: "cluster", value: r.cluster }
            : {
                case: "weightedClusters",
                value: { clusters: r.weightedClusters.map((w) => ({ name: w.name, weight: w.weight })) },
              },
        ...(r.timeoutMs !== undefined ? { timeout: durationFromMs(r.timeoutMs) } : {}),
      },
    },
  });
}

function httpConnectionManager(statPrefix: string, routeConfigName: string): HttpConnectionManager {
  return create(HttpConnectionManagerSchema, {
    statPrefix,
    routeSpecifier: { case: "rds", value: { configSource: adsConfigSource(), routeConfigName } },
    httpFilters: [
      {
        name: "envoy.filters.http.router",
        configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
      },
    ],
  });
}

/**
 * A listener for proxyless gRPC clients (`xds:///<name>`): an API listener whose HTTP connection
 * manager takes its routes from RDS over ADS and ends in the router filter.
 */
export function apiListener(options: { name: string; routeConfigName: string }): Listener {
  return create(ListenerSchema, {
    name: options.name,
    apiListener: {
      apiListener: anyPack(
        HttpConnectionManagerSchema,
        httpConnectionManager(options.name, options.routeConfigName),
      ),
    },
  });
}

/** An Envoy listener on an address and port whose HTTP connection manager takes routes from RDS. */
export function httpListener(options: {
  name: string;
  address: string;
  port: number;
  routeConfigName: string;
}): Listener {
  return create(ListenerSchema, {
    name: options.name,
    address: socketAddress(options.address, options.port),
    filterChains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            configType: {
              case: "typedConfig",
              value: anyPack(
                HttpConnectionManagerSchema,
                httpConnectionManager(options.name, options.routeConfigName),
              ),
            },
          },
        ],
      },
    ],
  });
}

/** {@link routeConfiguration} under its short name. */
export const route = routeConfiguration;

/**
 * A listener: with `address` and `port`, an Envoy listener ({@link httpListener}); without, a
 * proxyless gRPC API listener ({@link apiListener}). Both take routes from RDS over ADS.
 */
export function listener(options: {
  name: string;
  routeConfigName: string;
  address?: string;
  port?: number;
}): Listener {
  if (options.address !== undefined || options.port !== undefined) {
    if (options.address === undefined || options.port === undefined) {
      throw new XdsError(
        "invalid-argument",
        `listener "${options.name}": give both address and port, or neither for a gRPC API listener`,
      );
    }
    return httpListener({
      name: options.name,
      address: options.address,
      port: options.port,
      routeConfigName: options.routeConfigName,
    });
  }
  return apiListener(options);
}

/** A resource with a time to live (xDS TTL): the client drops it unless a heartbeat refreshes it. */
export interface WithTtl<T> {
  readonly resource: T;
  readonly ttlMs: number;
}

/** Marks a resource with a TTL for {@link Snapshot.create} and caches. */
export function withTtl<T>(resource: T, ttlMs: number): WithTtl<T> {
  if (!(ttlMs > 0)) throw new XdsError("invalid-argument", `ttlMs must be positive, got ${ttlMs}`);
  return { resource, ttlMs };
}
