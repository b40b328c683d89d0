import { createServer } from "node:net";

// The part of the mesh Kubernetes would provide: the Bookinfo workloads (one process each, as one
// pod each), their IP addresses and ports, and the Services and Pods that describe them to the
// control plane — written as Kubernetes YAML, exactly what `meshlet serve` reads from a cluster.
// Each pod gets its own loopback address (127.0.0.10 …; Linux routes all of 127/8 to loopback),
// because Istio identifies a proxy's workload by its IP; ports are picked free at start.

/** The namespace of the demo (Bookinfo's). */
export const NAMESPACE = "default";
/** Bookinfo's service port. */
export const SERVICE_PORT = 9080;
/** The trust domain of the demo's identities. */
export const TRUST_DOMAIN = "cluster.local";

/** One workload (one pod, one process). */
export interface Workload {
  /** Pod name (`reviews-v2-0`). */
  readonly pod: string;
  /** Workload (Deployment) name (`reviews-v2`), Istio's `source_workload`. */
  readonly workload: string;
  /** `app` label; also the Service it belongs to, for servers. */
  readonly app: string;
  /** `version` label. */
  readonly version: string;
  readonly serviceAccount: string;
  /** Whether a Service selects it (the load generator is a client only). */
  readonly server: boolean;
  readonly ip: string;
  /** The gRPC port (container port `grpc`). */
  readonly port: number;
  /** The Prometheus port (`/metrics`). */
  readonly metricsPort: number;
}

/** The workloads without addresses: Bookinfo's pods plus a load generator. */
export const WORKLOADS: ReadonlyArray<Omit<Workload, "ip" | "port" | "metricsPort">> = [
  w("productpage", "v1", "bookinfo-productpage"),
  w("details", "v1", "bookinfo-details"),
  w("reviews", "v1", "bookinfo-reviews"),
  w("reviews", "v2", "bookinfo-reviews"),
  w("reviews", "v3", "bookinfo-reviews"),
  w("ratings", "v1", "bookinfo-ratings"),
  {
    pod: "loadgen-0",
    workload: "loadgen",
    app: "loadgen",
    version: "v1",
    serviceAccount: "loadgen",
    server: false,
  },
];

function w(app: string, version: string, serviceAccount: string) {
  return {
    pod: `${app}-${version}-0`,
    workload: `${app}-${version}`,
    app,
    version,
    serviceAccount,
    server: true,
  };
}

/** The Services of the demo (every app with a server). */
export const SERVICES = ["productpage", "details", "reviews", "ratings"] as const;

/** `reviews.default.svc.cluster.local`. */
export function serviceHost(app: string): string {
  return `${app}.${NAMESPACE}.svc.cluster.local`;
}

/** The xDS target clients dial: `xds:///reviews.default.svc.cluster.local:9080`. */
export function serviceTarget(app: string): string {
  return `xds:///${serviceHost(app)}:${SERVICE_PORT}`;
}

/** `spiffe://cluster.local/ns/default/sa/<sa>`. */
export function spiffeId(serviceAccount: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${serviceAccount}`;
}

/** The loopback address of the i-th workload. */
export function workloadIp(index: number): string {
  return `127.0.0.${10 + index}`;
}

/** A free TCP port on `host` (bound and released). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Gives every workload its address and free ports. Fails with a clear message where the loopback
 * addresses are not routed (macOS routes only 127.0.0.1 unless aliases are added).
 */
export async function placeWorkloads(): Promise<Workload[]> {
  const placed: Workload[] = [];
  for (const [i, spec] of WORKLOADS.entries()) {
    const ip = workloadIp(i);
    let port: number;
    let metricsPort: number;
    try {
      port = await freePort(ip);
      metricsPort = await freePort(ip);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(
        `cannot listen on ${ip} (${code ?? String(error)}): the demo gives each workload its own loopback address, ` +
          `as Kubernetes gives each pod an IP. Linux routes all of 127.0.0.0/8 to loopback; on macOS add the aliases first: ` +
          `for i in $(seq 10 ${10 + WORKLOADS.length - 1}); do sudo ifconfig lo0 alias 127.0.0.$i up; done`,
        { cause: error },
      );
    }
    placed.push({ ...spec, ip, port, metricsPort });
  }
  return placed;
}

/**
 * The Kubernetes YAML of the platform: a Service per app (port 9080 `grpc`, to the pods' named
 * container port `grpc`) and a Pod per workload (labels `app`, `version` and
 * `security.istio.io/tlsMode: istio` as Istio's injector sets them, the service account, the pod
 * IP, the Prometheus annotations, and `inject.istio.io/templates: grpc-agent`: Istio's mark of a
 * proxyless gRPC pod, which `meshlet explain` reads), what a cluster's API server would hold.
 */
export function platformYaml(workloads: readonly Workload[]): string {
  const docs: string[] = [
    `# Written by the reference-mesh demo at start: what Kubernetes would know about the demo's
# workloads (Services, and Pods with their IPs and ports). The ports change on every start; edit
# the YAML in config/ instead.`,
  ];
  SERVICES.forEach((app, i) => {
    docs.push(`apiVersion: v1
kind: Service
metadata:
  name: ${app}
  namespace: ${NAMESPACE}
  labels: { app: ${app}, service: ${app} }
spec:
  clusterIP: 10.96.0.${20 + i}
  selector: { app: ${app} }
  ports:
    - { name: grpc, port: ${SERVICE_PORT}, targetPort: grpc, appProtocol: grpc }`);
  });
  for (const wl of workloads) {
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${wl.pod}
  namespace: ${NAMESPACE}
  labels:
    app: ${wl.app}
    version: ${wl.version}
    security.istio.io/tlsMode: istio
    service.istio.io/canonical-name: ${wl.app}
    service.istio.io/canonical-revision: ${wl.version}
  annotations:
    inject.istio.io/templates: grpc-agent
    prometheus.io/scrape: "true"
    prometheus.io/port: "${wl.metricsPort}"
    prometheus.io/path: /metrics
spec:
  serviceAccountName: ${wl.serviceAccount}
  containers:
    - name: ${wl.app}
      ports:
        - { name: grpc, containerPort: ${wl.port} }
        - { name: http-monitoring, containerPort: ${wl.metricsPort} }
status:
  phase: Running
  podIP: ${wl.ip}
  podIPs: [{ ip: ${wl.ip} }]`);
  }
  return `${docs.join("\n---\n")}\n`;
}
