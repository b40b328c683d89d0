import { isIP } from "node:net";
import type { JsonObject } from "@bufbuild/protobuf";
import { MeshError } from "../mesh-error.js";
import { parseWorkloadIdentity, workloadIdentity } from "../naming/identity.js";
import { quoteClientValue } from "../translate/warnings.js";
import { type NodeMetadata, parseNodeMetadata } from "./node-metadata.js";

/**
 * What kind of client a proxy is, which decides the generator that serves it:
 * - `sidecar`: an Envoy sidecar (node type `sidecar`),
 * - `gateway`: an Envoy ingress/egress gateway (node type `router`),
 * - `proxyless`: a gRPC library speaking xDS itself (`GENERATOR: grpc`, Istio
 *   `Proxy.IsProxylessGrpc`), whatever its node type.
 */
export type ProxyKind = "sidecar" | "gateway" | "proxyless";

/** The node type, first part of the node id (Istio `NodeType`; meshlet has no ambient types). */
export type NodeType = "sidecar" | "router";

/** Traffic interception mode (Istio `TrafficInterceptionMode`); `REDIRECT` unless the node says otherwise. */
export type InterceptionMode = "REDIRECT" | "TPROXY" | "NONE";

/** Istio release of the proxy (Istio `IstioVersion`); a missing or unparsable version is 65535.65535.65535. */
export interface IstioVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Where the proxy runs (`envoy.config.core.v3.Locality`). */
export interface ProxyLocality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/**
 * Who is asking: an xDS client identified from its node the way istiod identifies it
 * (istio/istio pilot/pkg/model/context.go `ParseServiceNodeWithMetadata`, `GetProxyConfigNamespace`).
 * Immutable. Built by {@link parseProxy}.
 */
export interface Proxy {
  /** The node id as sent: `sidecar~10.1.1.0~v0.default~default.svc.cluster.local`. */
  readonly id: string;
  /** Node type from the id. */
  readonly type: NodeType;
  /** Which generator serves it. */
  readonly kind: ProxyKind;
  /** The workload's IPs: `INSTANCE_IPS` when every entry is an IP, else the id's IP part. */
  readonly ipAddresses: readonly string[];
  /** Third part of the id, `<pod>.<namespace>` from Istio's agent. */
  readonly workloadId: string;
  /** Fourth part of the id, `<namespace>.svc.<cluster domain>` from Istio's agent. */
  readonly dnsDomain: string;
  /** The namespace whose config applies (Istio `ConfigNamespace`). */
  readonly namespace: string;
  /** Workload labels as the node reports them (`LABELS`). */
  readonly labels: Readonly<Record<string, string>>;
  /** `SERVICE_ACCOUNT`, when sent. */
  readonly serviceAccount?: string;
  /** The SPIFFE ID the proxy claims (trust domain + namespace + service account), when it sends a service account. */
  readonly identity?: string;
  /** `CLUSTER_ID` (`""` when absent). */
  readonly clusterId: string;
  /** Parsed `ISTIO_VERSION`. */
  readonly istioVersion: IstioVersion;
  /** `INTERCEPTION_MODE`, defaulting to `REDIRECT`. */
  readonly interceptionMode: InterceptionMode;
  /** `node.locality`, when the node sent one with any field set. */
  readonly locality?: ProxyLocality;
  /** All metadata, typed. */
  readonly metadata: NodeMetadata;
}

/** The parts of an xDS `Node` {@link parseProxy} reads (an `envoy.config.core.v3.Node` fits). */
export interface NodeLike {
  readonly id: string;
  readonly metadata?: JsonObject | undefined;
  readonly locality?:
    | { readonly region?: string; readonly zone?: string; readonly subZone?: string }
    | undefined;
}

/** Options for {@link parseProxy}. */
export interface ParseProxyOptions {
  /** Trust domain for {@link Proxy.identity} (default `cluster.local`, Istio's default). */
  readonly trustDomain?: string;
}

/** Istio's maximum version, assumed when the node sends none (Istio `MaxIstioVersion`). */
export const MAX_ISTIO_VERSION: IstioVersion = Object.freeze({ major: 65535, minor: 65535, patch: 65535 });

