import { isIP } from "node:net";
import type { JsonValue } from "@bufbuild/protobuf";
import { type ConfigSnapshot, labelsMatch, type Resource, type ResourceKey } from "@meshlet/config";
import { podIps } from "../config-access.js";
import type { EnvoyGeneratorOptions, EnvoyGeneratorWarning } from "../envoy/context.js";
import { generateEnvoy } from "../envoy/generate.js";
import { parseConfigPath } from "../envoy/metadata.js";
import { ISTIO_METADATA_KEY } from "../envoy/well-known.js";
import { generateProxyless } from "../grpc/proxyless-generator.js";
import type { Service } from "../model/service.js";
import { parseSubsetKey } from "../naming/cluster-names.js";
import { PROXYLESS_SERVER_LISTENER_PREFIX, splitHostPort } from "../naming/proxyless-names.js";
import { type Proxy, type ProxyKind, parseProxy } from "../proxy/proxy.js";
import type { MeshConfig } from "../push/mesh-config.js";
import { PushContext } from "../push/push-context.js";
import { type ProxyCapabilities, proxylessCapabilities } from "../translate/capabilities.js";
import { walkProxylessClient, walkProxylessServer } from "./proxyless-walker.js";
import {
  type Call,
  type CallMode,
  type CallProtocol,
  type CallTls,
  clusterEndpoints,
  type UpstreamEndpoint,
  type WalkResult,
  walk,
  type XdsResources,
} from "./walker.js";

// explain(): what a proxy would do with a request, read off the config meshlet generates for it.
// The walk itself (walker.ts) reads only the xDS messages; this file picks the proxy and the
// destination address the way the application and iptables would, then names, for each step, the
// config objects that decided it: from the `istio.config` metadata Istio puts on routes, filter
// chains and clusters, the RBAC policy names (`ns[<ns>]-policy[<name>]-rule[<i>]`), the services
// behind virtual hosts and clusters, the PeerAuthentications behind an inbound chain, and the
// pods behind endpoints — each with its file and line when the config came from files.

/** A request to explain. */
export interface ExplainRequest {
  /**
   * The proxy the request leaves from: its xDS node id (`sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local`)
   * or its pod, `<pod>.<namespace>` (`<pod>` alone: namespace `default`).
   */
  readonly proxy: string;
  /** `host:port`: a service name (`reviews`, `reviews.default`, the FQDN), an external host, or an IP. Inbound: the port alone will do. */
  readonly to: string;
  readonly method?: string;
  /** Path with an optional query (default `/`). */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * `outbound` (default for sidecars): the application calls `to`. `inbound`: a peer calls this
   * proxy's workload on `to`'s port. Gateways always take the request from outside (`gateway`).
   */
  readonly direction?: "outbound" | "inbound";
  /** Default `http`. */
  readonly protocol?: CallProtocol;
  /** TLS the caller speaks (default plaintext, as an application behind a sidecar does). */
  readonly tls?: CallTls;
  readonly sni?: string;
  /** The destination address when `to` names a host the registry cannot resolve (default `192.0.2.1`, TEST-NET-1). */
  readonly address?: string;
  /** Inbound: the caller's identity (SPIFFE ID) on mTLS, what RBAC sees as principal. */
  readonly sourcePrincipal?: string;
  /** Verified JWT claims the request carries (RequestAuthentication passed). */
  readonly jwtClaims?: Readonly<Record<string, JsonValue>>;
  /** Follow the request into the destination workload's sidecar (inbound listener, mTLS, RBAC). Default true. */
  readonly follow?: boolean;
}

/** Where the config to explain comes from. */
export interface ExplainInput {
  readonly snapshot: ConfigSnapshot;
  /** A push context of that snapshot (built when absent). */
  readonly push?: PushContext;
  readonly mesh?: Partial<MeshConfig>;
  readonly options?: EnvoyGeneratorOptions;
  /**
   * Connected proxies by node id (the admin API passes the controller's): a node id found here is
   * explained as that proxy — proxyless when its node said `GENERATOR: grpc` — with what its client
   * accepts. Other proxies are read from their Pod.
   */
  readonly connected?: (nodeId: string) => ConnectedProxy | undefined;
}

/** A proxy connected to the control plane, as {@link ExplainInput.connected} returns it. */
export interface ConnectedProxy {
  readonly proxy: Proxy;
  /** What its xDS client accepts (default for a proxyless proxy: a gRPC client enforcing RBAC). */
  readonly capabilities?: ProxyCapabilities;
}

/** A config object that decided a step, with where it was written. */
export interface ConfigRef extends ResourceKey {
  readonly file?: string;
  readonly line?: number;
}

/** The steps of a walk, in a proxy's order. */
export type ExplainStepKind =
  | "destination"
  | "listener"
  | "filter-chain"
  | "http-filters"
  | "rbac"
  | "route-config"
  | "virtual-host"
  | "route"
  | "fault"
  | "response"
  | "cluster"
  | "endpoints";

/** One step: the xDS object the proxy used, what it did, and the config objects that made it so. */
export interface ExplainStep {
  readonly step: ExplainStepKind;
  /** The xDS object's name (listener, filter chain, route configuration, virtual host, route, cluster). */
  readonly name?: string;
  readonly detail: string;
  readonly config: readonly ConfigRef[];
}

/** The walk through one proxy. */
export interface ExplainHop {
  /** The proxy's node id. */
  readonly proxy: string;
  /** Envoy (`sidecar`, `gateway`) or `proxyless` gRPC: which config was walked and how. */
  readonly kind: ProxyKind;
  readonly mode: CallMode;
  /** The connection and request as that proxy sees them. */
  readonly call: Call;
  readonly result: WalkResult;
  readonly steps: readonly ExplainStep[];
  /** Warnings of the config generated for that proxy. */
  readonly warnings: readonly EnvoyGeneratorWarning[];
}

/** What the caller gets. */
export interface ExplainOutcome {
  /** `forwarded`: an upstream endpoint gets the request; `refused`: the proxy answers with an error or drops the connection; `answered`: a configured response (direct response, redirect, fault). */
  readonly kind: "forwarded" | "refused" | "answered";
  /** The HTTP status the caller sees, when a proxy answers. */
  readonly status?: number;
  /** The gRPC status a proxyless client's RPC ends with when it fails (`UNAVAILABLE`, `PERMISSION_DENIED`…). */
  readonly grpcStatus?: string;
  readonly summary: string;
}

/** The answer of {@link explain}. */
export interface Explanation {
  readonly request: ExplainRequest;
  /** The source proxy's walk, then (when followed) the destination sidecar's inbound walk. */
  readonly hops: readonly ExplainHop[];
  readonly outcome: ExplainOutcome;
}

