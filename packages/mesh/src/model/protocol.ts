/**
 * A port's application protocol, spelled as Istio's `protocol.Instance` values
 * (istio/istio pkg/config/protocol/instance.go). `UnsupportedProtocol` means "not declared": Envoy
 * sidecars sniff the protocol on such ports.
 */
export type Protocol =
  | "GRPC"
  | "GRPC-Web"
  | "HTTP"
  | "HTTP_PROXY"
  | "HTTP2"
  | "HTTPS"
  | "TCP"
  | "TLS"
  | "UDP"
  | "Mongo"
  | "Redis"
  | "MySQL"
  | "UnsupportedProtocol";

const BY_LOWER_NAME: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ["tcp", "TCP"],
  ["udp", "UDP"],
  ["grpc", "GRPC"],
  ["grpc-web", "GRPC-Web"],
  ["http", "HTTP"],
  ["http_proxy", "HTTP_PROXY"],
  ["http2", "HTTP2"],
  ["https", "HTTPS"],
  ["tls", "TLS"],
  ["mongo", "Mongo"],
  ["redis", "Redis"],
  ["mysql", "MySQL"],
]);

/** Parses a protocol name case-insensitively (Istio `protocol.Parse`); unknown → `UnsupportedProtocol`. */
export function parseProtocol(name: string): Protocol {
  return BY_LOWER_NAME.get(name.toLowerCase()) ?? "UnsupportedProtocol";
}

/**
 * Well-known server-first ports that are never sniffed (SMTP 25, DNS 53, MySQL 3306, MongoDB 27017):
 * a Kubernetes port there without a declared protocol is TCP (Istio `kube.ConvertProtocol`).
 */
const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * The protocol of a Kubernetes Service or EndpointSlice port, as Istio derives it (istio/istio
 * pkg/config/kube/conversion.go `ConvertProtocol`): UDP ports are UDP; otherwise `appProtocol` wins
 * over the port name; a `grpc-web` prefix is GRPC-Web; else the part before the first `-` is parsed
 * (`http-foo` → HTTP); an undeclared protocol on a well-known server-first port is TCP.
 */
export function protocolOfKubernetesPort(port: {
  readonly port?: number;
  readonly name?: string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}): Protocol {
  if (port.protocol === "UDP") return "UDP";
  let name = port.appProtocol ?? port.name ?? "";
  if (name.length >= 8 && name.slice(0, 8).toLowerCase() === "grpc-web") return "GRPC-Web";
  const dash = name.indexOf("-");
  if (dash >= 0) name = name.slice(0, dash);
  const parsed = parseProtocol(name);
  if (parsed === "UnsupportedProtocol" && port.port !== undefined && WELL_KNOWN_TCP_PORTS.has(port.port)) {
    return "TCP";
  }
  return parsed;
}

/** Protocols carried over HTTP (Istio `IsHTTP`): HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web. */
export function isHttpProtocol(p: Protocol): boolean {
  return p === "HTTP" || p === "HTTP2" || p === "HTTP_PROXY" || p === "GRPC" || p === "GRPC-Web";
}

/** Protocols that use HTTP/2 as transport (Istio `IsHTTP2`): HTTP2, GRPC, GRPC-Web. */
export function isHttp2Protocol(p: Protocol): boolean {
  return p === "HTTP2" || p === "GRPC" || p === "GRPC-Web";
}

/** Opaque TCP protocols (Istio `IsTCP`): TCP, HTTPS, TLS, Mongo, Redis, MySQL. */
export function isTcpProtocol(p: Protocol): boolean {
  return p === "TCP" || p === "HTTPS" || p === "TLS" || p === "Mongo" || p === "Redis" || p === "MySQL";
}

/** Protocols on top of TLS (Istio `IsTLS`): HTTPS, TLS. */
export function isTlsProtocol(p: Protocol): boolean {
  return p === "HTTPS" || p === "TLS";
}

/** gRPC protocols (Istio `IsGRPC`): GRPC, GRPC-Web. */
export function isGrpcProtocol(p: Protocol): boolean {
  return p === "GRPC" || p === "GRPC-Web";
}
