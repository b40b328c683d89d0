import type { MeshletValues } from "./values.js";

/** Names every rendered object and the injector agree on, derived from the values. */
export interface MeshletNames {
  /** meshletd's Deployment, Service and ServiceAccount: `meshletd`, or `meshletd-<revision>`. */
  readonly meshletd: string;
  /** `<meshletd>.<namespace>.svc`: the host the agents dial and meshletd's certificate names. */
  readonly serviceHost: string;
  /** `istio.io/rev` value: the revision, or `default`. */
  readonly rev: string;
  readonly labels: Record<string, string>;
  readonly selector: Record<string, string>;
}

/** meshletd's names for the given values. */
export function meshletNames(values: MeshletValues): MeshletNames {
  const meshletd = values.revision === "" ? "meshletd" : `meshletd-${values.revision}`;
  const rev = values.revision === "" ? "default" : values.revision;
  const selector = { app: "meshletd", "istio.io/rev": rev };
  return {
    meshletd,
    serviceHost: `${meshletd}.${values.namespace}.svc`,
    rev,
    selector,
    labels: { ...selector, "app.kubernetes.io/name": "meshletd", "app.kubernetes.io/part-of": "meshlet" },
  };
}

/** Ports meshletd serves, as Istio's istiod serves them: the contract meshletd implements. */
export const MESHLETD_PORTS = {
  /** xDS over plaintext gRPC (Service port name grpc-xds). */
  xdsPlaintext: 15010,
  /** xDS and the Istio CA API over TLS (https-dns): what the agent dials. */
  xdsTls: 15012,
  /** Prometheus metrics at /metrics (http-monitoring). */
  monitoring: 15014,
  /** The admission webhooks (Service port 443, https-webhook). */
  webhook: 15017,
  /** /ready and /healthz for the kubelet. */
  health: 8080,
} as const;
