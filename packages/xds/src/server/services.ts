import type { DescService } from "@bufbuild/protobuf";
import { ClusterDiscoveryService } from "@meshlet/api/envoy/service/cluster/v3/cds_pb";
import { AggregatedDiscoveryService } from "@meshlet/api/envoy/service/discovery/v3/ads_pb";
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { EndpointDiscoveryService } from "@meshlet/api/envoy/service/endpoint/v3/eds_pb";
import { ExtensionConfigDiscoveryService } from "@meshlet/api/envoy/service/extension/v3/config_discovery_pb";
import { ListenerDiscoveryService } from "@meshlet/api/envoy/service/listener/v3/lds_pb";
import {
  RouteDiscoveryService,
  VirtualHostDiscoveryService,
} from "@meshlet/api/envoy/service/route/v3/rds_pb";
import { ScopedRoutesDiscoveryService } from "@meshlet/api/envoy/service/route/v3/srds_pb";
import { RuntimeDiscoveryService } from "@meshlet/api/envoy/service/runtime/v3/rtds_pb";
import { SecretDiscoveryService } from "@meshlet/api/envoy/service/secret/v3/sds_pb";
import { XdsError } from "../errors.js";
import { TypeUrl } from "../type-url.js";

/** The xDS gRPC services an XdsServer can mount. */
export type XdsServiceName =
  | "ads"
  | "cds"
  | "eds"
  | "lds"
  | "rds"
  | "srds"
  | "vhds"
  | "sds"
  | "rtds"
  | "ecds";

/** Every service a server can mount: the xDS services, and CSDS (not mounted unless asked for). */
export type ServiceName = XdsServiceName | "csds";

/** One streaming method of an xDS service. */
export interface XdsMethod {
  /** gRPC path, e.g. /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources. */
  readonly path: string;
  readonly protocol: "sotw" | "delta";
  /** "ads" or the type URL the method serves. */
  readonly serves: string;
}

const table: ReadonlyArray<[XdsServiceName, DescService, string]> = [
  ["ads", AggregatedDiscoveryService, "ads"],
  ["cds", ClusterDiscoveryService, TypeUrl.Cluster],
  ["eds", EndpointDiscoveryService, TypeUrl.ClusterLoadAssignment],
  ["lds", ListenerDiscoveryService, TypeUrl.Listener],
  ["rds", RouteDiscoveryService, TypeUrl.RouteConfiguration],
  ["srds", ScopedRoutesDiscoveryService, TypeUrl.ScopedRouteConfiguration],
  ["vhds", VirtualHostDiscoveryService, TypeUrl.VirtualHost],
  ["sds", SecretDiscoveryService, TypeUrl.Secret],
  ["rtds", RuntimeDiscoveryService, TypeUrl.Runtime],
  ["ecds", ExtensionConfigDiscoveryService, TypeUrl.ExtensionConfig],
];

/** Every xDS service name. */
export const allXdsServices: readonly XdsServiceName[] = table.map(([name]) => name);

/** The streaming (SotW and Delta) methods of an xDS service, from the generated descriptors. */
export function xdsMethods(name: XdsServiceName): { service: DescService; methods: XdsMethod[] } {
  const entry = table.find(([n]) => n === name);
  if (!entry)
    throw new XdsError(
      "invalid-argument",
      `unknown xDS service "${name}"; known: ${allXdsServices.join(", ")}, csds`,
    );
  const [, service, serves] = entry;
  const methods: XdsMethod[] = [];
  for (const m of service.methods) {
    if (m.methodKind !== "bidi_streaming") continue; // Fetch* (REST-over-gRPC) is not served
    const protocol =
      m.input.typeName === DeltaDiscoveryRequestSchema.typeName
        ? "delta"
        : m.input.typeName === DiscoveryRequestSchema.typeName
          ? "sotw"
          : undefined;
    if (protocol) methods.push({ path: `/${service.typeName}/${m.name}`, protocol, serves });
  }
  return { service, methods };
}
