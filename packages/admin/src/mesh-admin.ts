import { hostname } from "node:os";
import { create, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { ClientStatusRequest, ClientStatusResponse } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { ClientStatusRequestSchema } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import {
  type Event as AdminEvent,
  ConfigType,
  type Diagnostic,
  type ExplainRequest,
  type ExplainResponse,
  ExplainResponseSchema,
  type GetConfigStatusResponse,
  GetConfigStatusResponseSchema,
  type GetMeshGraphResponse,
  GetMeshGraphResponseSchema,
  type GetProxyConfigRequest,
  type GetProxyConfigResponse,
  GetProxyConfigResponseSchema,
  type ListProxiesRequest,
  type ListProxiesResponse,
  ListProxiesResponseSchema,
  type MeshAdmin,
  type WatchEventsRequest,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";
import type { Diagnostic as ConfigDiagnostic, ConfigStatus, Resource } from "@meshlet/config";
import { formatDiagnostic } from "@meshlet/config";
import {
  type CallProtocol,
  type CallTls,
  type ConnectedProxy,
  type EnvoyGeneratorOptions,
  ExplainError,
  envoyRegistry,
  explain,
  explanationJson,
  formatExplanation,
  type MeshConfig,
  type ExplainRequest as MeshExplainRequest,
  type PushEvent as MeshPushEvent,
  type MeshStatus,
  type PushContext,
} from "@meshlet/mesh";
import type { XdsEvent } from "@meshlet/xds";
import type { Observable, Subscription } from "rxjs";
import { AdminError } from "./admin-error.js";
import { buildConfigDump, type ConfigDumpSelection, configDumpJson } from "./config-dump.js";
import { EventFeed, type EventFeedOptions, type SubscriberStats } from "./event-feed.js";
import { MeshGraph, type MetricsSource } from "./metrics/mesh-graph.js";
import { proxyKindOf, proxyMessage } from "./proxies.js";
import { SyncTracker } from "./sync-tracker.js";

/** The xDS server parts the admin API reads (an `XdsServer` of @meshlet/xds fits). */
export interface AdminXdsSource {
  readonly events$: Observable<XdsEvent>;
  clientStatus(request?: ClientStatusRequest): ClientStatusResponse;
}

/** The controller parts the admin API reads (a `MeshController` of @meshlet/mesh fits). */
export interface AdminControllerSource {
  readonly status$: Observable<MeshStatus>;
  readonly pushes$: Observable<MeshPushEvent>;
  readonly pushContext: PushContext | undefined;
  /** A connected proxy by node id (MeshController's): Explain walks it as its node says, proxyless or Envoy. */
  readonly connectedProxy?: (nodeId: string) => ConnectedProxy | undefined;
}

/** A certificate the CA issued or refused (an `IstioCertificateService`'s `events$` fits). */
export type CertificateServiceEventLike =
  | {
      readonly type: "issued";
      readonly spiffeId: string;
      readonly authenticator?: string;
      readonly peer?: string;
    }
  | { readonly type: "refused"; readonly code: string; readonly reason: string; readonly peer?: string };

/** A certificate notice from elsewhere (workload certificates renewed or about to expire). */
export interface CertificateNotice {
  readonly kind: "issued" | "refused" | "renewed" | "expiring";
  readonly identity?: string;
  readonly detail?: string;
  /** ms since the epoch. */
  readonly notAfter?: number;
}

/** An authorization decision (a `PolicyEngine`'s `decisions$` fits); only denials are reported. */
export interface DecisionLike {
  readonly allowed: boolean;
  readonly reason: string;
  readonly status: number;
  readonly matched?: { readonly policy: string; readonly action: string; readonly rule: number };
  readonly attributes: {
    readonly source?: { readonly principal?: string };
    readonly destination?: { readonly namespace?: string };
    readonly request?: { readonly method?: string; readonly host?: string; readonly path?: string };
  };
}

/** Options of {@link createMeshAdmin}. */
export interface MeshAdminOptions {
  /** The xDS server the proxies are connected to: their streams, ACKs and NACKs, CSDS. */
  readonly xds: AdminXdsSource;
  /** The controller: proxies' config versions and warnings, pushes, findings, the config served. */
  readonly controller: AdminControllerSource;
  /** The config store (its `status$`): sources, validation errors and warnings. */
  readonly config?: { readonly status$: Observable<ConfigStatus> };
  /** The CA's certificate service (its `events$`): certificates issued and refused. */
  readonly ca?: { readonly events$: Observable<CertificateServiceEventLike> };
  /** Other certificate notices (renewals, expiry warnings). */
  readonly certificates$?: Observable<CertificateNotice>;
  /** The policy engine (its `decisions$`): denials go to the feed. */
  readonly policy?: { readonly decisions$: Observable<DecisionLike> };
  /** Where the mesh graph's `istio_requests_total` comes from (see `scrapeMetrics`, `registryMetrics`). */
  readonly metrics?: MetricsSource;
  /** Trust domain of the identities proxies claim (default `cluster.local`). */
  readonly trustDomain?: string;
  /** Names this control plane in ListProxies (istioctl's ISTIOD column; default the host name). */
  readonly controlPlaneId?: string;
  /** Mesh settings and generator options Explain generates config with (those the controller uses). */
  readonly explain?: { readonly mesh?: Partial<MeshConfig>; readonly options?: EnvoyGeneratorOptions };
  /** How a config file path is shown (e.g. relative to the working directory); default as is. */
  readonly displayPath?: (file: string) => string;
  /** Descriptors for the `Any`s of config dumps (default: every @meshlet/api type plus Istio's extensions). */
  readonly registry?: Registry;
  /** The event feed's replay and per-subscriber buffer sizes. */
  readonly feed?: EventFeedOptions;
  /** Clock (ms since the epoch). */
  readonly now?: () => number;
}

/**
 * The `MeshAdmin` Connect service implementation, plus what its owner needs: `close()` (stops
 * following the sources and ends WatchEvents streams), the event feed, and its subscribers' queue
 * sizes (to watch slow consumers).
 */
export interface MeshAdminService extends ServiceImpl<typeof MeshAdmin> {
  /** The feed WatchEvents serves; publish your own events with `feed.publish`. */
  readonly feed: EventFeed;
  /** Queue sizes and drop counts of the WatchEvents streams open now. */
  subscribers(): SubscriberStats[];
  close(): void;
}

const ALL_TYPES = [
  ConfigType.LISTENERS,
  ConfigType.ROUTES,
  ConfigType.CLUSTERS,
  ConfigType.ENDPOINTS,
  ConfigType.SECRETS,
] as const;

/**
 * Creates the `MeshAdmin` service over a running control plane: mount it with `mountAdmin` or
 * `listenAdmin` (or `router.service(MeshAdmin, admin)` on your own Connect router). It starts
 * following the sources at once: create it before the xDS server accepts streams, so that every
 * proxy's "connected since" and sync state are known (streams opened before are listed from
 * what the controller knows, without per-type state).
 */
export function createMeshAdmin(options: MeshAdminOptions): MeshAdminService {
  if (options?.xds === undefined || options.controller === undefined) {
    throw new TypeError("createMeshAdmin needs { xds, controller }");
  }
  const now = options.now ?? Date.now;
  const trustDomain = options.trustDomain ?? "cluster.local";
  const controlPlane = options.controlPlaneId ?? hostname();
  const registry = options.registry ?? envoyRegistry;
  const shown = options.displayPath ?? ((f: string) => f);
  const tracker = new SyncTracker(now);
  const feed = new EventFeed({ now, ...options.feed });
  const graph = options.metrics !== undefined ? new MeshGraph({ source: options.metrics, now }) : undefined;
  const tasks: Subscription[] = [];
  let status: MeshStatus | undefined;
  let configStatus: ConfigStatus | undefined;

  const diagnostic = (d: ConfigDiagnostic): Diagnostic => ({
    $typeName: "meshlet.admin.v1.Diagnostic",
    severity: d.severity,
    code: d.code,
    message: d.message,
    source: d.source,
    file: d.file !== undefined ? shown(d.file) : "",
    line: d.line ?? 0,
    column: d.column ?? 0,
    resource: d.resource ?? "",
    path: d.path ?? "",
  });
  const diagnosticKey = (d: ConfigDiagnostic) => formatDiagnostic(d);

  // ---- sources → feed ------------------------------------------------------------------------
  tasks.push(
    options.xds.events$.subscribe((e) => {
      tracker.record(e);
      if (e.type === "nack") {
        feed.publish({
          case: "nack",
          value: {
            proxy: e.node?.id ?? "",
            typeUrl: e.typeUrl,
            rejectedVersion: e.rejectedVersion ?? "",
            version: e.version,
            error: e.errorDetail.message,
            code: e.errorDetail.code,
          },
        });
      }
    }),
  );
  tasks.push(
    options.controller.pushes$.subscribe((p) => {
      feed.publish({
        case: "push",
        value: {
          cause: p.cause,
          configVersion: p.version,
          configs: [...p.configs],
          proxies: [...p.proxies],
          resourcesChanged: p.resourcesChanged,
          durationMs: p.durationMs,
        },
      });
    }),
  );
  let findings = new Map<string, ConfigDiagnostic>();
  tasks.push(
    options.controller.status$.subscribe((s) => {
      const before = status;
      status = s;
      // Proxies that came and went.
      const was = new Map((before?.proxies ?? []).map((p) => [p.id, p]));
      const ids = new Set(s.proxies.map((p) => p.id));
      for (const p of s.proxies)
        if (!was.has(p.id))
          feed.publish({ case: "proxy", value: { proxy: p.id, connected: true, kind: proxyKindOf(p.kind) } });
      for (const [id, p] of was)
        if (!ids.has(id))
          feed.publish({ case: "proxy", value: { proxy: id, connected: false, kind: proxyKindOf(p.kind) } });
      const lastRefused = before?.refused.at(-1);
      const fresh =
        lastRefused === undefined ? s.refused : s.refused.slice(s.refused.indexOf(lastRefused) + 1);
      if (lastRefused !== s.refused.at(-1))
        for (const r of fresh)
          feed.publish({ case: "proxy", value: { proxy: r.nodeId, connected: false, refused: r.reason } });
      // Analyzer findings that appeared or went away.
      const next = new Map(s.findings.map((f) => [diagnosticKey(f), f as ConfigDiagnostic]));
      publishDiff(findings, next, "analysis");
      findings = next;
    }),
  );
  let configProblems = new Map<string, ConfigDiagnostic>();
  if (options.config !== undefined) {
    tasks.push(
      options.config.status$.subscribe((s) => {
        configStatus = s;
        const next = new Map([...s.errors, ...s.warnings].map((d) => [diagnosticKey(d), d]));
        publishDiff(configProblems, next, "config");
        configProblems = next;
      }),
    );
  }
  function publishDiff(
    before: ReadonlyMap<string, ConfigDiagnostic>,
    after: ReadonlyMap<string, ConfigDiagnostic>,
    origin: string,
  ): void {
    for (const [k, d] of after)
      if (!before.has(k))
        feed.publish({ case: "diagnostic", value: { diagnostic: diagnostic(d), origin, resolved: false } });
    for (const [k, d] of before)
      if (!after.has(k))
        feed.publish({ case: "diagnostic", value: { diagnostic: diagnostic(d), origin, resolved: true } });
  }
  if (options.ca !== undefined) {
    tasks.push(
      options.ca.events$.subscribe((e) => {
        feed.publish({
          case: "certificate",
          value:
            e.type === "issued"
              ? { kind: "issued", identity: e.spiffeId, detail: e.peer ? `for ${e.peer}` : "" }
              : { kind: "refused", detail: `${e.code}: ${e.reason}${e.peer ? ` (${e.peer})` : ""}` },
        });
      }),
    );
  }
  if (options.certificates$ !== undefined) {
    tasks.push(
      options.certificates$.subscribe((c) => {
        feed.publish({
          case: "certificate",
          value: {
            kind: c.kind,
            identity: c.identity ?? "",
            detail: c.detail ?? "",
            ...(c.notAfter !== undefined
              ? { notAfter: { seconds: BigInt(Math.floor(c.notAfter / 1000)), nanos: 0 } }
              : {}),
          },
        });
      }),
    );
  }
  if (options.policy !== undefined) {
    tasks.push(
      options.policy.decisions$.subscribe((d) => {
        if (d.allowed) return;
        const a = d.attributes;
        feed.publish({
          case: "policyDenial",
          value: {
            reason: d.reason,
            policy: d.matched?.policy ?? "",
            action: d.matched?.action ?? "",
            rule: d.matched?.rule ?? 0,
            status: d.status,
            sourcePrincipal: a.source?.principal ?? "",
            destinationNamespace: a.destination?.namespace ?? "",
            method: a.request?.method ?? "",
            host: a.request?.host ?? "",
            path: a.request?.path ?? "",
          },
        });
      }),
    );
  }

  // ---- the calls -----------------------------------------------------------------------------
  const proxyIds = (): string[] => {
    const ids = new Set<string>(tracker.nodes().keys());
    for (const p of status?.proxies ?? []) ids.add(p.id);
    return [...ids].sort();
  };

  /** A node id, or `<pod>.<namespace>` matched against the connected proxies' node ids. */
  const resolveProxy = (ref: string): string => {
    if (ref === "")
      throw new ConnectError("name the proxy: a node id or <pod>.<namespace>", Code.InvalidArgument);
    const ids = proxyIds();
    if (ids.includes(ref)) return ref;
    const matches = ids.filter((id) => id.split("~")[2] === ref);
    if (matches.length === 1) return matches[0] as string;
    if (matches.length > 1)
      throw new ConnectError(
        `${ref} names ${matches.length} proxies: ${matches.join(", ")}`,
        Code.InvalidArgument,
      );
    const known = ids.slice(0, 10).join(", ");
    throw new ConnectError(
      `no connected proxy ${JSON.stringify(ref)}; connected: ${known === "" ? "none" : known}${ids.length > 10 ? ", …" : ""}`,
      Code.NotFound,
    );
  };

  const listProxies = (req: ListProxiesRequest): ListProxiesResponse => {
    const tracked = tracker.nodes();
    const byId = new Map((status?.proxies ?? []).map((p) => [p.id, p]));
    const proxies = proxyIds()
      .map((id) => proxyMessage(tracked.get(id), byId.get(id), trustDomain))
      .filter((p) => req.namespace === "" || p.namespace === req.namespace);
    return create(ListProxiesResponseSchema, {
      proxies,
      controlPlane,
      configVersion: status?.version ?? "",
    });
  };

  const getProxyConfig = (req: GetProxyConfigRequest): GetProxyConfigResponse => {
    const id = resolveProxy(req.proxy);
    const csds = options.xds.clientStatus(
      create(ClientStatusRequestSchema, {
        nodeMatchers: [{ nodeId: { matchPattern: { case: "exact", value: id } } }],
      }),
    );
    const types = req.types.filter((t) => t !== ConfigType.UNSPECIFIED);
    const names: Record<number, readonly string[]> = {
      [ConfigType.LISTENERS]: req.listenerNames,
      [ConfigType.ROUTES]: req.routeNames,
      [ConfigType.CLUSTERS]: req.clusterNames,
      [ConfigType.ENDPOINTS]: req.endpointNames,
      [ConfigType.SECRETS]: req.secretNames,
    };
    const selection: ConfigDumpSelection = new Map(
      (types.length > 0 ? types : ALL_TYPES).map((t) => [t, new Set(names[t] ?? [])]),
    );
    const configs = csds.config.flatMap((c) => c.genericXdsConfigs);
    const dump = buildConfigDump(configs, selection, registry);
    return create(GetProxyConfigResponseSchema, { proxyId: id, configDump: configDumpJson(dump, registry) });
  };

  const explainCall = (req: ExplainRequest): ExplainResponse => {
    const push = options.controller.pushContext;
    if (push === undefined) throw new ConnectError("no config is served yet", Code.Unavailable);
    const request = toMeshExplainRequest(req);
    let explanation: ReturnType<typeof explain>;
    try {
      explanation = explain(request, {
        snapshot: push.snapshot,
        push,
        // A connected proxy is explained as its node says (proxyless when GENERATOR is grpc).
        ...(options.controller.connectedProxy !== undefined
          ? { connected: options.controller.connectedProxy.bind(options.controller) }
          : {}),
        ...(options.explain?.mesh !== undefined ? { mesh: options.explain.mesh } : {}),
        ...(options.explain?.options !== undefined ? { options: options.explain.options } : {}),
      });
    } catch (error) {
      if (error instanceof ExplainError)
        throw new ConnectError(
          error.message,
          error.code === "bad-request" ? Code.InvalidArgument : Code.NotFound,
        );
      throw error;
    }
    const withPaths = {
      ...explanation,
      hops: explanation.hops.map((h) => ({
        ...h,
        steps: h.steps.map((s) => ({
          ...s,
          config: s.config.map((c) => (c.file !== undefined ? { ...c, file: shown(c.file) } : c)),
        })),
      })),
    };
    return create(ExplainResponseSchema, {
      configVersion: push.version,
      outcome: withPaths.outcome.kind,
      status: withPaths.outcome.status ?? 0,
      summary: withPaths.outcome.summary,
      hops: withPaths.hops.map((h) => ({
        proxy: h.proxy,
        mode: h.mode,
        error: h.result.error ?? "",
        warnings: h.warnings.map((w) => `${w.code}: ${w.message}`),
        steps: h.steps.map((s) => ({
          step: s.step,
          name: s.name ?? "",
          detail: s.detail,
          config: s.config.map((c) => ({
            kind: c.kind,
            namespace: c.namespace,
            name: c.name,
            file: c.file ?? "",
            line: c.line ?? 0,
          })),
        })),
      })),
      text: formatExplanation(withPaths),
      explanation: explanationJson(withPaths) as JsonObject,
    });
  };

  const getConfigStatus = (): GetConfigStatusResponse => {
    const snapshot = options.controller.pushContext?.snapshot;
    const objects = [];
    if (snapshot !== undefined) {
      for (const r of snapshot.resources() as Iterable<Resource>) {
        const origin = snapshot.originOf(r);
        objects.push({
          kind: r.kind,
          namespace: r.metadata.namespace,
          name: r.metadata.name,
          source: origin?.source ?? "",
          file: origin?.file !== undefined ? shown(origin.file) : "",
          line: origin?.position?.line ?? 0,
          location: origin?.location ?? "",
        });
      }
    }
    return create(GetConfigStatusResponseSchema, {
      version: status?.version ?? snapshot?.version ?? "",
      objects,
      diagnostics: [
        ...(configStatus?.errors ?? snapshot?.diagnostics ?? []),
        ...(configStatus?.warnings ?? []),
      ]
        .filter((d, i, all) => all.findIndex((x) => diagnosticKey(x) === diagnosticKey(d)) === i)
        .map(diagnostic),
      findings: (status?.findings ?? []).map(diagnostic),
      sources: (configStatus?.sources ?? []).map((s) => ({
        name: s.name,
        synced: s.synced,
        connected: s.connected,
        resources: s.resources,
        errors: s.errors,
        lastError: s.lastError ?? "",
      })),
    });
  };

  const getMeshGraph = async (): Promise<GetMeshGraphResponse> => {
    if (graph === undefined)
      return create(GetMeshGraphResponseSchema, {
        note: "no metrics source is configured (createMeshAdmin({ metrics }), meshlet serve --graph-metrics <url>)",
      });
    return graph.read();
  };

  async function* watchEvents(req: WatchEventsRequest, ctx: HandlerContext): AsyncGenerator<AdminEvent> {
    try {
      yield* feed.subscribe({ kinds: req.kinds, replay: req.replay, signal: ctx.signal });
    } catch (error) {
      if (error instanceof AdminError && error.code === "feed-full")
        throw new ConnectError(error.message, Code.ResourceExhausted);
      throw error;
    }
  }

  return {
    listProxies,
    getProxyConfig,
    explain: explainCall,
    watchEvents,
    getConfigStatus,
    getMeshGraph,
    feed,
    subscribers: () => feed.subscribers(),
    close() {
      for (const t of tasks.splice(0)) t.unsubscribe();
      feed.close();
    },
  };
}

const PROTOCOLS = new Set(["http", "http2", "tcp"]);
const TLS_MODES = new Set(["plaintext", "tls", "mtls"]);

/** The admin API's ExplainRequest as @meshlet/mesh's, refusing values explain() does not know. */
function toMeshExplainRequest(req: ExplainRequest): MeshExplainRequest {
  const bad = (m: string) => new ConnectError(m, Code.InvalidArgument);
  if (req.proxy === "") throw bad("proxy is required: a node id or <pod>.<namespace>");
  if (req.to === "") throw bad("to is required: host:port as the application dials it");
  if (req.direction !== "" && req.direction !== "outbound" && req.direction !== "inbound")
    throw bad(`direction must be outbound or inbound, got ${JSON.stringify(req.direction)}`);
  if (req.protocol !== "" && !PROTOCOLS.has(req.protocol))
    throw bad(`protocol must be http, http2 or tcp, got ${JSON.stringify(req.protocol)}`);
  if (req.tls !== "" && !TLS_MODES.has(req.tls))
    throw bad(`tls must be plaintext, tls or mtls, got ${JSON.stringify(req.tls)}`);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  return {
    proxy: req.proxy,
    to: req.to,
    ...(req.method !== "" ? { method: req.method.toUpperCase() } : {}),
    ...(req.path !== "" ? { path: req.path } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(req.direction !== "" ? { direction: req.direction as "outbound" | "inbound" } : {}),
    ...(req.protocol !== "" ? { protocol: req.protocol as CallProtocol } : {}),
    ...(req.tls !== "" ? { tls: req.tls as CallTls } : {}),
    ...(req.sni !== "" ? { sni: req.sni } : {}),
    ...(req.address !== "" ? { address: req.address } : {}),
    ...(req.sourcePrincipal !== "" ? { sourcePrincipal: req.sourcePrincipal } : {}),
    ...(req.jwtClaims !== undefined ? { jwtClaims: req.jwtClaims as Record<string, JsonValue> } : {}),
    ...(req.noFollow ? { follow: false } : {}),
  };
}
