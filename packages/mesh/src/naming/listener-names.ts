import { isHttpProtocol, parseProtocol } from "../model/protocol.js";

// Names Istio gives Envoy listeners, routes, virtual hosts and special clusters. Sources:
// istio/istio pilot/pkg/model/listener.go (virtual listeners), pilot/pkg/networking/util/util.go
// (special clusters and vhosts), pilot/pkg/networking/core/gateway.go `getListenerName`,
// pilot/pkg/model/gateway.go `gatewayRDSRouteName`, pilot/pkg/networking/util `DomainName`.

/** Well-known Envoy names Istio emits. */
export const IstioNames = {
  /** The outbound capture listener on `proxyListenPort` (15001). */
  virtualOutbound: "virtualOutbound",
  /** The inbound capture listener on `proxyInboundListenPort` (15006). */
  virtualInbound: "virtualInbound",
  /** virtualOutbound's filter chain for traffic to unknown destinations (ALLOW_ANY). */
  virtualOutboundCatchAllTcp: "virtualOutbound-catchall-tcp",
  /** virtualOutbound's filter chain that drops traffic (REGISTRY_ONLY). */
  virtualOutboundBlackhole: "virtualOutbound-blackhole",
  /** virtualInbound's filter chain that drops traffic. */
  virtualInboundBlackhole: "virtualInbound-blackhole",
  /** virtualInbound's catch-all HTTP filter chain. */
  virtualInboundCatchAllHttp: "virtualInbound-catchall-http",
  /** Outbound cluster to the original destination. */
  passthroughCluster: "PassthroughCluster",
  /** Inbound cluster to the original destination on the workload. */
  inboundPassthroughCluster: "InboundPassthroughCluster",
  /** Cluster with no endpoints: traffic routed here fails. */
  blackHoleCluster: "BlackHoleCluster",
  /** Catch-all filter chain name for unmatched traffic. */
  passthroughFilterChain: "PassthroughFilterChain",
  /** Virtual host (and route) that blocks everything (REGISTRY_ONLY). */
  blockAllVirtualHost: "block_all",
  /** Virtual host that forwards to PassthroughCluster (ALLOW_ANY). */
  allowAnyVirtualHost: "allow_any",
  /** RDS name of the HTTP proxy listener route. */
  httpProxyRoute: "http_proxy",
  /** SDS resource with the workload's certificate and key. */
  sdsDefault: "default",
  /** SDS resource with the mesh root certificate(s). */
  sdsRootCa: "ROOTCA",
} as const;

/** Default capture ports (MeshConfig `proxyListenPort`, `proxyInboundListenPort`). */
export const DEFAULT_PROXY_LISTEN_PORT = 15001;
/** See {@link DEFAULT_PROXY_LISTEN_PORT}. */
export const DEFAULT_PROXY_INBOUND_LISTEN_PORT = 15006;

/**
 * An Envoy listener name, `<bind>_<port>` (`0.0.0.0_9080`, `10.96.0.20_9000`); UDP (QUIC)
 * listeners are `udp_<bind>_<port>`.
 */
export function listenerName(bind: string, port: number, transport: "tcp" | "udp" = "tcp"): string {
  return transport === "udp" ? `udp_${bind}_${port}` : `${bind}_${port}`;
}

/** A virtual host's name and domain with port: `<fqdn>:<port>` (Istio `util.DomainName`). */
export function virtualHostName(hostname: string, port: number): string {
  return `${hostname}:${port}`;
}

/**
 * The RDS name of a sidecar's outbound HTTP route (istio/istio pilot/pkg/networking/core/listener.go):
 * the port number as a string (`"9080"`); the Unix socket path for a Sidecar egress listener on a
 * socket (port 0); `<fqdn>:<port>` for a port whose protocol is sniffed on the service's own VIP
 * listener (pass `sniffedServiceHostname`).
 */
export function sidecarOutboundRouteName(
  port: number,
  options: { readonly unixSocket?: string; readonly sniffedServiceHostname?: string } = {},
): string {
  if (port === 0 && options.unixSocket !== undefined) return options.unixSocket;
  if (options.sniffedServiceHostname !== undefined) return `${options.sniffedServiceHostname}:${port}`;
  return String(port);
}

/** The inbound virtual host name for a workload port: `inbound|http|<port>`. */
export function inboundVirtualHostName(port: number): string {
  return `inbound|http|${port}`;
}

/**
 * The RDS name of a Gateway server: `http.<port>[.<bind>]` for HTTP servers,
 * `https.<port>.<portName>.<gatewayName>.<gatewayNamespace>[.<bind>]` for HTTPS servers that
 * terminate TLS; undefined for others (TCP, TLS, passthrough HTTPS have no routes).
 */
export function gatewayRouteConfigName(
  server: {
    readonly port: { readonly number: number; readonly protocol: string; readonly name: string };
    readonly bind?: string;
    readonly tls?: { readonly mode?: string };
  },
  gateway: { readonly name: string; readonly namespace: string },
  portNumber: number = server.port.number,
): string | undefined {
  const protocol = parseProtocol(server.port.protocol);
  const bind = server.bind !== undefined && server.bind !== "" ? `.${server.bind}` : "";
  if (isHttpProtocol(protocol)) return `http.${portNumber}${bind}`;
  const passthrough = server.tls?.mode === "PASSTHROUGH" || server.tls?.mode === "AUTO_PASSTHROUGH";
  if (protocol === "HTTPS" && !passthrough) {
    return `https.${server.port.number}.${server.port.name}.${gateway.name}.${gateway.namespace}${bind}`;
  }
  return undefined;
}
