import { Annotation } from "./annotations.js";
import { type Container, type Pod, PROXY_CONTAINER } from "./pod-model.js";

/** The agent's environment variable that tells it which application probes to answer for. */
export const KUBE_APP_PROBERS_ENV = "ISTIO_KUBE_APP_PROBERS";

type Probe = NonNullable<Container["livenessProbe"]>;
const KINDS = [
  ["livenessProbe", "livez"],
  ["readinessProbe", "readyz"],
  ["startupProbe", "startupz"],
] as const;

/** Whether probes are rewritten for this pod: `sidecar.istio.io/rewriteAppHTTPProbers`, else the default. */
export function shouldRewriteProbes(pod: Pod, byDefault: boolean): boolean {
  const value = pod.metadata.annotations?.[Annotation.rewriteAppHTTPProbers];
  return value === undefined ? byDefault : value.toLowerCase() === "true";
}

function resolvePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  if (typeof port === "string" && /^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * Rewrites the application containers' HTTP, TCP and gRPC probes to ask the agent instead
 * (`GET :<statusPort>/app-health/<container>/<livez|readyz|startupz>`), and records the original
 * probes in `ISTIO_KUBE_APP_PROBERS` on `istio-proxy`, as Istio's `applyRewrite` does. Under STRICT
 * mTLS the kubelet (which holds no mesh certificate) cannot reach the application's port through
 * the sidecar; the agent probes it on localhost. Exec probes are left alone.
 */
export function rewriteAppProbes(pod: Pod, statusPort: number): void {
  const probers: Record<string, unknown> = {};
  for (const container of pod.spec.containers ?? []) {
    if (container.name === PROXY_CONTAINER) continue;
    for (const [field, suffix] of KINDS) {
      const probe = container[field] as Probe | undefined;
      if (probe === undefined) continue;
      const path = `/app-health/${container.name}/${suffix}`;
      const timeout = probe.timeoutSeconds !== undefined ? { timeoutSeconds: probe.timeoutSeconds } : {};
      let original: unknown;
      if (probe.httpGet !== undefined) {
        const port = resolvePort(container, probe.httpGet.port);
        if (port === undefined) continue;
        original = { httpGet: { ...probe.httpGet, port }, ...timeout };
      } else if (probe.tcpSocket !== undefined) {
        const port = resolvePort(container, probe.tcpSocket.port);
        if (port === undefined) continue;
        original = { tcpSocket: { ...probe.tcpSocket, port }, ...timeout };
      } else if (probe.grpc !== undefined) {
        original = { grpc: probe.grpc, ...timeout };
      } else {
        continue;
      }
      probers[path] = original;
      const { httpGet: _h, tcpSocket: _t, grpc: _g, ...rest } = probe;
      container[field] = { ...rest, httpGet: { path, port: statusPort, scheme: "HTTP" } };
    }
  }
  if (Object.keys(probers).length === 0) return;
  const proxy = pod.spec.containers?.find((c) => c.name === PROXY_CONTAINER);
  if (proxy === undefined) return;
  const sorted = Object.fromEntries(Object.entries(probers).sort(([a], [b]) => (a < b ? -1 : 1)));
  proxy.env = [
    ...(proxy.env ?? []).filter((e) => e.name !== KUBE_APP_PROBERS_ENV),
    { name: KUBE_APP_PROBERS_ENV, value: JSON.stringify(sorted) },
  ];
}
