// Istio's subset keys (istio/istio pilot/pkg/model/service.go `BuildSubsetKey`,
// `BuildInboundSubsetKey`, `BuildDNSSrvSubsetKey`, `ParseSubsetKey`). They name clusters, EDS
// service names, proxyless route configurations and (in the DNS SRV form) the mTLS SNI.

/** `inbound` or `outbound`, the first part of a subset key. */
export type TrafficDirection = "inbound" | "outbound";

/**
 * The cluster name for a service port and subset: `outbound|9080|v1|reviews.default.svc.cluster.local`,
 * `outbound|9080||reviews.default.svc.cluster.local` without a subset.
 */
export function subsetKey(
  direction: TrafficDirection,
  subset: string,
  hostname: string,
  port: number,
): string {
  return `${direction}|${port}|${subset}|${hostname}`;
}

/** `outbound|<port>|<subset>|<fqdn>`: {@link subsetKey} for outbound traffic. */
export function outboundClusterName(hostname: string, port: number, subset = ""): string {
  return subsetKey("outbound", subset, hostname, port);
}

/** `inbound|<port>||`: the sidecar's inbound cluster for a workload port (the target port). */
export function inboundClusterName(port: number): string {
  return subsetKey("inbound", "", "", port);
}

/**
 * The DNS SRV form of a subset key, `outbound_.9080_.v1_.reviews.default.svc.cluster.local`: the
 * SNI Istio sends on `ISTIO_MUTUAL` connections.
 */
export function dnsSrvSubsetKey(
  direction: TrafficDirection,
  subset: string,
  hostname: string,
  port: number,
): string {
  return `${direction}_.${port}_.${subset}_.${hostname}`;
}

/** The mTLS SNI for an outbound cluster: {@link dnsSrvSubsetKey} with direction `outbound`. */
export function outboundSni(hostname: string, port: number, subset = ""): string {
  return dnsSrvSubsetKey("outbound", subset, hostname, port);
}

/** The parts of a subset key. */
export interface SubsetKey {
  readonly direction: string;
  readonly port: number;
  readonly subset: string;
  readonly hostname: string;
}

/**
 * Parses either form of a subset key (`dir|port|subset|host` or `dir_.port_.subset_.host`); returns
 * undefined when the string is not one. A non-numeric port parses as 0, as in Istio.
 */
export function parseSubsetKey(key: string): SubsetKey | undefined {
  const sep = key.startsWith("outbound_") || key.startsWith("inbound_") ? "_." : "|";
  const parts: string[] = [];
  let rest = key;
  for (let i = 0; i < 3; i++) {
    const at = rest.indexOf(sep);
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + sep.length);
  }
  if (rest.includes(sep)) return undefined;
  const [direction, port, subset] = parts as [string, string, string];
  const portNumber = /^\d+$/.test(port) ? Number(port) : 0;
  return { direction, port: portNumber, subset, hostname: rest };
}
