import { Annotation, Label } from "../annotations.js";
import {
  appContainers,
  CORE_DUMP_CONTAINER,
  type Container,
  INIT_CONTAINER,
  PROXY_CONTAINER,
} from "../pod-model.js";
import {
  agentEnv,
  agentStorage,
  annotationOr,
  canonicalLabels,
  defaultContainerAnnotations,
  estimatedConcurrency,
  interceptionMode,
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
 * Istio's `sidecar` template (istio/istio manifests/charts/istio-control/istio-discovery/files/
 * injection-template.yaml, the classic layout without Istio CNI): `istio-init` installs the
 * iptables redirection (`istio-iptables -p 15001 -z 15006 -u 1337 …`), `istio-proxy` runs
 * `pilot-agent proxy sidecar` with the agent's environment pointing at meshletd, and the volumes
 * carry the projected token (audience `istio-ca`), the `istio-ca-root-cert` ConfigMap, the SDS
 * socket directory and pod info.
 */
export function sidecarTemplate(ctx: TemplateContext): PodOverlay {
  const { config } = ctx;
  const annotations = ctx.pod.metadata.annotations ?? {};
  const mode = interceptionMode(ctx);
  const resources = proxyResources(ctx);
  const statusPort = annotationOr(ctx, Annotation.statusPort, config.proxy.statusPort);
  const tproxy = mode === "TPROXY";
  const netBind = annotationOr(ctx, Annotation.capNetBindService, config.proxy.capNetBindService) === "true";
  const coreDump = annotationOr(ctx, Annotation.enableCoreDump, config.proxy.enableCoreDump) === "true";
  const initImage = ctx.proxyImage;
  const initContainers: Container[] = [];

  if (mode !== "NONE") {
    const excluded = excludeInboundPort(
      statusPort,
      annotationOr(ctx, Annotation.excludeInboundPorts, config.proxy.excludeInboundPorts),
    );
    const args = [
      "istio-iptables",
      "-p",
      "15001",
      "-z",
      "15006",
      "-u",
      "1337",
      "-m",
      mode,
      "-i",
      annotationOr(ctx, Annotation.includeOutboundIPRanges, config.proxy.includeIPRanges),
      "-x",
      annotationOr(ctx, Annotation.excludeOutboundIPRanges, config.proxy.excludeIPRanges),
      "-b",
      annotationOr(ctx, Annotation.includeInboundPorts, config.proxy.includeInboundPorts),
      "-d",
      excluded === "" ? "15090,15021" : `15090,15021,${excluded}`,
    ];
    if (
      annotations[Annotation.includeOutboundPorts] !== undefined ||
      config.proxy.includeOutboundPorts !== ""
    ) {
      args.push("-q", annotationOr(ctx, Annotation.includeOutboundPorts, config.proxy.includeOutboundPorts));
    }
    if (
      annotations[Annotation.excludeOutboundPorts] !== undefined ||
      config.proxy.excludeOutboundPorts !== ""
    ) {
      args.push("-o", annotationOr(ctx, Annotation.excludeOutboundPorts, config.proxy.excludeOutboundPorts));
    }
    if (annotations[Annotation.kubevirtInterfaces] !== undefined)
      args.push("-k", annotations[Annotation.kubevirtInterfaces] as string);
    if (annotations[Annotation.excludeInterfaces] !== undefined)
      args.push("-c", annotations[Annotation.excludeInterfaces] as string);
    args.push(
      `--log_output_level=${annotationOr(ctx, Annotation.agentLogLevel, config.proxy.agentLogLevel)}`,
    );
    const metadataEnv = proxyMetadataEnv(ctx);
    initContainers.push({
      name: INIT_CONTAINER,
      image: initImage,
      args,
      ...pullPolicy(ctx),
      ...(metadataEnv.length > 0 ? { env: metadataEnv } : {}),
      resources,
      securityContext: {
        allowPrivilegeEscalation: config.proxy.privileged,
        privileged: config.proxy.privileged,
        capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
        readOnlyRootFilesystem: false,
        runAsGroup: 0,
        runAsNonRoot: false,
        runAsUser: 0,
      },
    });
  }
  if (coreDump) {
    initContainers.push({
      name: CORE_DUMP_CONTAINER,
      image: initImage,
      command: ["/bin/sh"],
      args: ["-c", "sysctl -w kernel.core_pattern=/var/lib/istio/data/core.proxy && ulimit -c unlimited"],
      ...pullPolicy(ctx),
      resources,
      securityContext: {
        allowPrivilegeEscalation: true,
        capabilities: { add: ["SYS_ADMIN"], drop: ["ALL"] },
        privileged: true,
        readOnlyRootFilesystem: false,
        runAsGroup: 0,
        runAsNonRoot: false,
        runAsUser: 0,
      },
    });
  }

  const concurrency = estimatedConcurrency(ctx, resources);
  const hold =
    ctx.proxyConfig.holdApplicationUntilProxyStarts === true || config.proxy.holdApplicationUntilProxyStarts;
  const traceLogging = ctx.proxyConfig.proxyMetadata?.IPTABLES_TRACE_LOGGING === "true";
  const storage = agentStorage(ctx, {
    credentialSocket: true,
    socketVolume: "istio-envoy",
    explicitEmptyDir: false,
    bootstrap: true,
    bootstrapMount: true,
    userVolumes: true,
  });
  const apps = appContainers(ctx.pod.spec).map((c) => c.name);

  const proxy: Container = {
    name: PROXY_CONTAINER,
    image: ctx.proxyImage,
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args: [
      "proxy",
      "sidecar",
      "--domain",
      `$(POD_NAMESPACE).svc.${config.clusterDomain}`,
      ...logArgs(ctx),
      ...(concurrency > 0 ? ["--concurrency", String(concurrency)] : []),
    ],
    ...(hold ? { lifecycle: { postStart: { exec: { command: ["pilot-agent", "wait"] } } } } : {}),
    env: [...agentEnv(ctx, { interceptionMode: mode, appContainers: apps }), ...proxyMetadataEnv(ctx)],
    ...pullPolicy(ctx),
    ...(statusPort !== "0" ? { readinessProbe: readinessProbe(ctx, 15021) } : {}),
    securityContext: traceLogging
      ? {
          allowPrivilegeEscalation: true,
          capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
          privileged: true,
          readOnlyRootFilesystem: !coreDump,
          runAsGroup: 1337,
          runAsNonRoot: false,
          runAsUser: 0,
        }
      : {
          allowPrivilegeEscalation: config.proxy.privileged,
          capabilities: {
            ...(tproxy || netBind
              ? { add: [...(tproxy ? ["NET_ADMIN"] : []), ...(netBind ? ["NET_BIND_SERVICE"] : [])] }
              : {}),
            drop: ["ALL"],
          },
          privileged: config.proxy.privileged,
          readOnlyRootFilesystem: !coreDump,
          runAsGroup: 1337,
          ...(tproxy || netBind
            ? { runAsNonRoot: false, runAsUser: 0 }
            : { runAsNonRoot: true, runAsUser: 1337 }),
        },
    resources,
    volumeMounts: storage.mounts,
  };

  const labels = ctx.pod.metadata.labels ?? {};
  return {
    labels: { [Label.tlsMode]: labels[Label.tlsMode] ?? "istio", ...canonicalLabels(ctx) },
    annotations: defaultContainerAnnotations(ctx),
    initContainers,
    containers: [proxy],
    volumes: storage.volumes,
    imagePullSecrets: pullSecrets(ctx),
  };
}

/**
 * Istio's `excludeInboundPort` template function: adds the agent's status port to the excluded
 * inbound ports, unless it is 0 or already there.
 */
export function excludeInboundPort(statusPort: string, excluded: string): string {
  const port = statusPort.trim();
  if (port === "" || port === "0") return excluded;
  const ports = excluded
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (ports.includes(port)) return excluded;
  return [...ports, port].join(",");
}