const ID_FORMAT = "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local";

/**
 * Identifies a proxy from its xDS node, strictly: a node without a usable identity is refused with
 * a `MeshError` whose code is `INVALID_NODE` (servers answer gRPC `INVALID_ARGUMENT`, as istiod
 * does) and whose message says exactly what is missing and how Istio's agent writes it.
 *
 * Rules (Istio `ParseServiceNodeWithMetadata` unless noted):
 * - the id has four `~`-separated parts: type, IP, id, DNS domain;
 * - the type is `sidecar` or `router` (`waypoint`/`ztunnel` are ambient proxies, which meshlet
 *   does not serve; anything else is refused);
 * - IPs come from `INSTANCE_IPS` when all of them are IPs, else from the id's IP part; none → refused;
 * - the namespace is `NAMESPACE`, else the first label of a `<ns>.svc.<domain>` DNS domain, else the
 *   namespace of a `<pod>.<ns>` id part. Istio falls back to the first label of *any* DNS domain,
 *   which reads `cluster` out of the `~cluster.local` ids that Istio's own `grpc-simple` template
 *   writes; meshlet takes the pod's namespace from the id instead. No namespace → refused;
 * - a `NAMESPACE` that contradicts a `<ns>.svc.<domain>` DNS domain is refused (meshlet: one of the
 *   two is wrong, and the namespace selects config);
 * - known metadata keys with values of the wrong JSON type are refused ({@link parseNodeMetadata}).
 */
export function parseProxy(node: NodeLike, options: ParseProxyOptions = {}): Proxy {
  const id = node.id;
  if (typeof id !== "string" || id === "") {
    throw new MeshError(
      "INVALID_NODE",
      `the xDS node has no id; Istio's agent sends ${ID_FORMAT} (e.g. sidecar~10.1.1.0~reviews-v1-abc.default~default.svc.cluster.local)`,
    );
  }
  const shown = quoteClientValue(id);
  const parts = id.split("~");
  if (parts.length !== 4) {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} has ${parts.length} part(s) separated by "~"; expected 4: ${ID_FORMAT}`,
    );
  }
  const [typePart, ipPart, workloadId, dnsDomain] = parts as [string, string, string, string];
  if (typePart === "waypoint" || typePart === "ztunnel") {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} is an ambient ${typePart}; meshlet serves sidecar and router (gateway) proxies and proxyless gRPC`,
    );
  }
  if (typePart !== "sidecar" && typePart !== "router") {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} has type ${JSON.stringify(typePart)}; expected "sidecar" (sidecars and proxyless gRPC) or "router" (gateways)`,
    );
  }
  const metadata = parseNodeMetadata(node.metadata, id);

  const instanceIps = metadata.instanceIps;
  let ipAddresses: string[];
  if (instanceIps.length > 0 && instanceIps.every((ip) => isIP(ip) !== 0)) ipAddresses = [...instanceIps];
  else if (isIP(ipPart) !== 0) ipAddresses = [ipPart];
  else {
    const fromMeta =
      instanceIps.length === 0
        ? "metadata INSTANCE_IPS is absent"
        : `metadata INSTANCE_IPS ${JSON.stringify(instanceIps.join(","))} is not a list of IP addresses`;
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} has no valid IP address: its IP part ${JSON.stringify(ipPart)} is not an IP address and ${fromMeta}; send the workload IP in the id or in INSTANCE_IPS`,
    );
  }

  const svcDomain = /^([^.]+)\.svc\./.exec(dnsDomain)?.[1];
  const podNamespace = /^[^.]+\.([^.]+)$/.exec(workloadId)?.[1];
  const namespace = nonEmpty(metadata.namespace) ?? svcDomain ?? podNamespace;
  if (namespace === undefined) {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} has no namespace: metadata NAMESPACE is absent and neither the DNS domain ${JSON.stringify(dnsDomain)} (<namespace>.svc.<cluster domain>) nor the id part ${JSON.stringify(workloadId)} (<pod>.<namespace>) names one; set NAMESPACE (ISTIO_META_NAMESPACE)`,
    );
  }
  if (svcDomain !== undefined && nonEmpty(metadata.namespace) !== undefined && svcDomain !== namespace) {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown} says namespace ${JSON.stringify(svcDomain)} in its DNS domain but metadata NAMESPACE is ${JSON.stringify(namespace)}; they must agree`,
    );
  }

  const serviceAccount = nonEmpty(metadata.serviceAccount);
  const identity =
    serviceAccount === undefined
      ? undefined
      : workloadIdentityOrInvalid(options.trustDomain ?? "cluster.local", namespace, serviceAccount, shown);

  const locality = {
    region: node.locality?.region ?? "",
    zone: node.locality?.zone ?? "",
    subZone: node.locality?.subZone ?? "",
  };
  const hasLocality = locality.region !== "" || locality.zone !== "" || locality.subZone !== "";

  const proxy: Proxy = {
    id,
    type: typePart,
    kind: metadata.generator === "grpc" ? "proxyless" : typePart === "router" ? "gateway" : "sidecar",
    ipAddresses: Object.freeze(ipAddresses),
    workloadId,
    dnsDomain,
    namespace,
    labels: metadata.labels,
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    ...(identity !== undefined ? { identity } : {}),
    clusterId: metadata.clusterId ?? "",
    istioVersion: parseIstioVersion(metadata.istioVersion ?? ""),
    interceptionMode: interceptionMode(metadata.interceptionMode),
    ...(hasLocality ? { locality } : {}),
    metadata,
  };
  return deepFreeze(proxy);
}

