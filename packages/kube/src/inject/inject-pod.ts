import { KubeError } from "../kube-error.js";
import { Annotation, Label, validateAnnotations } from "./annotations.js";
import { rewriteAppProbes, shouldRewriteProbes } from "./app-probers.js";
import { deployMetaFromPod } from "./deploy-meta.js";
import { injectionRequired } from "./injection-policy.js";
import type { InjectorConfig } from "./injector-config.js";
import { createJsonPatch, type JsonPatchOperation } from "./json-patch.js";
import { applyContainer, applyOverlay } from "./merge-pod.js";
import {
  CORE_DUMP_CONTAINER,
  type Container,
  INIT_CONTAINER,
  type Pod,
  PROXY_CONTAINER,
} from "./pod-model.js";
import { mergeProxyConfig, type ProxyConfig, parseProxyConfig } from "./proxy-config.js";
import { gatewayTemplate } from "./templates/gateway.js";
import { grpcAgentTemplate } from "./templates/grpc-agent.js";
import { sidecarTemplate } from "./templates/sidecar.js";
import type { InjectionTemplate, PodOverlay, TemplateContext } from "./templates/template-context.js";

/** Istio's templates by name: `sidecar` (the default), `grpc-agent` (proxyless gRPC) and `gateway`. */
export const BUILTIN_TEMPLATES: Readonly<Record<string, InjectionTemplate>> = {
  sidecar: sidecarTemplate,
  "grpc-agent": grpcAgentTemplate,
  gateway: gatewayTemplate,
};

/** Options for {@link injectPod}. */
export interface InjectPodOptions {
  /** The namespace from the AdmissionRequest (a pod on CREATE may carry none). */
  readonly namespace?: string;
  /**
   * The webhook URL path: `/inject/cluster/<id>/net/<network>` sets `ISTIO_META_CLUSTER_ID` and
   * `ISTIO_META_NETWORK`, other `/<key>/<value>` pairs set `<KEY>` (Istio's `parseInjectEnvs`).
   */
  readonly path?: string;
  /** ProxyConfig resources that select this pod, merged between the mesh default and the annotation. */
  readonly proxyConfigFor?: (pod: Pod, namespace: string) => ProxyConfig | undefined;
  /** Templates besides (or replacing) the built-in ones. */
  readonly templates?: Readonly<Record<string, InjectionTemplate>>;
}

/** What {@link injectPod} decided. */
export type InjectionResult =
  | {
      readonly injected: true;
      /** The pod as it will be created. */
      readonly pod: Pod;
      /** The JSON Patch from the pod received to `pod`. */
      readonly patch: JsonPatchOperation[];
      readonly templates: readonly string[];
    }
  | {
      readonly injected: false;
      /** Why not: the policy said no (a normal outcome), or injection failed (`failed: true`). */
      readonly reason: string;
      readonly failed: boolean;
    };

interface InjectionStatus {
  readonly initContainers: string[] | null;
  readonly containers: string[] | null;
  readonly volumes: string[] | null;
  readonly imagePullSecrets: string[] | null;
  readonly revision: string;
}

/**
 * Injects Istio's proxy into a pod, as Istio's sidecar injector webhook does (pkg/kube/inject
 * `injectPod`): decide (`injectionRequired`), check the annotations, strip an earlier injection,
 * render the selected templates and merge them over the pod, re-apply the user's own `istio-proxy`
 * customisations, then post-process (metrics merge, probe rewrite, status annotation, container
 * order) and diff into a JSON Patch. Never throws for a bad pod: failures come back as
 * `{ injected: false, failed: true, reason }` so the webhook admits the pod unchanged with a warning.
 */
export function injectPod(
  input: Pod,
  config: InjectorConfig,
  options: InjectPodOptions = {},
): InjectionResult {
  const original = structuredClone(input);
  original.metadata ??= {};
  original.spec ??= { containers: [] };
  const namespace = original.metadata.namespace || options.namespace || "default";
  const decision = injectionRequired(original, namespace, config);
  if (!decision.inject) return { injected: false, reason: decision.reason, failed: false };
  try {
    return inject(original, namespace, config, options);
  } catch (error) {
    return { injected: false, failed: true, reason: error instanceof Error ? error.message : String(error) };
  }
}