/** Why a request cannot be explained. */
export class ExplainError extends Error {
  constructor(
    readonly code: "unknown-proxy" | "bad-request",
    message: string,
  ) {
    super(message);
    this.name = "ExplainError";
  }
}

/** Stand-in destination for a host the registry cannot resolve (RFC 5737 TEST-NET-1). */
const UNRESOLVED_ADDRESS = "192.0.2.1";

/**
 * Explains a request: generates the Envoy config of the source proxy, walks it as Envoy would
 * (listener → filter chain → HTTP filters and RBAC → route → cluster → endpoints), then, when the
 * chosen endpoint is a pod with a sidecar, walks that sidecar's inbound side with the identity
 * the source presents. Each step names the config objects that decided it.
 * @throws ExplainError when the proxy is not in the config or the request is malformed.
 */
export function explain(request: ExplainRequest, input: ExplainInput): Explanation {
  const push =
    input.push ??
    PushContext.create({
      snapshot: input.snapshot,
      ...(input.mesh !== undefined ? { mesh: input.mesh } : {}),
    });
  const ctx: Ctx = {
    push,
    snapshot: input.snapshot,
    options: input.options ?? {},
    ...(input.connected !== undefined ? { connected: input.connected } : {}),
  };
  const proxy = resolveProxy(ctx, request.proxy);
  const first =
    proxy.kind === "proxyless" ? proxylessClientHop(ctx, proxy, request) : firstHop(ctx, proxy, request);
  const hops: HopWithResources[] = [first];
  const next = request.follow === false ? undefined : followHop(ctx, proxy, request, first);
  if (next !== undefined) hops.push(next);
  const plain = hops.map(({ resources: _, ...h }) => h);
  return { request, hops: plain, outcome: outcomeOf(plain) };
}

interface Ctx {
  readonly push: PushContext;
  readonly snapshot: ConfigSnapshot;
  readonly options: EnvoyGeneratorOptions;
  readonly connected?: (nodeId: string) => ConnectedProxy | undefined;
}

/**
 * Istio's injection templates for proxyless gRPC (`inject.istio.io/templates: grpc-agent`, or
 * `grpc-simple`): a pod with one runs no sidecar; its application is the xDS client.
 */
const PROXYLESS_TEMPLATES = new Set(["grpc-agent", "grpc-simple"]);
const TEMPLATES_ANNOTATION = "inject.istio.io/templates";

function injectsProxyless(pod: Resource): boolean {
  const templates = (pod.metadata.annotations as Record<string, string> | undefined)?.[TEMPLATES_ANNOTATION];
  return (templates ?? "").split(",").some((t) => PROXYLESS_TEMPLATES.has(t.trim()));
}

// ----- proxies -------------------------------------------------------------------------------

