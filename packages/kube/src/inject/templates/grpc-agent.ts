import { Annotation } from "../annotations.js";
import { appContainers, type Container, PROXY_CONTAINER } from "../pod-model.js";
import {
  agentEnv,
  agentStorage,
  annotationOr,
  canonicalLabels,
  defaultContainerAnnotations,
  env,
  logArgs,
  type PodOverlay,
  proxyMetadataEnv,
  proxyResources,
  pullPolicy,
  pullSecrets,
  readinessProbe,
  type TemplateContext,
} from "./template-context.js";

/**
 * Istio's `grpc-agent` template (istio/istio manifests/charts/istio-control/istio-discovery/files/
 * grpc-agent.yaml) for proxyless gRPC: no Envoy (`DISABLE_ENVOY=true`) and no traffic capture. The
 * agent fetches certificates into `/var/lib/istio/data` (`OUTPUT_CERTS`) and proxies xDS on a Unix
 * socket in `/etc/istio/proxy`, where it also writes the gRPC bootstrap; each application container
 * gets `GRPC_XDS_BOOTSTRAP` and both directories. `ISTIO_META_GENERATOR=grpc` asks the control
 * plane for its proxyless generator. As in Istio, `security.istio.io/tlsMode` is left to the user.
 */
export function grpcAgentTemplate(ctx: TemplateContext): PodOverlay {
  const { config } = ctx;
  const statusPort = Number(annotationOr(ctx, Annotation.statusPort, config.proxy.statusPort));
  const hold =
    ctx.proxyConfig.holdApplicationUntilProxyStarts === true || config.proxy.holdApplicationUntilProxyStarts;
  const apps = appContainers(ctx.pod.spec).map((c) => c.name);
  const storage = agentStorage(ctx, {
    credentialSocket: false,
    socketVolume: "istio-xds",
    explicitEmptyDir: false,
    bootstrap: true,
    bootstrapMount: false,
    userVolumes: true,
  });

  const appOverlays: Container[] = apps.map((name) => ({
    name,
    env: [
      env("GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", "true"),
      env("GRPC_XDS_BOOTSTRAP", "/etc/istio/proxy/grpc-bootstrap.json"),
    ],
    volumeMounts: [
      { mountPath: "/var/lib/istio/data", name: "istio-data" },
      { mountPath: "/etc/istio/proxy", name: "istio-xds" },
    ],
  }));

  const proxy: Container = {
    name: PROXY_CONTAINER,
    image: ctx.proxyImage,
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args: ["proxy", "sidecar", "--domain", `$(POD_NAMESPACE).svc.${config.clusterDomain}`, ...logArgs(ctx)],
    // Without Envoy there is nothing on 15021: the agent's own status port answers readiness, and
    // `pilot-agent wait` must ask it (istio/istio testdata/inject/grpc-agent.yaml.injected).
    ...(hold
      ? {
          lifecycle: {
            postStart: {
              exec: {
                command: ["pilot-agent", "wait", `--url=http://localhost:${statusPort}/healthz/ready`],
              },
            },
          },
        }
      : {}),
    env: [
      env("ISTIO_META_GENERATOR", "grpc"),
      env("OUTPUT_CERTS", "/var/lib/istio/data"),
      ...agentEnv(ctx, { appContainers: apps }),
      ...proxyMetadataEnv(ctx),
      env("ISTIO_META_DNS_CAPTURE", "false"),
      env("DISABLE_ENVOY", "true"),
    ],
    ...pullPolicy(ctx),
    ...(statusPort !== 0 ? { readinessProbe: readinessProbe(ctx, statusPort) } : {}),
    resources: proxyResources(ctx),
    volumeMounts: storage.mounts,
  };

  return {
    labels: canonicalLabels(ctx),
    annotations: { ...defaultContainerAnnotations(ctx), [Annotation.rewriteAppHTTPProbers]: "false" },
    initContainers: [],
    containers: [...appOverlays, proxy],
    volumes: storage.volumes,
    imagePullSecrets: pullSecrets(ctx),
    securityContext: { fsGroup: 1337 },
  };
}
