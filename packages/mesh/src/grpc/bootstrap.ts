import { join } from "node:path";
import type { JsonObject } from "@bufbuild/protobuf";
import { PROXYLESS_SERVER_LISTENER_TEMPLATE } from "../naming/proxyless-names.js";
import { GRPC_RBAC_METADATA_KEY } from "../translate/capabilities.js";

// The xDS bootstrap of a proxyless gRPC workload in the shape Istio's agent writes
// (istio/istio pkg/istio-agent/grpcxds/grpc_bootstrap.go `GenerateBootstrap`, golden
// pkg/istio-agent/testdata/grpc-bootstrap.json): one insecure xDS server with `xds_v3`, the node
// (id `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, Istio metadata, an empty locality, which
// grpc-js-xds requires), the `file_watcher` certificate provider `default` reading the workload's
// cert-chain.pem, key.pem and root-cert.pem, and the server listener name template.

/** The file names of a workload's certificates, as Istio's agent writes them to `OUTPUT_CERTS`. */
export const WORKLOAD_CERT_FILES = {
  certificateChain: "cert-chain.pem",
  privateKey: "key.pem",
  rootCertificate: "root-cert.pem",
} as const;

/** Options of {@link grpcBootstrap}. */
export interface GrpcBootstrapOptions {
  /** The control plane, e.g. `127.0.0.1:15010` or `unix:///etc/istio/proxy/XDS`. */
  readonly serverUri: string;
  /** The pod (or VM) name. */
  readonly podName: string;
  readonly namespace: string;
  /** The workload IP (node id, `INSTANCE_IPS`). */
  readonly ip: string;
  /** Workload labels (`LABELS`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Kubernetes service account (`SERVICE_ACCOUNT`). */
  readonly serviceAccount?: string;
  /** Cluster DNS domain (default `cluster.local`). */
  readonly domainSuffix?: string;
  /** `CLUSTER_ID` (default `Kubernetes`, what a default install sends). */
  readonly clusterId?: string;
  /** `ISTIO_VERSION` to announce (absent by default). */
  readonly istioVersion?: string;
  /** Where the workload's cert-chain.pem, key.pem and root-cert.pem are: adds the `file_watcher` provider `default`. */
  readonly certDir?: string;
  /** How often the file watcher re-reads the certificates (default `900s`, Istio's). */
  readonly refreshInterval?: string;
  /** The client runs grpc-js with `GRPC_XDS_EXPERIMENTAL_RBAC=true`: say so in the metadata (meshlet's key). */
  readonly rbac?: boolean;
  /** More node metadata. */
  readonly metadata?: JsonObject;
}

/** The bootstrap JSON (write it to a file named by `GRPC_XDS_BOOTSTRAP`, or put it in `GRPC_XDS_BOOTSTRAP_CONFIG`). */
export interface GrpcBootstrap {
  readonly xds_servers: ReadonlyArray<{
    readonly server_uri: string;
    readonly channel_creds: ReadonlyArray<{ readonly type: string }>;
    readonly server_features: readonly string[];
  }>;
  readonly node: { readonly id: string; readonly metadata: JsonObject; readonly locality: JsonObject };
  readonly certificate_providers?: Readonly<
    Record<string, { readonly plugin_name: string; readonly config: Readonly<Record<string, string>> }>
  >;
  readonly server_listener_resource_name_template: string;
}

/** Istio's node id of a workload: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>`. */
export function workloadNodeId(
  ip: string,
  podName: string,
  namespace: string,
  domainSuffix = "cluster.local",
): string {
  return `sidecar~${ip}~${podName}.${namespace}~${namespace}.svc.${domainSuffix}`;
}

/** A proxyless gRPC bootstrap in Istio's shape (see the module comment). */
export function grpcBootstrap(options: GrpcBootstrapOptions): GrpcBootstrap {
  const metadata: JsonObject = {
    GENERATOR: "grpc",
    NAMESPACE: options.namespace,
    INSTANCE_IPS: options.ip,
    CLUSTER_ID: options.clusterId ?? "Kubernetes",
    LABELS: { ...(options.labels ?? {}) },
    ...(options.serviceAccount !== undefined ? { SERVICE_ACCOUNT: options.serviceAccount } : {}),
    ...(options.istioVersion !== undefined ? { ISTIO_VERSION: options.istioVersion } : {}),
    ...(options.rbac === true ? { [GRPC_RBAC_METADATA_KEY]: "true" } : {}),
    ...(options.metadata ?? {}),
  };
  const dir = options.certDir;
  return {
    xds_servers: [
      { server_uri: options.serverUri, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] },
    ],
    node: {
      id: workloadNodeId(options.ip, options.podName, options.namespace, options.domainSuffix),
      metadata,
      locality: {},
    },
    ...(dir !== undefined
      ? {
          certificate_providers: {
            default: {
              plugin_name: "file_watcher",
              config: {
                certificate_file: join(dir, WORKLOAD_CERT_FILES.certificateChain),
                private_key_file: join(dir, WORKLOAD_CERT_FILES.privateKey),
                ca_certificate_file: join(dir, WORKLOAD_CERT_FILES.rootCertificate),
                refresh_interval: options.refreshInterval ?? "900s",
              },
            },
          },
        }
      : {}),
    server_listener_resource_name_template: PROXYLESS_SERVER_LISTENER_TEMPLATE,
  };
}