function inject(
  original: Pod,
  namespace: string,
  config: InjectorConfig,
  options: InjectPodOptions,
): InjectionResult {
  const received = structuredClone(original);
  const annotations = original.metadata.annotations ?? {};
  const problems = validateAnnotations(annotations);
  if (problems.length > 0) throw new KubeError("INJECTION_FAILED", problems.join("; "));

  const templates = { ...BUILTIN_TEMPLATES, ...options.templates };
  const names = selectTemplates(original, config);
  for (const name of names) {
    if (templates[name] === undefined) {
      throw new KubeError(
        "INJECTION_FAILED",
        `requested template "${name}" not found; have ${Object.keys(templates).sort().join(", ")}`,
      );
    }
  }

  const proxyEnvs = parseInjectEnvs(options.path ?? "");
  const networkLabel = original.metadata.labels?.[Label.network];
  if (networkLabel !== undefined) proxyEnvs.ISTIO_META_NETWORK = networkLabel;
  const annotationConfig =
    annotations[Annotation.proxyConfig] !== undefined
      ? parseProxyConfig(annotations[Annotation.proxyConfig] as string).config
      : undefined;
  const stripped = stripPod(original, config);
  const ctx: TemplateContext = {
    pod: stripped,
    namespace,
    deploy: deployMetaFromPod(original, namespace),
    config:
      proxyEnvs.ISTIO_META_CLUSTER_ID !== undefined
        ? { ...config, clusterId: proxyEnvs.ISTIO_META_CLUSTER_ID }
        : config,
    proxyConfig: mergeProxyConfig(
      config.defaultProxyConfig,
      options.proxyConfigFor?.(original, namespace),
      annotationConfig,
    ),
    proxyImage: proxyImage(original, config),
    ...(config.network !== undefined && proxyEnvs.ISTIO_META_NETWORK === undefined
      ? { network: config.network }
      : {}),
  };

  let merged = original;
  const rendered: PodOverlay[] = [];
  for (const name of names) {
    const overlay = (templates[name] as InjectionTemplate)(ctx);
    rendered.push(overlay);
    merged = applyOverlay(merged, overlay);
  }
  const templateContainers = rendered.flatMap((o) => o.containers);
  const templateInit = rendered.flatMap((o) => o.initContainers);
  merged = reapplyOverwrittenContainers(merged, original, templateContainers, templateInit);
  postProcess(merged, ctx, proxyEnvs, {
    initContainers: unique(templateInit.map((c) => c.name)),
    containers: unique(templateContainers.map((c) => c.name)),
    volumes: unique(rendered.flatMap((o) => o.volumes.map((v) => v.name))),
    imagePullSecrets: unique(rendered.flatMap((o) => o.imagePullSecrets.map((s) => s.name))),
  });
  return { injected: true, pod: merged, patch: createJsonPatch(received, merged), templates: names };
}

function unique(names: string[]): string[] {
  return [...new Set(names)];
}

/** `inject.istio.io/templates` (comma-separated) if set, else the configured defaults. */
function selectTemplates(pod: Pod, config: InjectorConfig): string[] {
  const requested = pod.metadata.annotations?.[Annotation.templates];
  if (requested === undefined) return [...config.defaultTemplates];
  return requested
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
}

/** The proxy image: `sidecar.istio.io/proxyImage` when it names a repository, else the configured one. */
function proxyImage(pod: Pod, config: InjectorConfig): string {
  const annotated = pod.metadata.annotations?.[Annotation.proxyImage];
  return annotated?.includes("/") ? annotated : config.proxyImage;
}

/** Istio's `parseInjectEnvs`: `/inject/k1/v1/k2/v2` → `{K1: v1, K2: v2}`, `cluster` and `net` mapped to ISTIO_META_*. */
export function parseInjectEnvs(path: string): Record<string, string> {
  const parts = path.replace(/\/$/, "").split("/");
  const out: Record<string, string> = {};
  if (parts.length < 3) return out;
  const pairs = parts.slice(2);
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const key = pairs[i] as string;
    const value = (pairs[i + 1] as string).replaceAll("--slash--", "/");
    const name =
      key === "cluster" ? "ISTIO_META_CLUSTER_ID" : key === "net" ? "ISTIO_META_NETWORK" : key.toUpperCase();
    if (/^[A-Z_][A-Z0-9_]*$/.test(name)) out[name] = value;
  }
  return out;
}

