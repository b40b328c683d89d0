import { isIP } from "node:net";
import { create } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  type Cluster,
  Cluster_DiscoveryType,
  ClusterSchema,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { type GrpcService, GrpcServiceSchema } from "@meshlet/api/envoy/config/core/v3/grpc_service_pb";
import { HttpProtocolOptionsSchema } from "@meshlet/api/envoy/extensions/upstreams/http/v3/http_protocol_options_pb";
import type { Service } from "../model/service.js";
import { outboundClusterName } from "../naming/cluster-names.js";
import type { BuildContext } from "./context.js";

/**
 * Where a filter reaches an external service (ext_authz, rate limit, log or trace collector), as
 * Istio's `model.LookupCluster` resolves an extension provider's `service`: `namespace/host` or
 * `host`, a host of the registry visible to the proxy → the cluster `outbound|<port>||<host>`
 * (which the cluster generator emits for every visible service). A literal IP address (a meshlet
 * extension for services the control plane runs itself, such as `meshlet serve`'s ExtAuthzServer)
 * gets a STATIC cluster of the same name speaking HTTP/2.
 * @returns the cluster name and authority, or undefined when the service is unknown.
 */
export function lookupServiceCluster(
  ctx: BuildContext,
  service: string,
  port: number,
  options: { readonly http2?: boolean } = {},
): { readonly cluster: string; readonly host: string } | undefined {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const slash = service.indexOf("/");
  const namespace = slash >= 0 ? service.slice(0, slash) : undefined;
  const host = slash >= 0 ? service.slice(slash + 1) : service;
  if (host === "") return undefined;
  const cluster = outboundClusterName(host, port);
  if (isIP(host) !== 0) {
    if (!ctx.extraClusters.has(cluster))
      ctx.extraClusters.set(cluster, staticCluster(cluster, host, port, options.http2 ?? true));
    return { cluster, host };
  }
  const byNs = ctx.push.servicesByNamespace(host);
  let svc: Service | undefined;
  if (namespace !== undefined) svc = byNs.get(namespace);
  else svc = ctx.push.serviceForHostname(ctx.proxy, host) ?? [...byNs.values()][0];
  if (svc === undefined || !svc.ports.some((p) => p.port === port)) return undefined;
  ctx.referencedServices.set(cluster, { service: svc, port });
  return { cluster, host };
}

/** An Envoy gRPC service to a cluster, with the authority Istio sets (Istio `generateGRPCConfig`). */
export function envoyGrpcService(cluster: string, authority: string, timeout?: string): GrpcService {
  return create(GrpcServiceSchema, {
    targetSpecifier: { case: "envoyGrpc", value: { clusterName: cluster, authority } },
    ...(timeout !== undefined ? { timeout: parseDuration(timeout) } : {}),
  });
}

/** A `google.protobuf.Duration` from Istio's duration strings (`1s`, `500ms`, `1.5s`, `2m`, `1h`). */
export function parseDuration(text: string) {
  const m = /^(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)$/.exec(text.trim());
  const value = m === null ? 0 : Number(m[1]);
  const unit = m?.[2] ?? "s";
  const scale = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, µs: 1e3, ns: 1 }[unit] ?? 1e9;
  const nanosTotal = BigInt(Math.round(value * scale));
  return create(DurationSchema, {
    seconds: nanosTotal / 1_000_000_000n,
    nanos: Number(nanosTotal % 1_000_000_000n),
  });
}

function staticCluster(name: string, ip: string, port: number, http2: boolean): Cluster {
  return create(ClusterSchema, {
    name,
    altStatName: `${name};`,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
    connectTimeout: create(DurationSchema, { seconds: 10n }),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            {
              hostIdentifier: {
                case: "endpoint",
                value: {
                  address: {
                    address: {
                      case: "socketAddress",
                      value: { address: ip, portSpecifier: { case: "portValue", value: port } },
                    },
                  },
                },
              },
            },
          ],
        },
      ],
    },
    ...(http2
      ? {
          typedExtensionProtocolOptions: {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": anyPack(
              HttpProtocolOptionsSchema,
              create(HttpProtocolOptionsSchema, {
                upstreamProtocolOptions: {
                  case: "explicitHttpConfig",
                  value: { protocolConfig: { case: "http2ProtocolOptions", value: {} } },
                },
              }),
            ),
          },
        }
      : {}),
  });
}
