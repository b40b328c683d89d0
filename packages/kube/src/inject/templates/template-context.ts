import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { canonicalQuantity, cpuCores } from "../../quantity.js";
import { Annotation, Label } from "../annotations.js";
import type { DeployMeta } from "../deploy-meta.js";
import type { InjectorConfig } from "../injector-config.js";
import { appContainers, type Container, type Pod, type PodSpec } from "../pod-model.js";
import { type ProxyConfig, proxyConfigToJson } from "../proxy-config.js";

/** What a template sees: Istio's `SidecarTemplateData`, reduced to what the templates read. */
export interface TemplateContext {
  /** The pod with any earlier injection removed. */
  readonly pod: Pod;
  readonly namespace: string;
  readonly deploy: DeployMeta;
  readonly config: InjectorConfig;
  /** Mesh default, ProxyConfig resources and `proxy.istio.io/config`, merged. */
  readonly proxyConfig: ProxyConfig;
  readonly proxyImage: string;
  /** `ISTIO_META_NETWORK`: the pod's `topology.istio.io/network` label, else the configured network. */
  readonly network?: string;
}

/** What a template adds to a pod; merged over it the way Istio's strategic merge patch merges. */
export interface PodOverlay {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly initContainers: Container[];
  readonly containers: Container[];
  readonly volumes: IVolume[];
  readonly imagePullSecrets: Array<{ name: string }>;
  readonly securityContext?: PodSpec["securityContext"];
}

/** An injection template: Istio's `sidecar`, `grpc-agent` or `gateway`. */
export type InjectionTemplate = (ctx: TemplateContext) => PodOverlay;

/** Istio's `annotation` template function: the pod's annotation if set, else the default. */
export function annotationOr(
  ctx: TemplateContext,
  name: string,
  fallback: string | number | boolean,
): string {
  return ctx.pod.metadata.annotations?.[name] ?? String(fallback);
}

/** The interception mode: the pod's annotation, else the ProxyConfig's, else REDIRECT. */
export function interceptionMode(ctx: TemplateContext): string {
  return annotationOr(ctx, Annotation.interceptionMode, ctx.proxyConfig.interceptionMode ?? "REDIRECT");
}

/**
 * The proxy's resources (Istio's `resources` template): the four `sidecar.istio.io/proxy*`
 * annotations if any is set, else the configured defaults. Quantities are canonical, as the API
 * server stores them.
 */
export function proxyResources(ctx: TemplateContext): NonNullable<Container["resources"]> {
  const a = ctx.pod.metadata.annotations ?? {};
  const fromAnnotations = [
    Annotation.proxyCPU,
    Annotation.proxyMemory,
    Annotation.proxyCPULimit,
    Annotation.proxyMemoryLimit,
  ].some((name) => a[name] !== undefined);
  const pick = (cpu: string | undefined, memory: string | undefined) => {
    const out: Record<string, string> = {};
    if (cpu !== undefined) out.cpu = canonicalQuantity(cpu);
    if (memory !== undefined) out.memory = canonicalQuantity(memory);
    return Object.keys(out).length > 0 ? out : undefined;
  };
  const res = fromAnnotations
    ? {
        requests: pick(a[Annotation.proxyCPU], a[Annotation.proxyMemory]),
        limits: pick(a[Annotation.proxyCPULimit], a[Annotation.proxyMemoryLimit]),
      }
    : {
        requests: pick(ctx.config.proxy.resources.requests?.cpu, ctx.config.proxy.resources.requests?.memory),
        limits: pick(ctx.config.proxy.resources.limits?.cpu, ctx.config.proxy.resources.limits?.memory),
      };
  return Object.fromEntries(Object.entries(res).filter(([, v]) => v !== undefined));
}

/**
 * Envoy worker threads when the ProxyConfig sets none (or 0): the proxy's CPU limit, else its CPU
 * request, rounded up to whole CPUs; 0 means "leave it to the agent".
 */
