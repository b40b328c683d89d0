import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { ConfigSourceSchema } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import { ApiListenerSchema } from "@meshlet/api/envoy/config/listener/v3/api_listener_pb";
import {
  type FilterChain,
  FilterChainSchema,
  FilterSchema,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { RBAC } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import {
  NonForwardingActionSchema,
  RouteMatchSchema,
  RouteSchema,
  VirtualHostSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { HTTPFaultSchema } from "@meshlet/api/envoy/extensions/filters/http/fault/v3/fault_pb";
import { RBACSchema as HttpRbacSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
  type HttpFilter,
  HttpFilterSchema,
  RdsSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import type { Service, ServiceTarget } from "../model/service.js";
import { TLS_MODE_LABEL } from "../model/service.js";
import { joinHostPort, proxylessRouteConfigName } from "../naming/proxyless-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { MtlsMode } from "../push/security-policies.js";
import type { ProxyCapabilities } from "../translate/capabilities.js";
import { HttpFilterNames } from "../translate/route.js";
import { downstreamMtlsContext, tlsTransportSocket } from "../translate/tls.js";
import type { WarningSink } from "../translate/warnings.js";
import { GrpcRbacFilterNames, grpcRbac } from "./rbac.js";

// LDS for proxyless gRPC (istio/istio pilot/pkg/networking/grpcgen/lds.go): client ApiListeners,
// one per requested name and port, and server listeners `xds.istio.io/grpc/lds/inbound/<ip>:<port>`.
// `listener_filters` and `use_original_dst` are never set: gRPC NACKs them.

/** The HTTP filters of a client listener: fault injection, then the router (grpcgen `supportedFilters`). */
export function clientHttpFilters(): HttpFilter[] {
  return [
    create(HttpFilterSchema, {
      name: HttpFilterNames.fault,
      configType: { case: "typedConfig", value: anyPack(HTTPFaultSchema, create(HTTPFaultSchema, {})) },
    }),
    routerFilter(),
  ];
}

function routerFilter(): HttpFilter {
  return create(HttpFilterSchema, {
    name: HttpFilterNames.router,
    configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema, {})) },
  });
}

function socketAddress(ip: string, port: number) {
  return create(AddressSchema, {
    address: {
      case: "socketAddress",
      value: create(SocketAddressSchema, { address: ip, portSpecifier: { case: "portValue", value: port } }),
    },
  });
}

/**
 * A client ApiListener named `<requested host>:<port>` for a service port (grpcgen
 * `buildOutboundListeners`): the service VIP as address, an HCM with the fault and router filters
 * and RDS over ADS for `outbound|<port>||<fqdn>`.
 */
export function clientListener(requestedHost: string, service: Service, port: number): Listener {
  const hcm = create(HttpConnectionManagerSchema, {
    httpFilters: clientHttpFilters(),
    routeSpecifier: {
      case: "rds",
      value: create(RdsSchema, {
        configSource: create(ConfigSourceSchema, { configSourceSpecifier: { case: "ads", value: {} } }),
        routeConfigName: proxylessRouteConfigName(service.hostname, port),
      }),
    },
  });
  return create(ListenerSchema, {
    name: joinHostPort(requestedHost, port),
    address: socketAddress(service.defaultAddress, port),
    apiListener: create(ApiListenerSchema, { apiListener: anyPack(HttpConnectionManagerSchema, hcm) }),
  });
}

/** What server listeners are built from. */
export interface ServerListenerInput {
  readonly push: PushContext;
  readonly proxy: Proxy;
  readonly capabilities: ProxyCapabilities;
  readonly warn: WarningSink;
}

/**
 * The mTLS mode of a proxyless server port (grpcgen `buildInboundFilterChains`): the
 * PeerAuthentication mode of the port; PERMISSIVE becomes STRICT when the workload is labelled
 * `security.istio.io/tlsMode: istio` (clients will use mTLS) and plaintext otherwise (a gRPC filter
 * chain cannot tell TLS from plaintext, gRFC A36).
 */