/** The proxy of a node id or `<pod>.<namespace>`, with the labels, service account and IPs of its Pod. */
export function resolveProxy(ctx: Pick<Ctx, "push" | "snapshot" | "connected">, ref: string): Proxy {
  const connected = ref.includes("~") ? ctx.connected?.(ref) : undefined;
  if (connected !== undefined) return connected.proxy;
  let podName: string;
  let namespace: string;
  let type: "sidecar" | "router" | undefined;
  if (ref.includes("~")) {
    const parts = ref.split("~");
    if (parts.length !== 4)
      throw new ExplainError(
        "bad-request",
        `proxy id ${JSON.stringify(ref)} is not <type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`,
      );
    type = parts[0] === "router" ? "router" : "sidecar";
    const workload = parts[2] as string;
    const dot = workload.indexOf(".");
    podName = dot < 0 ? workload : workload.slice(0, dot);
    namespace = dot < 0 ? ((parts[3] as string).split(".")[0] as string) : workload.slice(dot + 1);
  } else {
    const dot = ref.indexOf(".");
    podName = dot < 0 ? ref : ref.slice(0, dot);
    namespace = dot < 0 ? "default" : ref.slice(dot + 1);
  }
  const pod = ctx.snapshot.get("Pod", namespace, podName);
  if (pod === undefined)
    throw new ExplainError(
      "unknown-proxy",
      `no Pod ${namespace}/${podName} in the config: explain needs the pod of the proxy (its labels, service account and IP)`,
    );
  const ips = podIps(pod as never);
  if (ips.length === 0)
    throw new ExplainError("unknown-proxy", `Pod ${namespace}/${podName} has no IP (status.podIP)`);
  const labels = (pod.metadata.labels ?? {}) as Record<string, string>;
  const sa =
    ((pod.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? "default") || "default";
  // A pod a Gateway selects runs a gateway (istio-proxy `router`), as Istio's gateway deployments do.
  const isGateway =
    type === "router" ||
    (type === undefined &&
      ctx.snapshot
        .list("Gateway")
        .some((g) => g.spec.selector !== undefined && labelsMatch(g.spec.selector, labels)));
  const nodeType = isGateway ? "router" : "sidecar";
  // A proxyless pod's node says GENERATOR grpc, as the grpc-agent template's bootstrap does.
  const proxyless = !isGateway && injectsProxyless(pod);
  return parseProxy(
    {
      id: `${nodeType}~${ips[0]}~${podName}.${namespace}~${namespace}.svc.${ctx.push.mesh.domainSuffix}`,
      metadata: {
        NAMESPACE: namespace,
        LABELS: labels,
        SERVICE_ACCOUNT: sa,
        INSTANCE_IPS: ips.join(","),
        ...(proxyless ? { GENERATOR: "grpc" } : {}),
      },
    },
    { trustDomain: ctx.push.mesh.trustDomain },
  );
}

// ----- destinations --------------------------------------------------------------------------

function parseTo(to: string): { host: string; port: number } {
  const trimmed = to.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
  if (/^\d+$/.test(trimmed)) return { host: "", port: Number(trimmed) };
  const hp = trimmed.startsWith(":") ? { host: "", port: trimmed.slice(1) } : splitHostPort(trimmed);
  if (hp === undefined || !/^\d+$/.test(hp.port) || Number(hp.port) < 1 || Number(hp.port) > 65535) {
    throw new ExplainError("bad-request", `--to ${JSON.stringify(to)} is not host:port`);
  }
  return { host: hp.host, port: Number(hp.port) };
}

/** The service a name reaches from a proxy, as Kubernetes DNS search domains expand it. */
function lookupService(ctx: Ctx, proxy: Proxy, host: string): Service | undefined {
  const suffix = ctx.push.mesh.domainSuffix;
  const parts = host.split(".");
  const candidates =
    parts.length === 1
      ? [`${host}.${proxy.namespace}.svc.${suffix}`, host]
      : parts.length === 2
        ? [`${host}.svc.${suffix}`, host]
        : host.endsWith(".svc")
          ? [`${host}.${suffix}`, host]
          : [host];
  for (const c of candidates) {
    const s = ctx.push.serviceForHostname(proxy, c);
    if (s !== undefined) return s;
  }
  return undefined;
}

function serviceRef(ctx: Ctx, s: Service): ConfigRef[] {
  return refOf(ctx, s.source);
}

function refOf(ctx: Ctx, key: ResourceKey | undefined): ConfigRef[] {
  if (key === undefined) return [];
  const r = ctx.snapshot.get(key.kind as never, key.namespace, key.name) as Resource | undefined;
  const origin = r === undefined ? undefined : ctx.snapshot.originOf(r);
  return [
    {
      kind: key.kind,
      namespace: key.namespace,
      name: key.name,
      ...(origin?.file !== undefined ? { file: origin.file } : {}),
      ...(origin?.position !== undefined ? { line: origin.position.line } : {}),
    },
  ];
}

function firstHop(ctx: Ctx, proxy: Proxy, req: ExplainRequest): HopWithResources {
  const { host, port } = parseTo(req.to);
  const mode: CallMode = proxy.kind === "gateway" ? "gateway" : (req.direction ?? "outbound");
  const steps: ExplainStep[] = [];
  let address: string;
  let callPort = port;
  if (mode === "outbound") {
    if (host === "") throw new ExplainError("bad-request", `--to ${JSON.stringify(req.to)} names no host`);
    if (isIP(host) !== 0) {
      address = host;
      const svc = ctx.push
        .servicesForProxy(proxy)
        .find((s) => s.addresses.includes(host) || s.defaultAddress === host);
      steps.push({
        step: "destination",
        detail:
          svc === undefined
            ? `${host}:${port}, an address no service has`
            : `${host}:${port}, the address of ${svc.hostname}`,
        config: svc === undefined ? [] : serviceRef(ctx, svc),
      });
    } else {
      const svc = lookupService(ctx, proxy, host);
      const vip =
        svc === undefined
          ? undefined
          : [svc.defaultAddress, ...svc.addresses].find((a) => a !== "" && a !== "0.0.0.0" && isIP(a) !== 0);
      const endpointIp =
        svc === undefined || vip !== undefined
          ? undefined
          : ctx.push
              .endpoints(svc, port)
              .flatMap((e) => e.addresses)
              .find((a) => isIP(a) !== 0);
      address = req.address ?? vip ?? endpointIp ?? UNRESOLVED_ADDRESS;
      const how =
        svc === undefined
          ? `${host} is not in the proxy's registry view; the application resolves it by DNS (stands in ${address})`
          : vip !== undefined
            ? `${host} resolves to ${svc.hostname}, VIP ${vip}`
            : endpointIp !== undefined
              ? `${host} resolves to ${svc.hostname}, no VIP: an endpoint address, ${endpointIp}`
              : `${host} resolves to ${svc.hostname}, no VIP and no endpoint address: DNS (stands in ${address})`;
      steps.push({
        step: "destination",
        detail: `${how}, port ${port}`,
        config: svc === undefined ? [] : serviceRef(ctx, svc),
      });
    }
  } else {
    address = proxy.ipAddresses[0] ?? UNRESOLVED_ADDRESS;
    // Clients reach the workload on a Service port; the proxy sees the target (container) port.
    // A gateway's clients name any host; an inbound call may name the workload's service.
    const named = mode === "inbound" && host !== "" ? lookupService(ctx, proxy, host) : undefined;
    const served = ctx.push
      .serviceTargets(proxy)
      .filter((t) => t.port.port === port && (named === undefined || named === t.service));
    const target = served[0];
    if (target !== undefined && target.targetPort !== port) {
      callPort = target.targetPort;
      steps.push({
        step: "destination",
        detail: `port ${port} of ${target.service.hostname} is port ${callPort} of ${proxy.workloadId} (${address})`,
        config: serviceRef(ctx, target.service),
      });
    } else {
      steps.push({
        step: "destination",
        detail: `${proxy.workloadId} (${address}) port ${port}`,
        config: target === undefined ? [] : serviceRef(ctx, target.service),
      });
    }
  }
  const hostHeader = host === "" ? `${address}:${port}` : `${host}:${port}`;
  const call: Call = {
    address,
    port: callPort,
    path: req.path ?? "/",
    method: req.method ?? "GET",
    protocol: req.protocol ?? "http",
    tls: req.tls ?? "plaintext",
    hostHeader: req.headers?.host ?? req.headers?.Host ?? hostHeader,
    ...(req.headers !== undefined ? { headers: req.headers } : {}),
    ...(req.sni !== undefined ? { sni: req.sni } : {}),
    callMode: mode,
    ...(req.sourcePrincipal !== undefined ? { sourcePrincipal: req.sourcePrincipal } : {}),
    ...(req.jwtClaims !== undefined ? { jwtClaims: req.jwtClaims } : {}),
  };
  return hop(ctx, proxy, call, steps);
}

/** The destination sidecar's walk, when the first hop forwards to a pod that has one. */
function followHop(
  ctx: Ctx,
  source: Proxy,
  req: ExplainRequest,
  first: HopWithResources,
): HopWithResources | undefined {
  const r = first.result;
  if (
    r.error !== undefined ||
    first.mode === "inbound" ||
    r.directResponse !== undefined ||
    r.redirect !== undefined
  )
    return undefined;
  if (r.fault?.abortHttpStatus !== undefined && r.fault.percent === 100) return undefined;
  const cluster =
    r.clusterMatched ?? [...(r.weightedClusters ?? [])].sort((a, b) => b.weight - a.weight)[0]?.cluster;
  if (cluster === undefined) return undefined;
  const eps = clusterEndpoints(first.resources, cluster);
  const ep = eps?.endpoints.find((e) => e.tlsMode === "istio");
  if (ep === undefined) return undefined;
  const pod = podByIp(ctx.snapshot, ep.address);
  if (pod === undefined) return undefined;
  const dest = resolveProxy(ctx, `${pod.metadata.name}.${pod.metadata.namespace}`);
  const tls: CallTls = ep.tls === undefined ? "plaintext" : ep.tls.certificate === "default" ? "mtls" : "tls";
  if (dest.kind === "proxyless")
    return proxylessServerHop(
      ctx,
      source,
      dest,
      { address: ep.address, port: ep.port, tls },
      first.call,
      pod,
    );
  const call: Call = {
    address: ep.address,
    port: ep.port,
    path: first.call.path ?? "/",
    method: first.call.method ?? "GET",
    protocol: first.call.protocol ?? "http",
    tls,
    ...(first.call.hostHeader !== undefined ? { hostHeader: first.call.hostHeader } : {}),
    ...(first.call.headers !== undefined ? { headers: first.call.headers } : {}),
    ...(tls !== "plaintext" && ep.tls !== undefined ? { sni: ep.tls.sni } : {}),
    callMode: "inbound",
    ...(tls === "mtls" && source.identity !== undefined ? { sourcePrincipal: source.identity } : {}),
    sourceAddress: source.ipAddresses[0] as string,
    ...(req.jwtClaims !== undefined ? { jwtClaims: req.jwtClaims } : {}),
  };
  const how =
    tls === "mtls"
      ? `Istio mTLS as ${source.identity ?? "(no identity)"}`
      : tls === "tls"
        ? "TLS"
        : "plaintext";
  return hop(ctx, dest, call, [
    {
      step: "destination",
      detail: `endpoint ${ep.address}:${ep.port} is ${dest.workloadId}, reached over ${how}`,
      config: refOf(ctx, { kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name }),
    },
  ]);
}

function podByIp(snapshot: ConfigSnapshot, ip: string): Resource | undefined {
  return snapshot.list("Pod").find((p) => podIps(p as never).includes(ip));
}

// ----- one hop -------------------------------------------------------------------------------

interface HopWithResources extends ExplainHop {
  readonly resources: XdsResources;
}

function hop(ctx: Ctx, proxy: Proxy, call: Call, steps: ExplainStep[]): HopWithResources {
  const resources = generateEnvoy(proxy, ctx.push, ctx.options);
  const result = walk(resources, call);
  const mode = call.callMode ?? "outbound";
  steps.push(...describe(ctx, proxy, resources, call, result));
  return {
    proxy: proxy.id,
    kind: proxy.kind,
    mode,
    call,
    result,
    steps,
    warnings: resources.warnings,
    resources,
  };
}

function configRefOf(ctx: Ctx, path: JsonValue | undefined): ConfigRef[] {
  return typeof path === "string" ? refOf(ctx, parseConfigPath(path)) : [];
}

function describe(ctx: Ctx, proxy: Proxy, resources: XdsResources, call: Call, r: WalkResult): ExplainStep[] {
  const steps: ExplainStep[] = [];
  const mode = call.callMode ?? "outbound";
  if (r.listenerMatched === undefined) return steps;
  steps.push(listenerStep(ctx, proxy, call, r.listenerMatched));
  if (r.filterChainMatched === undefined) return steps;
  steps.push(filterChainStep(ctx, proxy, call, r, mode));
  if (r.httpFilters !== undefined)
    steps.push({ step: "http-filters", detail: r.httpFilters.join(" → "), config: [] });
  steps.push(...rbacSteps(ctx, r), ...routingSteps(ctx, proxy, resources, call, r));
  return steps;
}

/** The RBAC decisions of a walk, each with the AuthorizationPolicy that decided. */
function rbacSteps(ctx: Ctx, r: WalkResult): ExplainStep[] {
  const steps: ExplainStep[] = [];
  for (const d of r.rbac ?? []) {
    const decided =
      d.matchedPolicy !== undefined
        ? [d.matchedPolicy]
        : d.action === "ALLOW" && !d.allowed
          ? d.policies
          : [];
    const refs = decided.flatMap((p) => refOf(ctx, policyKey(ctx, p)));
    const detail =
      d.matchedPolicy !== undefined
        ? `${d.action} policy ${d.matchedPolicy} matched: ${d.allowed ? "allowed" : "denied (403 RBAC: access denied)"}`
        : d.action === "ALLOW"
          ? d.allowed
            ? "no ALLOW policy applies: allowed"
            : `no ALLOW policy matched (${d.policies.join(", ")}): denied (403 RBAC: access denied)`
          : `no ${d.action} policy matched: allowed`;
    steps.push({ step: "rbac", name: d.filter, detail, config: refs });
  }
  if (r.extAuthz !== undefined)
    steps.push({
      step: "rbac",
      name: "envoy.filters.http.ext_authz",
      detail: `CUSTOM authorization: the external authorizer at cluster ${r.extAuthz} decides (on requests a CUSTOM policy selects)`,
      config: [],
    });
  return steps;
}

/** The steps from the route configuration to the endpoints of the chosen cluster(s). */
function routingSteps(
  ctx: Ctx,
  proxy: Proxy,
  resources: XdsResources,
  call: Call,
  r: WalkResult,
): ExplainStep[] {
  const steps: ExplainStep[] = [];
  if (r.routeConfigMatched !== undefined)
    steps.push({
      step: "route-config",
      name: r.routeConfigMatched,
      detail: `route configuration ${r.routeConfigMatched} (RDS)`,
      config: [],
    });
  if (r.virtualHostMatched !== undefined) steps.push(virtualHostStep(ctx, proxy, r.virtualHostMatched, call));
  if (r.routeMatched !== undefined) {
    const refs = r.routeConfigInfo !== undefined ? configRefOf(ctx, r.routeConfigInfo) : [];
    const named = r.routeMatched === "" ? "a route" : `route ${JSON.stringify(r.routeMatched)}`;
    const detail =
      refs.length > 0
        ? `${named} of ${fmtKey(refs[0] as ConfigRef)}`
        : `${named} (no VirtualService: the default route)`;
    steps.push({ step: "route", name: r.routeMatched, detail, config: refs });
  }
  if (r.fault !== undefined) {
    const what =
      r.fault.abortHttpStatus !== undefined
        ? `abort with HTTP ${r.fault.abortHttpStatus}`
        : r.fault.abortGrpcStatus !== undefined
          ? `abort with gRPC status ${r.fault.abortGrpcStatus}`
          : `delay ${r.fault.delay}`;
    steps.push({
      step: "fault",
      detail: `fault injection: ${what} for ${r.fault.percent}% of requests`,
      config: r.routeConfigInfo !== undefined ? configRefOf(ctx, r.routeConfigInfo) : [],
    });
  }
  if (r.directResponse !== undefined)
    steps.push({
      step: "response",
      detail: `the proxy answers ${r.directResponse.status}${r.directResponse.body !== undefined ? ` ${JSON.stringify(r.directResponse.body)}` : ""}`,
      config: [],
    });
  if (r.redirect !== undefined)
    steps.push({ step: "response", detail: `the proxy redirects to ${r.redirect}`, config: [] });
  if (r.filterChainConfigInfo !== undefined && r.routeConfigMatched === undefined) {
    const refs = configRefOf(ctx, r.filterChainConfigInfo);
    if (refs.length > 0)
      steps.push({ step: "route", detail: `TCP/TLS route of ${fmtKey(refs[0] as ConfigRef)}`, config: refs });
  }
  const clusters =
    r.clusterMatched !== undefined
      ? [{ cluster: r.clusterMatched, weight: 100 }]
      : (r.weightedClusters ?? []);
  const total = clusters.reduce((n, c) => n + c.weight, 0) || 1;
  for (const c of clusters) {
    steps.push(
      clusterStep(
        ctx,
        proxy,
        resources,
        c.cluster,
        clusters.length > 1 ? Math.round((c.weight * 100) / total) : undefined,
      ),
    );
    const eps = clusterEndpoints(resources, c.cluster);
    if (eps !== undefined && !SPECIAL_CLUSTERS.has(c.cluster) && !c.cluster.startsWith("inbound|"))
      steps.push(endpointsStep(ctx, c.cluster, eps.type, eps.endpoints));
  }
  return steps;
}

const SPECIAL_CLUSTERS = new Set(["PassthroughCluster", "BlackHoleCluster", "InboundPassthroughCluster"]);

function fmtKey(k: ResourceKey): string {
  return `${k.kind} ${k.namespace}/${k.name}`;
}

/**
 * The AuthorizationPolicy an RBAC policy name stands for: Envoy's `ns[<ns>]-policy[<name>]-rule[<i>]`,
 * or gRPC's `<ns>-<name>-<i>` (Istio grpcgen), looked up among the snapshot's policies since both
 * parts may contain dashes.
 */
function policyKey(ctx: Pick<Ctx, "snapshot">, name: string): ResourceKey | undefined {
  const m = /^ns\[([^\]]+)\]-policy\[([^\]]+)\]-rule\[\d+\]$/.exec(name);
  if (m !== null) return { kind: "AuthorizationPolicy", namespace: m[1] as string, name: m[2] as string };
  const g = /^(.+)-(\d+)$/.exec(name);
  if (g === null) return undefined;
  const p = ctx.snapshot
    .list("AuthorizationPolicy")
    .find((a) => `${a.metadata.namespace}-${a.metadata.name}` === g[1]);
  return p === undefined
    ? undefined
    : { kind: "AuthorizationPolicy", namespace: p.metadata.namespace, name: p.metadata.name };
}

