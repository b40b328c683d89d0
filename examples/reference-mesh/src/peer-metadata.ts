import { fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import { type Struct, StructSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";

// Istio's HTTP metadata exchange, which is how each side of a request learns the other's
// workload name, namespace and labels for its metrics: the client sends its node metadata in the
// request headers `x-envoy-peer-metadata-id` (the node id) and `x-envoy-peer-metadata` (base64 of
// a serialized google.protobuf.Struct), the server answers with its own in the response headers
// (istio/proxy source/extensions/filters/http/peer_metadata; Istio 1.20+'s
// `istio.metadata_exchange`). Proxyless gRPC has no such filter, so the demo's interceptors do it.
// The labels are the peer's word; the principal in the metrics comes from the verified certificate.

export const PEER_METADATA_ID_HEADER = "x-envoy-peer-metadata-id";
export const PEER_METADATA_HEADER = "x-envoy-peer-metadata";

/** What a workload tells its peers about itself (Istio's node metadata keys). */
export interface PeerMetadata {
  /** `NAME`: the pod. */
  readonly name: string;
  /** `NAMESPACE`. */
  readonly namespace: string;
  /** `WORKLOAD_NAME`: the Deployment. */
  readonly workload: string;
  /** `LABELS` (`app`, `version`, `service.istio.io/canonical-*`). */
  readonly labels: Readonly<Record<string, string>>;
  /** `CLUSTER_ID`. */
  readonly cluster: string;
}

/** Adds `me` to outgoing metadata. */
export function writePeerMetadata(metadata: grpc.Metadata, nodeId: string, me: PeerMetadata): void {
  const struct = fromJson(StructSchema, {
    NAME: me.name,
    NAMESPACE: me.namespace,
    WORKLOAD_NAME: me.workload,
    LABELS: { ...me.labels },
    CLUSTER_ID: me.cluster,
  });
  metadata.set(PEER_METADATA_ID_HEADER, nodeId);
  metadata.set(PEER_METADATA_HEADER, Buffer.from(toBinary(StructSchema, struct)).toString("base64"));
}

/** The peer's metadata from incoming metadata; undefined when absent or unreadable. */
export function readPeerMetadata(metadata: grpc.Metadata): PeerMetadata | undefined {
  const value = metadata.get(PEER_METADATA_HEADER)[0];
  if (typeof value !== "string" || value.length > 16_384) return undefined;
  let struct: Struct;
  try {
    struct = fromBinary(StructSchema, Buffer.from(value, "base64"));
  } catch {
    return undefined;
  }
  const text = (key: string): string => {
    const v = struct.fields[key]?.kind;
    return v?.case === "stringValue" ? v.value : "";
  };
  const labels: Record<string, string> = {};
  const l = struct.fields.LABELS?.kind;
  if (l?.case === "structValue") {
    for (const [k, v] of Object.entries(l.value.fields))
      if (v.kind.case === "stringValue") labels[k] = v.kind.value;
  }
  return {
    name: text("NAME"),
    namespace: text("NAMESPACE"),
    workload: text("WORKLOAD_NAME"),
    labels,
    cluster: text("CLUSTER_ID"),
  };
}
