import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type Proxy as AdminProxy,
  ProxyKind,
  ProxySchema,
  type TypeSync,
  TypeSyncSchema,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { capabilitiesOf, type Proxy as MeshProxy, type ProxyStatus, parseProxy } from "@meshlet/mesh";
import { TypeUrl, typeShortName } from "@meshlet/xds";
import { syncStatusOf, type TrackedNode, worstStatus } from "./sync-tracker.js";

/** istioctl proxy-status' column order (CDS, LDS, EDS, RDS, ECDS); other types follow by name. */
export const TYPE_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.Listener,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.RouteConfiguration,
  TypeUrl.ExtensionConfig,
];

const KINDS: Readonly<Record<MeshProxy["kind"], ProxyKind>> = {
  sidecar: ProxyKind.SIDECAR,
  gateway: ProxyKind.GATEWAY,
  proxyless: ProxyKind.PROXYLESS,
};

/** The admin API's kind of a mesh proxy kind. */
export function proxyKindOf(kind: MeshProxy["kind"] | undefined): ProxyKind {
  return kind === undefined ? ProxyKind.UNSPECIFIED : KINDS[kind];
}

/**
 * One row of ListProxies: the node (what it claims: workload, identity, cluster, version), the
 * controller's view of it (kind, client, config version, warnings, error) and, per type, what
 * was sent, ACKed and NACKed.
 */
export function proxyMessage(
  tracked: TrackedNode | undefined,
  status: ProxyStatus | undefined,
  trustDomain: string,
): AdminProxy {
  const node = tracked?.node;
  const parsed = node !== undefined ? tryParse(node, trustDomain) : undefined;
  const id = node?.id ?? status?.id ?? "";
  const types: TypeSync[] = [];
  const states = tracked?.types ?? new Map();
  const urls = [
    ...TYPE_ORDER.filter((t) => states.has(t) || t !== TypeUrl.ExtensionConfig),
    ...[...states.keys()].filter((t) => !TYPE_ORDER.includes(t)).sort(),
  ];
  for (const typeUrl of urls) {
    const s = states.get(typeUrl);
    types.push(
      create(TypeSyncSchema, {
        typeUrl,
        type: typeShortName[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf(".") + 1),
        status: syncStatusOf(s),
        versionSent: s?.sent?.version ?? "",
        versionAcked: s?.acked?.version ?? "",
        versionNacked: s?.nacked?.version ?? "",
        nackError: s?.nacked?.error ?? "",
        ...(s?.sent ? { lastSent: timestampFromMs(s.sent.at) } : {}),
        ...(s?.acked ? { lastAcked: timestampFromMs(s.acked.at) } : {}),
        ...(s?.nacked ? { lastNacked: timestampFromMs(s.nacked.at) } : {}),
      }),
    );
  }
  const client = status?.client ?? (node !== undefined && parsed !== undefined ? clientOf(node, parsed) : "");
  return create(ProxySchema, {
    id,
    kind: proxyKindOf(status?.kind ?? parsed?.kind),
    namespace: status?.namespace ?? parsed?.namespace ?? "",
    workload: parsed !== undefined ? workloadName(parsed) : "",
    identity: parsed?.identity ?? "",
    clusterId: parsed?.clusterId ?? "",
    client: client === "grpc-unknown" ? "grpc" : client,
    clientVersion: node !== undefined ? clientVersion(node) : "",
    ...(tracked !== undefined ? { connectedSince: timestampFromMs(tracked.since) } : {}),
    streams: tracked?.streams ?? status?.streams ?? 0,
    status: worstStatus(types.map((t) => t.status)),
    types,
    configVersion: status?.version ?? "",
    warnings: (status?.warnings ?? []).map((w) => w.message),
    error: status?.error ?? "",
    ipAddresses: [...(parsed?.ipAddresses ?? [])],
  });
}

function tryParse(node: Node, trustDomain: string): MeshProxy | undefined {
  try {
    return parseProxy(node, { trustDomain });
  } catch {
    // A node the controller refuses is still shown by id (its streams are refused anyway).
    return undefined;
  }
}

function clientOf(node: Node, proxy: MeshProxy): string {
  return capabilitiesOf(node, proxy.kind === "proxyless").client;
}

/** The pod (or WorkloadEntry) name: WORKLOAD_NAME's pod part is not it, the node id's `<pod>.<ns>` is. */
function workloadName(proxy: MeshProxy): string {
  const dot = proxy.workloadId.lastIndexOf(".");
  return dot > 0 ? proxy.workloadId.slice(0, dot) : proxy.workloadId;
}

/** ISTIO_VERSION when the node sends it (Envoy via Istio's agent), else the client's user agent version. */
function clientVersion(node: Node): string {
  const istio = node.metadata?.ISTIO_VERSION;
  if (typeof istio === "string" && istio !== "") return istio;
  const v = node.userAgentVersionType;
  if (v.case === "userAgentVersion") return v.value;
  if (v.case === "userAgentBuildVersion") {
    const sv = v.value.version;
    return sv !== undefined ? `${sv.majorNumber}.${sv.minorNumber}.${sv.patch}` : "";
  }
  return "";
}