function listenerStep(ctx: Ctx, proxy: Proxy, call: Call, name: string): ExplainStep {
  const port = call.port;
  if (name === "virtualInbound")
    return {
      step: "listener",
      name,
      detail: `virtualInbound (15006): inbound traffic to port ${port}, redirected by iptables`,
      config: [],
    };
  if (name === "virtualOutbound") {
    return {
      step: "listener",
      name,
      detail: `no listener for ${call.address}:${port}; virtualOutbound (15001) takes it (outboundTrafficPolicy ${ctx.push.mesh.outboundTrafficPolicy.mode})`,
      config: [],
    };
  }
  if (proxy.kind === "gateway") {
    const gateways = ctx.push
      .gatewaysForProxy(proxy)
      .filter((g) =>
        (g.spec.servers ?? []).some((s) => gatewayPorts(ctx, proxy, s.port?.number ?? 0).includes(port)),
      );
    return {
      step: "listener",
      name,
      detail: `gateway listener on port ${port}`,
      config: gateways.flatMap((g) =>
        refOf(ctx, { kind: "Gateway", namespace: g.metadata.namespace, name: g.metadata.name }),
      ),
    };
  }
  if (name.startsWith("0.0.0.0_"))
    return {
      step: "listener",
      name,
      detail: `outbound listener for port ${port} (every service on that port)`,
      config: [],
    };
  const services = ctx.push
    .servicesForProxy(proxy)
    .filter((s) => s.defaultAddress === call.address || s.addresses.includes(call.address ?? ""));
  return {
    step: "listener",
    name,
    detail: `outbound listener for ${call.address}:${port}`,
    config: services.flatMap((s) => serviceRef(ctx, s)),
  };
}