export function serverMtlsMode(push: PushContext, proxy: Proxy, port: number): "STRICT" | "DISABLE" {
  const mode: MtlsMode = push.mtlsMode(proxy, port);
  if (mode === "STRICT") return "STRICT";
  if (mode === "PERMISSIVE" && push.proxyLabels(proxy)[TLS_MODE_LABEL] === "istio") return "STRICT";
  return "DISABLE";
}

function inboundHcm(rbac: { deny?: RBAC; allow?: RBAC }): HttpConnectionManager {
  const filters: HttpFilter[] = [];
  const rbacFilter = (name: string, rules: RBAC) =>
    create(HttpFilterSchema, {
      name,
      configType: { case: "typedConfig", value: anyPack(HttpRbacSchema, create(HttpRbacSchema, { rules })) },
    });
  if (rbac.deny !== undefined && Object.keys(rbac.deny.policies).length > 0)
    filters.push(rbacFilter(GrpcRbacFilterNames.deny, rbac.deny));
  if (rbac.allow !== undefined) filters.push(rbacFilter(GrpcRbacFilterNames.allow, rbac.allow));
  filters.push(routerFilter());
  return create(HttpConnectionManagerSchema, {
    routeSpecifier: {
      case: "routeConfig",
      value: create(RouteConfigurationSchema, {
        name: "inbound",
        virtualHosts: [
          create(VirtualHostSchema, {
            domains: ["*"],
            routes: [
              create(RouteSchema, {
                match: create(RouteMatchSchema, { pathSpecifier: { case: "prefix", value: "/" } }),
                action: { case: "nonForwardingAction", value: create(NonForwardingActionSchema, {}) },
              }),
            ],
          }),
        ],
      }),
    },
    httpFilters: filters,
  });
}

/**
 * The server listener a proxyless gRPC server asked for (`xds.istio.io/grpc/lds/inbound/<ip>:<port>`,
 * grpcgen `buildInboundListeners`), or undefined when no service selects the workload on that port
 * (Istio emits nothing then, and the server never serves) or when it must not be sent:
 * AuthorizationPolicies apply and the client cannot enforce RBAC (grpc-js without
 * `GRPC_XDS_EXPERIMENTAL_RBAC`) — sending the listener without them would allow every request,
 * sending them would be NACKed, so the server gets no listener and does not serve (fail closed).
 * One filter chain: `inbound-mtls` with a DownstreamTlsContext requiring client certificates
 * (STRICT), or `inbound-plaintext`.
 */
export function serverListener(
  input: ServerListenerInput,
  name: string,
  ip: string,
  port: number,
): Listener | undefined {
  const { push, proxy, capabilities, warn } = input;
  const target: ServiceTarget | undefined = push.serviceTargets(proxy).find((t) => t.targetPort === port);
  if (target === undefined) {
    warn({
      code: "INVALID_CONFIG",
      message: `no service selects ${proxy.id} on port ${port}: the server listener ${name} is not generated and the server will not serve`,
    });
    return undefined;
  }
  const policies = push.authorizationPolicies(proxy);
  const enforced = [...policies.allow, ...policies.deny];
  if (enforced.length > 0 && !capabilities.rbac) {
    warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `AuthorizationPolicies apply to ${proxy.id} but ${capabilities.client} does not enforce RBAC (grpc-js needs GRPC_XDS_EXPERIMENTAL_RBAC=true and node metadata GRPC_XDS_EXPERIMENTAL_RBAC: "true"); the server listener ${name} is withheld so the server does not serve unprotected`,
      client: capabilities.client,
    });
    return undefined;
  }
  const rbac = grpcRbac(policies, warn);
  const mode = serverMtlsMode(push, proxy, port);
  const suffix = mode === "STRICT" ? "mtls" : "plaintext";
  const chain: FilterChain = create(FilterChainSchema, {
    name: `inbound-${suffix}`,
    filters: [
      create(FilterSchema, {
        name: `inbound-hcm${suffix}`,
        configType: { case: "typedConfig", value: anyPack(HttpConnectionManagerSchema, inboundHcm(rbac)) },
      }),
    ],
  });
  if (mode === "STRICT")
    chain.transportSocket = tlsTransportSocket(downstreamMtlsContext(capabilities.secrets));
  return create(ListenerSchema, {
    name,
    address: socketAddress(ip, port),
    filterChains: [chain],
  });
}