export function estimatedConcurrency(
  ctx: TemplateContext,
  resources: NonNullable<Container["resources"]>,
): number {
  if ((ctx.proxyConfig.concurrency ?? 0) > 0) return 0;
  const cpu = (resources.limits?.cpu ?? resources.requests?.cpu) as string | undefined;
  return cpu === undefined ? 0 : cpuCores(cpu);
}

/** `service.istio.io/canonical-name` and `-revision`, from the labels Istio looks at, in its order. */
export function canonicalLabels(ctx: TemplateContext): Record<string, string> {
  const l = ctx.pod.metadata.labels ?? {};
  const first = (...values: Array<string | undefined>) =>
    values.find((v) => v !== undefined && v !== "") ?? "";
  return {
    [Label.canonicalName]: first(l[Label.canonicalName], l["app.kubernetes.io/name"], l.app, ctx.deploy.name),
    [Label.canonicalRevision]: first(
      l[Label.canonicalRevision],
      l["app.kubernetes.io/version"],
      l.version,
      "latest",
    ),
  };
}

/** `kubectl.kubernetes.io/default-container` and `-logs-container`: the first application container, unless set. */
export function defaultContainerAnnotations(ctx: TemplateContext): Record<string, string> {
  const first = appContainers(ctx.pod.spec)[0]?.name;
  const a = ctx.pod.metadata.annotations ?? {};
  const out: Record<string, string> = {};
  if (first === undefined) return out;
  if (a[Annotation.defaultLogsContainer] === undefined) out[Annotation.defaultLogsContainer] = first;
  if (a[Annotation.defaultContainer] === undefined) out[Annotation.defaultContainer] = first;
  return out;
}

// Go's encoding/json order for corev1.ContainerPort; empty fields are omitted.
const PORT_FIELDS = ["name", "hostPort", "containerPort", "protocol", "hostIP"] as const;

/** `ISTIO_META_POD_PORTS`: every container port as JSON, laid out as Istio's template lays it out. */
export function podPorts(ctx: TemplateContext): string {
  const entries: string[] = [];
  for (const c of ctx.pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      const ordered: Record<string, unknown> = {};
      for (const f of PORT_FIELDS) {
        const v = (p as unknown as Record<string, unknown>)[f];
        if (v !== undefined && v !== "" && v !== 0) ordered[f] = v;
      }
      entries.push(JSON.stringify(ordered));
    }
  }
  return ["[", ...entries.map((e, i) => `    ${i === 0 ? "" : ","}${e}`), "]"].join("\n");
}

/** An environment variable; an empty value is written as Kubernetes writes it, without `value`. */
export function env(name: string, value: string): IEnvVar {
  return value === "" ? { name } : { name, value };
}

/** An environment variable from the downward API. */
export function fieldEnv(name: string, fieldPath: string): IEnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** The environment every template gives the agent, from `JWT_POLICY` to `TRUST_DOMAIN` and the ProxyConfig's metadata. */
export function agentEnv(
  ctx: TemplateContext,
  options: { interceptionMode?: string; appContainers: string[] },
): IEnvVar[] {
  const { config, deploy, proxyConfig } = ctx;
  const meshId = config.meshId ?? config.trustDomain;
  const out: IEnvVar[] = [
    env("JWT_POLICY", "third-party-jwt"),
    env("PILOT_CERT_PROVIDER", "istiod"),
    env("CA_ADDR", config.caAddress),
    fieldEnv("POD_NAME", "metadata.name"),
    fieldEnv("POD_NAMESPACE", "metadata.namespace"),
    fieldEnv("INSTANCE_IP", "status.podIP"),
    fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    fieldEnv("HOST_IP", "status.hostIP"),
    env("PROXY_CONFIG", `${proxyConfigToJson(proxyConfig)}\n`),
    env("ISTIO_META_POD_PORTS", podPorts(ctx)),
    env("ISTIO_META_APP_CONTAINERS", options.appContainers.join(",")),
    env("ISTIO_META_CLUSTER_ID", config.clusterId),
  ];
  if (options.interceptionMode !== undefined)
    out.push(env("ISTIO_META_INTERCEPTION_MODE", options.interceptionMode));
  if (ctx.network !== undefined && ctx.network !== "") out.push(env("ISTIO_META_NETWORK", ctx.network));
  if (deploy.name !== "") {
    out.push(env("ISTIO_META_WORKLOAD_NAME", deploy.name));
    out.push(
      env(
        "ISTIO_META_OWNER",
        `kubernetes://apis/${deploy.apiVersion}/namespaces/${deploy.namespace || "default"}/${deploy.kind.toLowerCase()}s/${deploy.name}`,
      ),
    );
  }
  if (ctx.pod.metadata.annotations?.[Annotation.bootstrapOverride] !== undefined) {
    out.push(env("ISTIO_BOOTSTRAP_OVERRIDE", "/etc/istio/custom-bootstrap/custom_bootstrap.json"));
  }
  if (meshId !== "") out.push(env("ISTIO_META_MESH_ID", meshId));
  if (config.trustDomain !== "") out.push(env("TRUST_DOMAIN", config.trustDomain));
  return out;
}

