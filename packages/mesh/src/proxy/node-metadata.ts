import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { MeshError } from "../mesh-error.js";

/** A container port the agent reports in `POD_PORTS` (Istio `PodPort`). */
export interface PodPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

/**
 * The node metadata Istio's agent sends (istio/istio pkg/model/proxy.go `NodeMetadata` and
 * `BootstrapNodeMetadata`), typed. The JSON name of each field is given in its comment; the agent
 * sets them from `ISTIO_META_<NAME>` environment variables. Unknown keys stay in `raw`.
 *
 * Everything here is asserted by the client. It identifies the workload only once the xDS stream is
 * authenticated and {@link checkProxyIdentity} has matched it against the peer's SPIFFE ID.
 */
export interface NodeMetadata {
  /** `ISTIO_VERSION`, e.g. `1.24.0`. */
  readonly istioVersion?: string;
  /** `ISTIO_REVISION`. */
  readonly istioRevision?: string;
  /** `LABELS`: the workload's labels (pod labels), including `STATIC_LABELS`. */
  readonly labels: Readonly<Record<string, string>>;
  /** `STATIC_LABELS`: labels from `ISTIO_METAJSON_LABELS`. */
  readonly staticLabels?: Readonly<Record<string, string>>;
  /** `ANNOTATIONS`. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** `INSTANCE_IPS`: the workload's IPs (a comma-separated string on the wire). */
  readonly instanceIps: readonly string[];
  /** `NAMESPACE`. */
  readonly namespace?: string;
  /** `NODE_NAME`: the Kubernetes node. */
  readonly nodeName?: string;
  /** `WORKLOAD_NAME`: e.g. the Deployment name. */
  readonly workloadName?: string;
  /** `INTERCEPTION_MODE`: `REDIRECT` (default), `TPROXY` or `NONE`. */
  readonly interceptionMode?: string;
  /** `SERVICE_ACCOUNT`. */
  readonly serviceAccount?: string;
  /** `MESH_ID`. */
  readonly meshId?: string;
  /** `CLUSTER_ID` (`Kubernetes` from a default install). */
  readonly clusterId?: string;
  /** `NETWORK`. */
  readonly network?: string;
  /** `REQUESTED_NETWORK_VIEW` (comma-separated on the wire). */
  readonly requestedNetworkView?: readonly string[];
  /** `POD_PORTS`: container ports (a JSON array inside a string on the wire). */
  readonly podPorts?: readonly PodPort[];
  /** `GENERATOR`: `grpc` marks a proxyless gRPC client. */
  readonly generator?: string;
  /** `DNS_CAPTURE` (string boolean on the wire). */
  readonly dnsCapture?: boolean;
  /** `DNS_AUTO_ALLOCATE` (string boolean on the wire). */
  readonly dnsAutoAllocate?: boolean;
  /** `ENABLE_HBONE` (string boolean on the wire). */
  readonly enableHbone?: boolean;
  /** `METADATA_DISCOVERY` (string boolean on the wire). */
  readonly metadataDiscovery?: boolean;
  /** `AUTO_REGISTER_GROUP`: the WorkloadGroup a VM registers itself with. */
  readonly autoRegisterGroup?: string;
  /** `WORKLOAD_ENTRY`: the WorkloadEntry this proxy is. */
  readonly workloadEntry?: string;
  /** `UNPRIVILEGED_POD`: `"true"` when the proxy cannot bind ports below 1024. */
  readonly unprivilegedPod?: string;
  /** `HTTP10`: `"1"` accepts HTTP/1.0 on outbound listeners. */
  readonly http10?: string;
  /** `ENVOY_STATUS_PORT`. */
  readonly envoyStatusPort?: number;
  /** `ENVOY_PROMETHEUS_PORT`. */
  readonly envoyPrometheusPort?: number;
  /** `PLATFORM_METADATA`. */
  readonly platformMetadata?: Readonly<Record<string, string>>;
  /** `PROXY_CONFIG`: the proxy's ProxyConfig (MeshConfig.defaultConfig merged with overrides), as JSON. */
  readonly proxyConfig?: JsonObject;
  /** `NAME`: the instance (pod) name. */
  readonly instanceName?: string;
  /** `OWNER`: the owning controller, e.g. `kubernetes://apis/apps/v1/namespaces/ns/deployments/x`. */
  readonly owner?: string;
  /** `PILOT_SAN`: the SANs the agent expects of the control plane. */
  readonly pilotSan?: readonly string[];
  /** `APP_CONTAINERS`. */
  readonly appContainers?: string;
  /** The metadata as received. */
  readonly raw: JsonObject;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Parses node metadata strictly, the way Istio's `ParseBootstrapNodeMetadata` decodes it into typed
 * fields: a known key with a value of the wrong JSON type makes the node invalid (istiod answers
 * `INVALID_ARGUMENT`), naming the key and what it must be. `nodeId` only labels the error.
 */
export function parseNodeMetadata(raw: JsonObject | undefined, nodeId = ""): NodeMetadata {
  // A private copy: the result is frozen, and the caller's message must not be.
  const meta: JsonObject = raw === undefined ? {} : (structuredClone(raw) as JsonObject);
  const where = nodeId === "" ? "node metadata" : `node ${JSON.stringify(nodeId)} metadata`;
  const fail = (key: string, expected: string, got: JsonValue | undefined): never => {
    throw new MeshError("INVALID_NODE", `${where} ${key} must be ${expected}; got ${describe(got)}`);
  };
  const str = (key: string): string | undefined => {
    const v = meta[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === "string" ? v : fail(key, "a string", v);
  };
  const stringMap = (key: string): Record<string, string> | undefined => {
    const v = meta[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) return fail(key, "an object of strings", v);
    const out: Record<string, string> = {};
    for (const [k, value] of Object.entries(v)) {
      if (typeof value !== "string") return fail(`${key}.${k}`, "a string", value);
      out[k] = value;
    }
    return out;
  };
  const csv = (key: string): string[] | undefined => {
    const s = str(key);
    if (s === undefined) return undefined;
    return s === "" ? [] : s.split(",");
  };
  const stringBool = (key: string): boolean | undefined => {
    const s = str(key);
    if (s === undefined) return undefined;
    // Go strconv.ParseBool, which Istio's StringBool uses.
    if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
    if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
    return fail(key, 'a boolean string ("true", "false", "1", "0", …)', s);
  };
  const int = (key: string): number | undefined => {
    const v = meta[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === "number" && Number.isInteger(v) ? v : fail(key, "an integer", v);
  };
  const stringArray = (key: string): string[] | undefined => {
    const v = meta[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) return fail(key, "an array of strings", v);
    return v as string[];
  };

  const out: Mutable<NodeMetadata> = {
    labels: stringMap("LABELS") ?? {},
    instanceIps: csv("INSTANCE_IPS") ?? [],
    raw: meta,
  };
  const assign = <K extends keyof NodeMetadata>(k: K, v: NodeMetadata[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  assign("istioVersion", str("ISTIO_VERSION"));
  assign("istioRevision", str("ISTIO_REVISION"));
  assign("staticLabels", stringMap("STATIC_LABELS"));
  assign("annotations", stringMap("ANNOTATIONS"));
  assign("namespace", str("NAMESPACE"));
  assign("nodeName", str("NODE_NAME"));
  assign("workloadName", str("WORKLOAD_NAME"));
  assign("interceptionMode", str("INTERCEPTION_MODE"));
  assign("serviceAccount", str("SERVICE_ACCOUNT"));
  assign("meshId", str("MESH_ID"));
  assign("clusterId", str("CLUSTER_ID"));
  assign("network", str("NETWORK"));
  assign("requestedNetworkView", csv("REQUESTED_NETWORK_VIEW"));
  assign(
    "podPorts",
    podPorts(str("POD_PORTS"), (expected, got) => fail("POD_PORTS", expected, got)),
  );
  assign("generator", str("GENERATOR"));
  assign("dnsCapture", stringBool("DNS_CAPTURE"));
  assign("dnsAutoAllocate", stringBool("DNS_AUTO_ALLOCATE"));
  assign("enableHbone", stringBool("ENABLE_HBONE"));
  assign("metadataDiscovery", stringBool("METADATA_DISCOVERY"));
  assign("autoRegisterGroup", str("AUTO_REGISTER_GROUP"));
  assign("workloadEntry", str("WORKLOAD_ENTRY"));
  assign("unprivilegedPod", str("UNPRIVILEGED_POD"));
  assign("http10", str("HTTP10"));
  assign("envoyStatusPort", int("ENVOY_STATUS_PORT"));
  assign("envoyPrometheusPort", int("ENVOY_PROMETHEUS_PORT"));
  assign("platformMetadata", stringMap("PLATFORM_METADATA"));
  assign("instanceName", str("NAME"));
  assign("owner", str("OWNER"));
  assign("pilotSan", stringArray("PILOT_SAN"));
  assign("appContainers", str("APP_CONTAINERS"));
  const proxyConfig = meta.PROXY_CONFIG;
  if (proxyConfig !== undefined && proxyConfig !== null) {
    if (typeof proxyConfig !== "object" || Array.isArray(proxyConfig)) {
      fail("PROXY_CONFIG", "an object (ProxyConfig as JSON)", proxyConfig);
    }
    out.proxyConfig = proxyConfig as JsonObject;
  }
  return out;
}

/** `POD_PORTS` is a JSON array encoded in a string (Istio `PodPortList`). */
function podPorts(
  value: string | undefined,
  fail: (expected: string, got: JsonValue) => never,
): PodPort[] | undefined {
  if (value === undefined) return undefined;
  const expected = 'a string holding a JSON array of {"name","containerPort","protocol"}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return fail(expected, value);
  }
  if (!Array.isArray(parsed)) return fail(expected, value);
  return parsed.map((p) => {
    if (
      typeof p !== "object" ||
      p === null ||
      !Number.isInteger((p as { containerPort?: unknown }).containerPort)
    ) {
      return fail(expected, value);
    }
    const { name, containerPort, protocol } = p as {
      name?: unknown;
      containerPort: number;
      protocol?: unknown;
    };
    return {
      containerPort,
      ...(typeof name === "string" ? { name } : {}),
      ...(typeof protocol === "string" ? { protocol } : {}),
    };
  });
}

function describe(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const text = JSON.stringify(v);
  return `${typeof v} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}