function parseStatus(pod: Pod): InjectionStatus | undefined {
  const text = pod.metadata.annotations?.[Annotation.status];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<InjectionStatus>;
    return typeof parsed === "object" && parsed !== null ? (parsed as InjectionStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Istio's `stripPod`: removes what an earlier injection added, so re-injection is idempotent. */
function stripPod(pod: Pod, config: InjectorConfig): Pod {
  const status = parseStatus(pod);
  if (status === undefined) return pod;
  const out = structuredClone(pod);
  const injected = new Set(status.containers ?? []);
  const injectedInit = new Set(status.initContainers ?? []);
  out.spec.containers = (out.spec.containers ?? []).filter((c) => !injected.has(c.name));
  out.spec.initContainers = (out.spec.initContainers ?? []).filter((c) => !injectedInit.has(c.name));
  if (prometheusAnnotation(out, "port") === String(config.proxy.statusPort)) clearPrometheusAnnotations(out);
  delete out.metadata.annotations?.[Annotation.status];
  return out;
}

// Container fields in Go's encoding/json order (k8s.io/api/core/v1 Container), for the
// proxy.istio.io/overrides annotation; `resources` is a struct in Go and always written.
const CONTAINER_FIELDS = [
  "name",
  "image",
  "command",
  "args",
  "workingDir",
  "ports",
  "envFrom",
  "env",
  "resources",
  "resizePolicy",
  "restartPolicy",
  "volumeMounts",
  "volumeDevices",
  "livenessProbe",
  "readinessProbe",
  "startupProbe",
  "lifecycle",
  "terminationMessagePath",
  "terminationMessagePolicy",
  "imagePullPolicy",
  "securityContext",
  "stdin",
  "stdinOnce",
  "tty",
];

function goOrdered(container: Container): Record<string, unknown> {
  const source = { resources: {}, ...container } as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of CONTAINER_FIELDS) if (source[field] !== undefined) out[field] = source[field];
  for (const [field, value] of Object.entries(source)) if (!(field in out)) out[field] = value;
  return out;
}

/**
 * Istio's `reapplyOverwrittenContainers`: a container the pod itself defines under a name a template
 * uses (typically `istio-proxy` with custom resources) is merged back over the template's, and
 * recorded in `proxy.istio.io/overrides` so a later re-injection applies it again. `image: auto`
 * keeps the template's image.
 */
function reapplyOverwrittenContainers(
  merged: Pod,
  original: Pod,
  containers: Container[],
  initContainers: Container[],
): Pod {
  const status = parseStatus(original);
  let existing: { containers?: Container[]; initContainers?: Container[] } = {};
  const overridesText = original.metadata.annotations?.[Annotation.overrides];
  if (overridesText !== undefined) {
    try {
      existing = JSON.parse(overridesText) as typeof existing;
    } catch (cause) {
      throw new KubeError("INJECTION_FAILED", `annotation ${Annotation.overrides} is not valid JSON`, {
        cause,
      });
    }
  }
  const found = { containers: [] as Container[], initContainers: [] as Container[] };
  let out = merged;
  for (const [list, init] of [
    [containers, false],
    [initContainers, true],
  ] as const) {
    const previous = new Set(init ? (status?.initContainers ?? []) : (status?.containers ?? []));
    for (const c of list) {
      if (previous.has(c.name)) continue;
      const match =
        (init ? existing.initContainers : existing.containers)?.find((x) => x.name === c.name) ??
        (init ? original.spec.initContainers : original.spec.containers)?.find((x) => x.name === c.name);
      if (match === undefined) continue;
      const overlay = structuredClone(match);
      if (overlay.image === "auto") delete overlay.image;
      (init ? found.initContainers : found.containers).push(overlay);
      out = applyContainer(out, overlay, init);
    }
  }
  if (status === undefined && (found.containers.length > 0 || found.initContainers.length > 0)) {
    const record: Record<string, unknown> = {};
    if (found.containers.length > 0) record.containers = found.containers.map(goOrdered);
    if (found.initContainers.length > 0) record.initContainers = found.initContainers.map(goOrdered);
    out.metadata.annotations = {
      ...out.metadata.annotations,
      [Annotation.overrides]: JSON.stringify(record),
    };
  }
  adjustInitContainerUser(out, original);
  return out;
}

/** When the user's `istio-proxy` runs as another user, `istio-iptables -u` must exempt that user. */
function adjustInitContainerUser(pod: Pod, original: Pod): void {
  const user = original.spec.containers?.find((c) => c.name === PROXY_CONTAINER)?.securityContext?.runAsUser;
  if (user === undefined || user === 0) return;
  const init = pod.spec.initContainers?.find((c) => c.name === INIT_CONTAINER);
  const args = init?.args;
  const index = args?.indexOf("-u") ?? -1;
  if (args !== undefined && index >= 0 && index + 1 < args.length) args[index + 1] = String(user);
}

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_");

function prometheusAnnotation(pod: Pod, key: "scrape" | "port" | "path"): string | undefined {
  for (const [name, value] of Object.entries(pod.metadata.annotations ?? {})) {
    if (sanitize(name) === `prometheus_io_${key}`) return value;
  }
  return undefined;
}

function clearPrometheusAnnotations(pod: Pod): void {
  const annotations = pod.metadata.annotations ?? {};
  for (const name of Object.keys(annotations)) {
    if (["prometheus_io_scrape", "prometheus_io_port", "prometheus_io_path"].includes(sanitize(name)))
      delete annotations[name];
  }
}

/** Istio's `postProcessPod`: cluster/network env, metrics merge, probe rewrite, status annotation, order. */
function postProcess(
  pod: Pod,
  ctx: TemplateContext,
  proxyEnvs: Record<string, string>,
  status: Omit<InjectionStatus, "revision">,
): void {
  pod.metadata.annotations ??= {};
  pod.metadata.labels ??= {};
  const sidecar = pod.spec.containers?.find((c) => c.name === PROXY_CONTAINER);
  if (sidecar !== undefined && Object.keys(proxyEnvs).length > 0) {
    sidecar.env = [
      ...(sidecar.env ?? []).filter((e) => proxyEnvs[e.name] === undefined),
      ...Object.keys(proxyEnvs)
        .sort()
        .map((name) => ({ name, value: proxyEnvs[name] as string })),
    ];
  }
  applyPrometheusMerge(pod, ctx);
  if (shouldRewriteProbes(pod, ctx.config.rewriteAppHTTPProbe))
    rewriteAppProbes(pod, ctx.config.proxy.statusPort);
  if (proxyEnvs.ISTIO_META_NETWORK !== undefined)
    pod.metadata.labels[Label.network] = proxyEnvs.ISTIO_META_NETWORK;
  const nullable = (list: readonly string[] | null) => (list === null || list.length === 0 ? null : list);
  pod.metadata.annotations[Annotation.status] = JSON.stringify({
    initContainers: nullable(status.initContainers),
    containers: nullable(status.containers),
    volumes: nullable(status.volumes),
    imagePullSecrets: nullable(status.imagePullSecrets),
    revision: ctx.config.revision || "default",
  });
  Object.assign(pod.metadata.annotations, ctx.config.injectedAnnotations);
  reorder(pod, ctx);
}

/**
 * Istio's `applyPrometheusMerge`: unless the pod opts out, its `prometheus.io/*` annotations move
 * into `ISTIO_PROMETHEUS_ANNOTATIONS` on the agent and are replaced by the agent's merged endpoint
 * (`:15020/stats/prometheus`), which serves Envoy's and the application's metrics together.
 */
function applyPrometheusMerge(pod: Pod, ctx: TemplateContext): void {
  const scrape = prometheusAnnotation(pod, "scrape");
  if (scrape !== undefined && ["false", "0", "f"].includes(scrape.toLowerCase())) return;
  const merge = pod.metadata.annotations?.[Annotation.prometheusMergeMetrics];
  if (!(merge !== undefined ? merge.toLowerCase() === "true" : ctx.config.enablePrometheusMerge)) return;
  const target = String(ctx.config.proxy.statusPort);
  if (prometheusAnnotation(pod, "port") === target) return;
  const previous: Record<string, string> = {};
  for (const key of ["scrape", "path", "port"] as const) {
    const value = prometheusAnnotation(pod, key);
    if (value !== undefined) previous[key] = value;
  }
  const sidecar = pod.spec.containers?.find((c) => c.name === PROXY_CONTAINER);
  if (sidecar !== undefined && Object.keys(previous).length > 0) {
    sidecar.env = [
      ...(sidecar.env ?? []),
      { name: "ISTIO_PROMETHEUS_ANNOTATIONS", value: JSON.stringify(previous) },
    ];
  }
  clearPrometheusAnnotations(pod);
  pod.metadata.annotations = {
    ...pod.metadata.annotations,
    "prometheus.io/port": target,
    "prometheus.io/path": "/stats/prometheus",
    "prometheus.io/scrape": "true",
  };
}

/**
 * Istio's `reorderPod`: `istio-proxy` last (so `kubectl exec` defaults to the application), or
 * first when `holdApplicationUntilProxyStarts` is on; `istio-init` after every other init container
 * so it cannot black-hole their traffic, `enable-core-dump` after it.
 */
function reorder(pod: Pod, ctx: TemplateContext): void {
  const hold =
    ctx.proxyConfig.holdApplicationUntilProxyStarts === true ||
    ctx.config.proxy.holdApplicationUntilProxyStarts;
  const move = (list: Container[] | undefined, name: string, first: boolean): Container[] | undefined => {
    if (list === undefined) return list;
    const match = list.find((c) => c.name === name);
    if (match === undefined) return list;
    const rest = list.filter((c) => c.name !== name);
    return first ? [match, ...rest] : [...rest, match];
  };
  pod.spec.containers = move(pod.spec.containers, PROXY_CONTAINER, hold) as Container[];
  pod.spec.initContainers = move(
    move(pod.spec.initContainers, INIT_CONTAINER, false),
    CORE_DUMP_CONTAINER,
    false,
  );
}