/** The ports a gateway listens on for a server port: the target port of a Service port with that number, else the number. */
function gatewayPorts(ctx: Ctx, proxy: Proxy, port: number): number[] {
  const targets = ctx.push
    .serviceTargets(proxy)
    .filter((t) => t.port.port === port)
    .map((t) => t.targetPort);
  return targets.length > 0 ? targets : [port];
}

function filterChainStep(ctx: Ctx, proxy: Proxy, call: Call, r: WalkResult, mode: CallMode): ExplainStep {
  const tls = r.downstreamTls;
  const tlsText =
    tls === undefined
      ? "no TLS termination"
      : tls.certificate === "default"
        ? `terminates Istio mTLS (certificate ${tls.certificate}${tls.requireClientCertificate ? ", client certificate required" : ""})`
        : `terminates TLS (certificate ${tls.certificate}${tls.requireClientCertificate ? ", client certificate required" : ""})`;
  const refs: ConfigRef[] = [];
  let why = "";
  if (mode === "inbound") {
    const effective = ctx.push.peerAuthentication(proxy);
    const portMode = effective.perPort.get(call.port) ?? effective.mode;
    why = `; PeerAuthentication mode for port ${call.port}: ${portMode}`;
    for (const k of effective.from) refs.push(...refOf(ctx, k));
  }
  if (r.filterChainConfigInfo !== undefined) refs.push(...configRefOf(ctx, r.filterChainConfigInfo));
  const name = r.filterChainMatched === "" ? "(unnamed)" : (r.filterChainMatched as string);
  return {
    step: "filter-chain",
    name,
    detail: `${r.filterChainIndex === -1 ? "default filter chain" : "filter chain"} ${name}: ${tlsText}${why}`,
    config: refs,
  };
}

function virtualHostStep(ctx: Ctx, proxy: Proxy, name: string, call: Call): ExplainStep {
  if (name === "allow_any")
    return {
      step: "virtual-host",
      name,
      detail: `allow_any: ${call.hostHeader} is no known service on this port; outboundTrafficPolicy ALLOW_ANY passes it through`,
      config: [],
    };
  if (name === "block_all")
    return {
      step: "virtual-host",
      name,
      detail: `block_all: ${call.hostHeader} is no known service on this port; outboundTrafficPolicy REGISTRY_ONLY answers 502`,
      config: [],
    };
  if (name.startsWith("inbound|"))
    return {
      step: "virtual-host",
      name,
      detail: `${name}: every request to the workload's port`,
      config: [],
    };
  if (name.startsWith("blackhole:"))
    return {
      step: "virtual-host",
      name,
      detail: `${name}: no VirtualService is bound to this gateway server (404)`,
      config: [],
    };
  const colon = name.lastIndexOf(":");
  const host = colon > 0 ? name.slice(0, colon) : name;
  const svc = ctx.push.serviceForHostname(proxy, host);
  return {
    step: "virtual-host",
    name,
    detail: `virtual host ${name} (Host ${call.hostHeader})`,
    config: svc === undefined ? [] : serviceRef(ctx, svc),
  };
}

