// Names of proxyless gRPC resources (istio/istio pkg/istio-agent/grpcxds/grpc_bootstrap.go,
// pilot/pkg/networking/grpcgen/lds.go). A gRPC client asks LDS for exactly the target it dialled
// (`xds:///reviews.default.svc.cluster.local:9080` → `reviews.default.svc.cluster.local:9080`); a gRPC
// server asks for `xds.istio.io/grpc/lds/inbound/<ip>:<port>`.

/** Prefix of a proxyless server listener name. */
export const PROXYLESS_SERVER_LISTENER_PREFIX = "xds.istio.io/grpc/lds/inbound/";
/** The bootstrap's `server_listener_resource_name_template` (`%s` = the server's `ip:port`). */
export const PROXYLESS_SERVER_LISTENER_TEMPLATE = `${PROXYLESS_SERVER_LISTENER_PREFIX}%s`;

/** `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (IPv6 in brackets: `[::]:8076`). */
export function proxylessServerListenerName(ip: string, port: number): string {
  return PROXYLESS_SERVER_LISTENER_PREFIX + joinHostPort(ip, port);
}

/** The `ip:port` a proxyless server listener is for; undefined when the name is not one. */
export function parseProxylessServerListenerName(
  name: string,
): { readonly host: string; readonly port: number } | undefined {
  if (!name.startsWith(PROXYLESS_SERVER_LISTENER_PREFIX)) return undefined;
  const split = splitHostPort(name.slice(PROXYLESS_SERVER_LISTENER_PREFIX.length));
  if (split === undefined || !/^\d+$/.test(split.port)) return undefined;
  const port = Number(split.port);
  return port <= 65535 ? { host: split.host, port } : undefined;
}

/** `host:port`, bracketing IPv6 literals (Go `net.JoinHostPort`). */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Splits `host:port` as Go's `net.SplitHostPort` does: `[v6]:port`, or exactly one colon. Returns
 * undefined when `address` has no port (`reviews`, `::1` without brackets).
 */
export function splitHostPort(address: string): { host: string; port: string } | undefined {
  if (address.startsWith("[")) {
    const end = address.indexOf("]");
    if (end < 0 || address[end + 1] !== ":") return undefined;
    const port = address.slice(end + 2);
    return port.includes(":") || port.includes("[") ? undefined : { host: address.slice(1, end), port };
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0 || address.indexOf(":") !== colon) return undefined;
  return { host: address.slice(0, colon), port: address.slice(colon + 1) };
}

/**
 * Expands a name a proxyless client dialled to the service FQDN, exactly as istiod's grpcgen
 * `tryFindFQDN` does: a name without a dot is `<name>.<dnsDomain>`; `<name>.<ns>` and
 * `<name>.<ns>.svc` expand only when `<ns>` is the client's own namespace; anything else (FQDNs,
 * other namespaces, IPv4 addresses) returns undefined. `dnsDomain` is the fourth part of the client's node id
 * (`<ns>.svc.cluster.local` from Istio's agent).
 */
export function expandProxylessShortName(
  name: string,
  client: { readonly namespace: string; readonly dnsDomain: string },
): string | undefined {
  if (!name.includes(".")) return `${name}.${client.dnsDomain}`;
  for (const suffix of [client.namespace, `${client.namespace}.svc`]) {
    const tail = `.${suffix}`;
    if (name.endsWith(tail) && client.dnsDomain.startsWith(suffix)) {
      return `${name.slice(0, -tail.length)}.${client.dnsDomain}`;
    }
  }
  return undefined;
}

/** What a proxyless client asked for under one host name (see {@link proxylessListenerRequests}). */
export interface ProxylessListenerRequest {
  /** The names as the client requested them (each becomes a listener named `<name>:<port>`). */
  readonly requestedNames: ReadonlySet<string>;
  /** Requested ports; empty = every port of the service (a name was requested without a port). */
  readonly ports: ReadonlySet<string>;
}

/**
 * Groups the LDS resource names a proxyless client subscribed to by host, the way istiod's grpcgen
 * `newListenerNameFilter` does: server listener names are kept as they are; `host[:port]` names are
 * indexed under the host and, when {@link expandProxylessShortName} expands it, also under the FQDN;
 * a name without a port means every port and clears the port filter for that host.
 */
export function proxylessListenerRequests(
  names: Iterable<string>,
  client: { readonly namespace: string; readonly dnsDomain: string },
): Map<string, ProxylessListenerRequest> {
  const out = new Map<string, { requestedNames: Set<string>; ports: Set<string> | undefined }>();
  for (const name of names) {
    if (name.startsWith(PROXYLESS_SERVER_LISTENER_PREFIX)) {
      out.set(name, { requestedNames: new Set([name]), ports: undefined });
      continue;
    }
    const split = splitHostPort(name);
    const requested = split === undefined ? name : split.host;
    const keys = [requested];
    const fqdn = expandProxylessShortName(requested, client);
    if (fqdn !== undefined) keys.push(fqdn);
    for (const key of keys) {
      const existing = out.get(key);
      const entry = existing ?? { requestedNames: new Set<string>(), ports: undefined };
      entry.requestedNames.add(requested);
      if (split !== undefined) {
        // A port filter is built only for a new entry or one that already filters by port: once
        // a host was requested without a port, it stays "all ports".
        if (existing === undefined || existing.ports !== undefined) {
          entry.ports ??= new Set();
          entry.ports.add(split.port);
        }
      } else {
        entry.ports = undefined;
      }
      out.set(key, entry);
    }
  }
  const result = new Map<string, ProxylessListenerRequest>();
  for (const [key, { requestedNames, ports }] of out) {
    result.set(key, { requestedNames, ports: ports ?? new Set() });
  }
  return result;
}

/**
 * The route configuration a proxyless client listener points at: the default cluster name of the
 * service port, `outbound|<port>||<fqdn>` (grpcgen `clusterKey`).
 */
export function proxylessRouteConfigName(hostname: string, port: number): string {
  return `outbound|${port}||${hostname}`;
}
