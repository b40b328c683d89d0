import { createRegistry, type DescMessage, type Registry } from "@bufbuild/protobuf";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { TypedExtensionConfigSchema } from "@meshlet/api/envoy/config/core/v3/extension_pb";
import { ClusterLoadAssignmentSchema } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { VirtualHostSchema } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { ScopedRouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/scoped_route_pb";
import { SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { ResourceSchema } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { RuntimeSchema } from "@meshlet/api/envoy/service/runtime/v3/rtds_pb";

const prefix = "type.googleapis.com/";

/** Type URLs of the xDS v3 resource types, as carried in `DiscoveryRequest.type_url`. */
export const TypeUrl = {
  Cluster: `${prefix}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${prefix}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  Listener: `${prefix}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${prefix}envoy.config.route.v3.RouteConfiguration`,
  ScopedRouteConfiguration: `${prefix}envoy.config.route.v3.ScopedRouteConfiguration`,
  VirtualHost: `${prefix}envoy.config.route.v3.VirtualHost`,
  Secret: `${prefix}envoy.extensions.transport_sockets.tls.v3.Secret`,
  Runtime: `${prefix}envoy.service.runtime.v3.Runtime`,
  ExtensionConfig: `${prefix}envoy.config.core.v3.TypedExtensionConfig`,
  /** The wrapper used for TTLs and heartbeats in state-of-the-world responses. */
  Resource: `${prefix}envoy.service.discovery.v3.Resource`,
} as const;

/** Any xDS type URL; the constants in {@link TypeUrl} plus custom ones. */
export type TypeUrlString = (typeof TypeUrl)[keyof typeof TypeUrl] | (string & {});

/** Short names used in logs and docs: CDS, EDS, LDS, RDS … */
export const typeShortName: Readonly<Record<string, string>> = {
  [TypeUrl.Cluster]: "CDS",
  [TypeUrl.ClusterLoadAssignment]: "EDS",
  [TypeUrl.Listener]: "LDS",
  [TypeUrl.RouteConfiguration]: "RDS",
  [TypeUrl.ScopedRouteConfiguration]: "SRDS",
  [TypeUrl.VirtualHost]: "VHDS",
  [TypeUrl.Secret]: "SDS",
  [TypeUrl.Runtime]: "RTDS",
  [TypeUrl.ExtensionConfig]: "ECDS",
};

/**
 * Types whose state-of-the-world responses must carry every subscribed resource: a client treats a
 * resource missing from an LDS, CDS or SRDS response as deleted (xDS protocol, "Knowing When a
 * Requested Resource Does Not Exist"). Other types carry only what changed.
 */
export const fullStateTypes: ReadonlySet<string> = new Set([
  TypeUrl.Listener,
  TypeUrl.Cluster,
  TypeUrl.ScopedRouteConfiguration,
]);

/**
 * Push order on an ADS stream (xDS protocol, "Eventual consistency considerations"): clusters
 * before the endpoints that fill them, listeners before the routes they name, so a proxy never
 * points at something it does not have. Types not listed go after these.
 */
export const adsOrder: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.ScopedRouteConfiguration,
  TypeUrl.VirtualHost,
  TypeUrl.Secret,
  TypeUrl.Runtime,
  TypeUrl.ExtensionConfig,
];

/** Schemas of the built-in xDS resource types, keyed by type URL. */
export const resourceSchemas: ReadonlyMap<string, DescMessage> = new Map<string, DescMessage>([
  [TypeUrl.Cluster, ClusterSchema],
  [TypeUrl.ClusterLoadAssignment, ClusterLoadAssignmentSchema],
  [TypeUrl.Listener, ListenerSchema],
  [TypeUrl.RouteConfiguration, RouteConfigurationSchema],
  [TypeUrl.ScopedRouteConfiguration, ScopedRouteConfigurationSchema],
  [TypeUrl.VirtualHost, VirtualHostSchema],
  [TypeUrl.Secret, SecretSchema],
  [TypeUrl.Runtime, RuntimeSchema],
  [TypeUrl.ExtensionConfig, TypedExtensionConfigSchema],
  [TypeUrl.Resource, ResourceSchema],
]);

/**
 * A registry of the built-in resource types. Pass `@meshlet/api`'s full `registry` where custom
 * resource types are used.
 */
export const xdsRegistry: Registry = createRegistry(...resourceSchemas.values());

/** `type.googleapis.com/<full name>` for a message schema. */
export function typeUrlOf(schema: DescMessage): string {
  return `${prefix}${schema.typeName}`;
}