/** The ProxyConfig's `proxyMetadata`, sorted by name as Go templates range over maps. */
export function proxyMetadataEnv(ctx: TemplateContext): IEnvVar[] {
  return Object.entries(ctx.proxyConfig.proxyMetadata ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => env(name, value));
}

/** The agent's readiness probe: `/healthz/ready`, with the `readiness.status.sidecar.istio.io/*` annotations. */
export function readinessProbe(ctx: TemplateContext, port: number): Container["readinessProbe"] {
  return {
    httpGet: { path: "/healthz/ready", port },
    initialDelaySeconds: Number(
      annotationOr(
        ctx,
        Annotation.readinessInitialDelaySeconds,
        ctx.config.proxy.readinessInitialDelaySeconds,
      ),
    ),
    periodSeconds: Number(
      annotationOr(ctx, Annotation.readinessPeriodSeconds, ctx.config.proxy.readinessPeriodSeconds),
    ),
    timeoutSeconds: 3,
    failureThreshold: Number(
      annotationOr(ctx, Annotation.readinessFailureThreshold, ctx.config.proxy.readinessFailureThreshold),
    ),
  };
}

/** The projected service-account token (audience `istio-ca`) and the root certificate ConfigMap. */
export function credentialVolumes(ctx: TemplateContext): IVolume[] {
  return [
    {
      name: "istio-token",
      projected: {
        sources: [
          {
            serviceAccountToken: {
              path: "istio-token",
              expirationSeconds: 43200,
              audience: ctx.config.tokenAudience,
            },
          },
        ],
      },
    },
    { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
  ];
}

/** The downward-API volume the agent reads labels and annotations from. */
export const PODINFO_VOLUME: IVolume = {
  name: "istio-podinfo",
  downwardAPI: {
    items: [
      { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
      { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
    ],
  },
};

/** `sidecar.istio.io/userVolume` and `userVolumeMount`: JSON objects keyed by volume name. */
export function userVolumes(ctx: TemplateContext): { volumes: IVolume[]; mounts: IVolumeMount[] } {
  const a = ctx.pod.metadata.annotations ?? {};
  const parse = (text: string | undefined) =>
    text === undefined ? [] : Object.entries(JSON.parse(text) as Record<string, Record<string, unknown>>);
  return {
    volumes: parse(a[Annotation.userVolume]).map(([name, v]) => ({ name, ...v }) as IVolume),
    mounts: parse(a[Annotation.userVolumeMount]).map(([name, v]) => ({ name, ...v }) as IVolumeMount),
  };
}

/** A custom bootstrap from a ConfigMap (`sidecar.istio.io/bootstrapOverride`), as volume and mount. */
export function bootstrapOverride(ctx: TemplateContext): { volume?: IVolume; mount?: IVolumeMount } {
  const name = ctx.pod.metadata.annotations?.[Annotation.bootstrapOverride];
  if (name === undefined) return {};
  return {
    volume: { name: "custom-bootstrap-volume", configMap: { name } },
    mount: { mountPath: "/etc/istio/custom-bootstrap", name: "custom-bootstrap-volume" },
  };
}

/** How a template lays out the agent's volumes (the three templates differ in small ways). */
export interface AgentStorageOptions {
  /** Mount the credential socket directory (`sidecar` and `gateway`; not `grpc-agent`). */
  readonly credentialSocket: boolean;
  /** The SDS/xDS socket volume: `istio-envoy` for Envoy, `istio-xds` for proxyless gRPC. */
  readonly socketVolume: "istio-envoy" | "istio-xds";
  /** `gateway` writes `emptyDir: {}` on the socket volumes; the others leave them source-less. */
  readonly explicitEmptyDir: boolean;
  /** Honour `sidecar.istio.io/bootstrapOverride` (volume, and the mount when `bootstrapMount`). */
  readonly bootstrap: boolean;
  readonly bootstrapMount: boolean;
  /** Honour `sidecar.istio.io/userVolume` and `userVolumeMount`. */
  readonly userVolumes: boolean;
}

/**
 * The agent's mounts and the pod's volumes, in Istio's order: workload identity sockets and
 * certificates, the root certificate ConfigMap, data, the SDS/xDS socket directory, the projected
 * token (audience `istio-ca`) and pod info. Volumes without a source are defaulted to emptyDir by
 * the API server, as with Istio's templates.
 */
export function agentStorage(
  ctx: TemplateContext,
  options: AgentStorageOptions,
): { mounts: IVolumeMount[]; volumes: IVolume[] } {
  const user = options.userVolumes ? userVolumes(ctx) : { volumes: [], mounts: [] };
  const bootstrap = options.bootstrap ? bootstrapOverride(ctx) : {};
  const socket = (name: string): IVolume => (options.explicitEmptyDir ? { emptyDir: {}, name } : { name });
  const mounts: IVolumeMount[] = [
    { name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" },
    ...(options.credentialSocket
      ? [{ name: "credential-socket", mountPath: "/var/run/secrets/credential-uds" }]
      : []),
    { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" },
    { mountPath: "/var/run/secrets/istio", name: "istiod-ca-cert" },
    { mountPath: "/var/lib/istio/data", name: "istio-data" },
    ...(options.bootstrapMount && bootstrap.mount !== undefined ? [bootstrap.mount] : []),
    { mountPath: "/etc/istio/proxy", name: options.socketVolume },
    { mountPath: "/var/run/secrets/tokens", name: "istio-token" },
    { name: "istio-podinfo", mountPath: "/etc/istio/pod" },
    ...user.mounts,
  ];
  const volumes: IVolume[] = [
    socket("workload-socket"),
    ...(options.credentialSocket ? [socket("credential-socket")] : []),
    socket("workload-certs"),
    ...(bootstrap.volume !== undefined ? [bootstrap.volume] : []),
    { emptyDir: { medium: "Memory" }, name: options.socketVolume },
    { name: "istio-data", emptyDir: {} },
    PODINFO_VOLUME,
    ...credentialVolumes(ctx),
    ...user.volumes,
  ];
  return { mounts, volumes };
}

/** `--proxyLogLevel`, `--proxyComponentLogLevel` and `--log_output_level`, annotation first. */
export function logArgs(ctx: TemplateContext): string[] {
  return [
    `--proxyLogLevel=${annotationOr(ctx, Annotation.logLevel, ctx.config.proxy.logLevel)}`,
    `--proxyComponentLogLevel=${annotationOr(ctx, Annotation.componentLogLevel, ctx.config.proxy.componentLogLevel)}`,
    `--log_output_level=${annotationOr(ctx, Annotation.agentLogLevel, ctx.config.proxy.agentLogLevel)}`,
  ];
}

/** The configured image pull secrets as `imagePullSecrets` entries. */
export function pullSecrets(ctx: TemplateContext): Array<{ name: string }> {
  return ctx.config.imagePullSecrets.map((name) => ({ name }));
}

/** `imagePullPolicy`, only when configured (Istio leaves it to Kubernetes otherwise). */
export function pullPolicy(ctx: TemplateContext): Pick<Container, "imagePullPolicy"> {
  return ctx.config.imagePullPolicy !== undefined ? { imagePullPolicy: ctx.config.imagePullPolicy } : {};
}