function clusterStep(
  ctx: Ctx,
  proxy: Proxy,
  resources: XdsResources,
  name: string,
  percent: number | undefined,
): ExplainStep {
  const share = percent !== undefined ? ` (${percent}% of requests)` : "";
  if (name === "PassthroughCluster")
    return {
      step: "cluster",
      name,
      detail: `PassthroughCluster${share}: to the original destination, unchanged`,
      config: [],
    };
  if (name === "BlackHoleCluster")
    return {
      step: "cluster",
      name,
      detail: `BlackHoleCluster${share}: the connection is dropped`,
      config: [],
    };
  if (name === "InboundPassthroughCluster")
    return {
      step: "cluster",
      name,
      detail:
        "InboundPassthroughCluster: to the workload at the original destination (no service declares the port)",
      config: [],
    };
  if (name.startsWith("inbound|"))
    return { step: "cluster", name, detail: `${name}: to the workload's port, locally`, config: [] };
  const c = resources.clusters.find((x) => x.name === name);
  if (c === undefined)
    return { step: "cluster", name, detail: `${name}${share}: no such cluster (503 NR)`, config: [] };
  const meta = c.metadata?.filterMetadata[ISTIO_METADATA_KEY] as Record<string, JsonValue> | undefined;
  if (meta === undefined) return namedClusterStep(ctx, proxy, name, share);
  const refs: ConfigRef[] = [];
  const services = Array.isArray(meta?.services) ? meta.services : [];
  for (const s of services) {
    if (
      s !== null &&
      typeof s === "object" &&
      !Array.isArray(s) &&
      typeof s.host === "string" &&
      typeof s.namespace === "string"
    ) {
      const svc = ctx.push.servicesByNamespace(s.host).get(s.namespace);
      if (svc !== undefined) refs.push(...serviceRef(ctx, svc));
    }
  }
  const dr = configRefOf(ctx, meta?.config);
  refs.push(...dr);
  const subset = typeof meta?.subset === "string" ? `, subset ${meta.subset}` : "";
  const policy = dr.length > 0 ? `; traffic policy of ${fmtKey(dr[0] as ConfigRef)}` : "";
  return { step: "cluster", name, detail: `${name}${share}${subset}${policy}`, config: refs };
}

/**
 * A cluster without Istio's metadata (proxyless clusters carry none, as Istio's grpcgen sends
 * none): the service, subset and DestinationRule read from its name `outbound|<port>|<subset>|<fqdn>`.
 */
function namedClusterStep(ctx: Ctx, proxy: Proxy, name: string, share: string): ExplainStep {
  const key = parseSubsetKey(name);
  const svc = key === undefined ? undefined : ctx.push.serviceForHostname(proxy, key.hostname);
  if (key === undefined || svc === undefined)
    return { step: "cluster", name, detail: `${name}${share}`, config: [] };
  const rule = ctx.push.destinationRule(proxy, svc);
  const dr = (rule?.from ?? []).slice(0, 1).flatMap((k) => refOf(ctx, k));
  const subset = key.subset !== "" ? `, subset ${key.subset}` : "";
  const policy = dr.length > 0 ? `; traffic policy of ${fmtKey(dr[0] as ConfigRef)}` : "";
  return {
    step: "cluster",
    name,
    detail: `${name}${share}${subset}${policy}`,
    config: [...serviceRef(ctx, svc), ...dr],
  };
}

function endpointsStep(
  ctx: Ctx,
  cluster: string,
  type: string,
  eps: readonly UpstreamEndpoint[],
): ExplainStep {
  if (eps.length === 0)
    return {
      step: "endpoints",
      name: cluster,
      detail: `${type}: no endpoints (503 no healthy upstream)`,
      config: [],
    };
  const refs: ConfigRef[] = [];
  const lines = eps.map((e) => {
    const pod = isIP(e.address) !== 0 ? podByIp(ctx.snapshot, e.address) : undefined;
    if (pod !== undefined)
      refs.push(...refOf(ctx, { kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name }));
    const tls =
      e.tls === undefined
        ? "plaintext"
        : e.tls.certificate === "default"
          ? `Istio mTLS${e.tls.sni !== "" ? `, SNI ${e.tls.sni}` : ""}`
          : `TLS${e.tls.sni !== "" ? `, SNI ${e.tls.sni}` : ""}`;
    return `${e.address}:${e.port} ${e.health}${pod !== undefined ? ` (${pod.metadata.namespace}/${pod.metadata.name})` : ""}, ${tls}`;
  });
  return { step: "endpoints", name: cluster, detail: `${type}: ${lines.join("; ")}`, config: refs };
}

// ----- proxyless gRPC ------------------------------------------------------------------------

/** What a proxyless proxy's client accepts: its own when connected, else a gRPC client that enforces RBAC. */
function proxylessCaps(ctx: Ctx, proxy: Proxy): ProxyCapabilities {
  return ctx.connected?.(proxy.id)?.capabilities ?? proxylessCapabilities("grpc-unknown", { rbac: true });
}

/**
 * The source hop of a proxyless client: the application dials `xds:///<host>:<port>`, the gRPC
 * library subscribes to that listener name, and the walk follows what the proxyless generator
 * sends for it (gRFC A27).
 */