/**
 * Parses an Istio version string (Istio `ParseIstioVersion`): a `release-` prefix is dropped, then
 * `major.minor[.patch]` is read from the start; a missing patch is 65535; nothing readable is
 * {@link MAX_ISTIO_VERSION} (Istio assumes the newest proxy).
 */
export function parseIstioVersion(version: string): IstioVersion {
  const match = /^([1-9]+)\.([0-9]+)(\.([0-9]+))?/.exec(version.replace(/^release-/, ""));
  if (match === null) return MAX_ISTIO_VERSION;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: match[4] === undefined ? 65535 : Number(match[4]),
  };
}

/**
 * Checks the node's claims against the identity its xDS stream authenticated with, as istiod's
 * `checkConnectionIdentity` does: one of `peerIdentities` must be an Istio workload SPIFFE ID in the
 * proxy's namespace and, when the node sent `SERVICE_ACCOUNT`, of that service account. Returns the
 * matching identity; throws `MeshError` (`IDENTITY_MISMATCH`, gRPC `PERMISSION_DENIED`) otherwise.
 */
export function checkProxyIdentity(proxy: Proxy, peerIdentities: readonly string[]): string {
  for (const raw of peerIdentities) {
    const parsed = parseWorkloadIdentity(raw);
    if (parsed === undefined) continue;
    if (parsed.namespace !== proxy.namespace) continue;
    if (proxy.serviceAccount !== undefined && parsed.serviceAccount !== proxy.serviceAccount) continue;
    return raw;
  }
  throw new MeshError(
    "IDENTITY_MISMATCH",
    `no peer identity (${peerIdentities.join(", ") || "none"}) matches node ${JSON.stringify(proxy.id)}: expected spiffe://<trust domain>/ns/${proxy.namespace}/sa/${proxy.serviceAccount ?? "<any>"}`,
  );
}

function interceptionMode(mode: string | undefined): InterceptionMode {
  return mode === "TPROXY" || mode === "NONE" ? mode : "REDIRECT";
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

function workloadIdentityOrInvalid(td: string, ns: string, sa: string, shown: string): string {
  try {
    return workloadIdentity(td, ns, sa);
  } catch (cause) {
    throw new MeshError(
      "INVALID_NODE",
      `node id ${shown}: namespace ${JSON.stringify(ns)} and SERVICE_ACCOUNT ${JSON.stringify(sa)} do not form a SPIFFE ID (${cause instanceof MeshError ? cause.rawMessage : String(cause)})`,
      { cause },
    );
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}