function proxylessClientHop(ctx: Ctx, proxy: Proxy, req: ExplainRequest): HopWithResources {
  if (req.direction === "inbound")
    throw new ExplainError(
      "bad-request",
      `${proxy.id} is proxyless gRPC: explain an RPC it makes (outbound), or one made to it from a client proxy`,
    );
  const target = req.to.replace(/^xds:\/\/[^/]*\//, "");
  const { host, port } = parseTo(target);
  if (host === "") throw new ExplainError("bad-request", `--to ${JSON.stringify(req.to)} names no host`);
  const resources = generateProxyless(proxy, ctx.push, {
    listenerNames: [target],
    capabilities: proxylessCaps(ctx, proxy),
  });
  const path = req.path ?? "/";
  const result = walkProxylessClient(resources, target, {
    path,
    ...(req.headers !== undefined ? { headers: req.headers } : {}),
  });
  const call: Call = {
    port,
    path,
    method: "POST",
    protocol: "http2",
    tls: "plaintext",
    hostHeader: target,
    ...(req.headers !== undefined ? { headers: req.headers } : {}),
    callMode: "outbound",
  };
  const svc = lookupService(ctx, proxy, host);
  const steps: ExplainStep[] = [
    {
      step: "destination",
      detail: `the application dials xds:///${target}; gRPC asks for listener ${target}${svc !== undefined ? ` (${svc.hostname})` : ""}`,
      config: svc === undefined ? [] : serviceRef(ctx, svc),
    },
  ];
  if (result.listenerMatched !== undefined) {
    steps.push({
      step: "listener",
      name: result.listenerMatched,
      detail: `client listener ${result.listenerMatched} (proxyless: no sidecar, the gRPC library routes)`,
      config: [],
    });
    steps.push(...routingSteps(ctx, proxy, resources, call, result));
  }
  return {
    proxy: proxy.id,
    kind: proxy.kind,
    mode: "outbound",
    call,
    result,
    steps,
    warnings: resources.warnings.map(toHopWarning),
    resources,
  };
}

/**
 * The destination hop at a proxyless gRPC server: its server listener
 * `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (gRFC A36), the filter chain and its TLS, the RBAC
 * filters with the identity the client presented.
 */
function proxylessServerHop(
  ctx: Ctx,
  source: Proxy,
  dest: Proxy,
  to: { readonly address: string; readonly port: number; readonly tls: CallTls },
  first: Call,
  pod: Resource,
): HopWithResources {
  const name = `${PROXYLESS_SERVER_LISTENER_PREFIX}${to.address.includes(":") ? `[${to.address}]` : to.address}:${to.port}`;
  const resources = generateProxyless(dest, ctx.push, {
    listenerNames: [name],
    capabilities: proxylessCaps(ctx, dest),
  });
  const principal = to.tls === "mtls" ? source.identity : undefined;
  const path = first.path ?? "/";
  const result = walkProxylessServer(resources, name, {
    path,
    ...(first.headers !== undefined ? { headers: first.headers } : {}),
    tls: to.tls,
    ...(principal !== undefined ? { sourcePrincipal: principal } : {}),
    ...(source.ipAddresses[0] !== undefined ? { sourceAddress: source.ipAddresses[0] } : {}),
    address: to.address,
    port: to.port,
  });
  const call: Call = {
    address: to.address,
    port: to.port,
    path,
    method: "POST",
    protocol: "http2",
    tls: to.tls,
    ...(first.hostHeader !== undefined ? { hostHeader: first.hostHeader } : {}),
    ...(first.headers !== undefined ? { headers: first.headers } : {}),
    callMode: "inbound",
    ...(principal !== undefined ? { sourcePrincipal: principal } : {}),
    ...(source.ipAddresses[0] !== undefined ? { sourceAddress: source.ipAddresses[0] } : {}),
  };
  const how =
    to.tls === "mtls"
      ? `Istio mTLS as ${source.identity ?? "(no identity)"}`
      : to.tls === "tls"
        ? "TLS"
        : "plaintext";
  const steps: ExplainStep[] = [
    {
      step: "destination",
      detail: `endpoint ${to.address}:${to.port} is ${dest.workloadId}, a proxyless gRPC server, reached over ${how}`,
      config: refOf(ctx, { kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name }),
    },
  ];
  if (result.listenerMatched !== undefined) {
    steps.push({
      step: "listener",
      name: result.listenerMatched,
      detail: `server listener ${result.listenerMatched} (the gRPC server's own, no sidecar)`,
      config: [],
    });
    if (result.filterChainMatched !== undefined) {
      steps.push(filterChainStep(ctx, dest, call, result, "inbound"));
      if (result.httpFilters !== undefined)
        steps.push({ step: "http-filters", detail: result.httpFilters.join(" → "), config: [] });
      steps.push(...rbacSteps(ctx, result));
    }
  }
  return {
    proxy: dest.id,
    kind: dest.kind,
    mode: "inbound",
    call,
    result,
    steps,
    warnings: resources.warnings.map(toHopWarning),
    resources,
  };
}

function toHopWarning(w: { code: string; message: string; config?: ResourceKey }): EnvoyGeneratorWarning {
  return { code: w.code, message: w.message, ...(w.config !== undefined ? { source: w.config } : {}) };
}

/** How a proxyless hop ends, in gRPC's terms; undefined when the RPC goes on. */
function proxylessOutcome(h: ExplainHop): ExplainOutcome | undefined {
  const r = h.result;
  const at = `at ${h.proxy}`;
  const unavailable = (why: string): ExplainOutcome => ({
    kind: "refused",
    grpcStatus: "UNAVAILABLE",
    summary: `UNAVAILABLE ${at}: ${why}`,
  });
  if (h.mode === "outbound") {
    switch (r.error) {
      case undefined:
        break;
      case "no listener matched":
        return unavailable(
          `no listener ${h.call.hostHeader ?? ""} is served (gRFC A27: the resource does not exist, the channel fails)`,
        );
      case "route configuration not found":
        return unavailable(`route configuration ${r.routeConfigMatched} is not served`);
      case "cluster not found":
        return unavailable("the route's cluster is not served");
      default:
        return unavailable(r.error);
    }
    if (r.fault?.abortGrpcStatus !== undefined && r.fault.percent === 100)
      return {
        kind: "answered",
        grpcStatus: String(r.fault.abortGrpcStatus),
        summary: `gRPC status ${r.fault.abortGrpcStatus} injected by fault injection ${at}`,
      };
    if (r.fault?.abortHttpStatus !== undefined && r.fault.percent === 100)
      return {
        kind: "answered",
        status: r.fault.abortHttpStatus,
        summary: `HTTP ${r.fault.abortHttpStatus} injected by fault injection ${at} (gRPC maps it to a status, gRFC A33)`,
      };
    const empty = h.steps.find((s) => s.step === "endpoints" && s.detail.includes("no endpoints"));
    if (empty !== undefined && r.weightedClusters === undefined)
      return unavailable(`${r.clusterMatched} has no endpoints`);
    return undefined;
  }
  switch (r.error) {
    case undefined:
      return undefined;
    case "no listener matched":
      return unavailable(
        `the server has no listener ${h.call.address}:${h.call.port} and does not serve (gRFC A36)`,
      );
    case "invalid TLS":
    case "invalid mTLS":
      return unavailable(
        `the TLS handshake fails: the server ${r.downstreamTls !== undefined ? `requires ${r.downstreamTls.requireClientCertificate ? "mTLS" : "TLS"}` : "speaks plaintext"}, the client sends ${h.call.tls ?? "plaintext"}`,
      );
    case "rbac denied": {
      const d = r.rbac?.find((x) => !x.allowed);
      const why =
        d?.matchedPolicy !== undefined
          ? `${d.action} policy ${d.matchedPolicy}`
          : `no ALLOW policy matched (${(d?.policies ?? []).join(", ")})`;
      return {
        kind: "refused",
        grpcStatus: "PERMISSION_DENIED",
        summary: `PERMISSION_DENIED ${at}: ${why}`,
      };
    }
    default:
      return unavailable(r.error);
  }
}

// ----- outcome -------------------------------------------------------------------------------

function outcomeOf(hops: readonly ExplainHop[]): ExplainOutcome {
  for (const h of hops) {
    if (h.kind === "proxyless") {
      const o = proxylessOutcome(h);
      if (o !== undefined) return o;
      continue;
    }
    const r = h.result;
    const at = `at ${h.proxy}`;
    const http = h.call.protocol !== "tcp";
    switch (r.error) {
      case undefined:
        break;
      case "no listener matched":
        return { kind: "refused", summary: `connection refused ${at}: no listener on port ${h.call.port}` };
      case "no filter chains matched":
        return {
          kind: "refused",
          summary: `connection closed ${at}: no filter chain accepts this connection (${h.call.tls ?? "plaintext"})`,
        };
      case "invalid TLS":
      case "invalid mTLS":
        return {
          kind: "refused",
          summary: `TLS handshake fails ${at}: the chain expects ${r.downstreamTls?.requireClientCertificate ? "a client certificate" : "TLS"}, the caller sends ${h.call.tls ?? "plaintext"}`,
        };
      case "protocol error":
        return {
          kind: "refused",
          summary: `protocol error ${at}: the chain speaks HTTP, the connection does not`,
        };
      case "route configuration not found":
        return {
          kind: "refused",
          status: 404,
          summary: `404 ${at}: route configuration ${r.routeConfigMatched} not served`,
        };
      case "no virtual host matched":
      case "no route matched":
        return { kind: "refused", status: 404, summary: `404 ${at}: ${r.error}` };
      case "tls required, sending 301":
        return { kind: "answered", status: 301, summary: `301 ${at}: the gateway redirects to HTTPS` };
      case "cluster not found":
        return { kind: "refused", status: 503, summary: `503 ${at}: cluster not found` };
      case "rbac denied":
        return http
          ? { kind: "refused", status: 403, summary: `403 RBAC: access denied ${at}` }
          : { kind: "refused", summary: `connection closed ${at}: RBAC denied` };
      case "multiple filter chains matched":
        return {
          kind: "refused",
          summary: `Envoy would reject this listener ${at}: more than one filter chain matches`,
        };
    }
    if (r.directResponse !== undefined)
      return {
        kind: r.directResponse.status >= 400 ? "refused" : "answered",
        status: r.directResponse.status,
        summary: `${r.directResponse.status} from ${h.proxy}`,
      };
    if (r.redirect !== undefined)
      return { kind: "answered", status: 301, summary: `redirect to ${r.redirect} from ${h.proxy}` };
    if (r.fault?.abortHttpStatus !== undefined) {
      const always = r.fault.percent === 100;
      if (always)
        return {
          kind: "answered",
          status: r.fault.abortHttpStatus,
          summary: `${r.fault.abortHttpStatus} injected by fault injection at ${h.proxy}`,
        };
    }
    if (r.clusterMatched === "BlackHoleCluster")
      return { kind: "refused", summary: `dropped at ${h.proxy} (BlackHoleCluster)` };
  }
  const last = hops[hops.length - 1] as ExplainHop;
  const r = last.result;
  const cluster = r.clusterMatched ?? r.weightedClusters?.map((w) => `${w.cluster} ${w.weight}`).join(", ");
  const empty = last.steps.find((s) => s.step === "endpoints" && s.detail.includes("no endpoints"));
  if (empty !== undefined && r.weightedClusters === undefined)
    return {
      kind: "refused",
      status: 503,
      summary: `503 no healthy upstream at ${last.proxy}: ${cluster} has no endpoints`,
    };
  if (last.kind === "proxyless" && last.mode === "inbound")
    return {
      kind: "forwarded",
      summary: `served by ${last.proxy}: the gRPC server's application handles the RPC`,
    };
  const fault = hops.find((h) => h.result.fault !== undefined)?.result.fault;
  const note =
    fault !== undefined
      ? ` (fault injection: ${fault.abortHttpStatus !== undefined ? `abort ${fault.abortHttpStatus}` : `delay ${fault.delay}`} for ${fault.percent}%)`
      : "";
  return { kind: "forwarded", summary: `forwarded by ${last.proxy} to ${cluster}${note}` };
}

// ----- text ----------------------------------------------------------------------------------

function fmtRef(ref: ConfigRef): string {
  const where = ref.file !== undefined ? ` (${ref.file}${ref.line !== undefined ? `:${ref.line}` : ""})` : "";
  return `${fmtKey(ref)}${where}`;
}

/** The explanation as text lines, one step a line, with the deciding config objects indented. */
export function formatExplanation(e: Explanation): string[] {
  const out: string[] = [];
  const req = e.request;
  out.push(`${e.hops[0]?.call.method ?? req.method ?? "GET"} ${req.to}${req.path ?? "/"} from ${req.proxy}`);
  for (const h of e.hops) {
    out.push("");
    out.push(`${h.mode} at ${h.proxy}:`);
    for (const s of h.steps) {
      out.push(`  ${s.step.padEnd(13)} ${s.detail}`);
      for (const c of s.config) out.push(`  ${"".padEnd(13)}   ← ${fmtRef(c)}`);
    }
    if (h.result.error !== undefined) out.push(`  ${"stop".padEnd(13)} ${h.result.error}`);
    for (const w of h.warnings) out.push(`  ${"warning".padEnd(13)} ${w.code}: ${w.message}`);
  }
  out.push("");
  out.push(`=> ${e.outcome.summary}`);
  return out;
}

/** The explanation as JSON-ready data (`meshlet explain -o json`): the steps, the walk results, the outcome. */
export function explanationJson(e: Explanation): JsonValue {
  return JSON.parse(
    JSON.stringify({
      request: e.request,
      hops: e.hops.map((h) => ({
        proxy: h.proxy,
        mode: h.mode,
        call: h.call,
        result: h.result,
        steps: h.steps,
        warnings: h.warnings,
      })),
      outcome: e.outcome,
    }),
  ) as JsonValue;
}
