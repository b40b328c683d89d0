import { mkdir, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  CertificateAuthority,
  type CertificateServiceEvent,
  createSpiffeServerCredentials,
  DirectoryRootStore,
  IstioCertificateService,
  JwtAuthenticator,
  MtlsAuthenticator,
  type RootStore,
  svidRotation$,
  type TokenVerifier,
} from "@meshlet/ca";
import {
  type ConfigSource,
  ConfigStore,
  type Diagnostic,
  FileSource,
  formatDiagnostic,
} from "@meshlet/config";
import {
  type EnvoyGeneratorOptions,
  envoyGenerators,
  type GrpcBootstrapOptions,
  MeshController,
  type ProxyGenerator,
  type ProxyGenerators,
  type PushEvent,
} from "@meshlet/mesh";
import { ExtAuthzServer, PolicyEngine, type RateLimitConfig, RateLimitServer } from "@meshlet/policy";
import { SnapshotCache, silentLogger, XdsServer } from "@meshlet/xds";
import type { Registry as MetricsRegistry } from "prom-client";
import { filter, firstValueFrom, type Observable, ReplaySubject, type Subscription } from "rxjs";
import { ControlPlaneMetrics } from "./control-plane-metrics.js";
import { type MonitoringServer, serveMonitoring } from "./monitoring-server.js";
import { authenticateNodes } from "./node-authentication.js";
import {
  loadRateLimitYaml,
  type RateLimitConfigFile,
  rateLimitConfigMapFiles,
} from "./rate-limit-configs.js";
import { type WorkloadFiles, WorkloadIdentities } from "./workload-identities.js";

export { ControlPlaneMetrics, type ControlPlaneMetricsSources } from "./control-plane-metrics.js";

// The reference control plane as one composition, what istiod is: config (files, or any
// ConfigSource) → ConfigStore → MeshController (proxyless, Envoy sidecar and gateway generators) →
// SnapshotCache → XdsServer; the CA (self-signed root kept in the state dir) with the Istio CA API;
// ext_authz and rate limiting from one PolicyEngine; all on one gRPC port as istiod serves them;
// certificates, bootstraps and SDS sockets per workload; Prometheus metrics on a monitoring port.
// `meshlet serve` is argument parsing and printing around it; the reference-mesh demo and the
// admin API build on it.

/** Where config comes from: files and directories (watched), or any config sources. */
export type ControlPlaneConfig =
  /** YAML/JSON files or directories, watched (`FileSource`). */
  | { readonly paths: readonly string[] }
  /** Config sources, highest precedence first (`FileSource`, `KubernetesSource`, `EtcdSource`, your own). */
  | { readonly sources: readonly ConfigSource[] };

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  readonly config: ControlPlaneConfig;
  /**
   * The gRPC address for xDS, the Istio CA API, ext_authz and rate limiting (default
   * `127.0.0.1:15010`; port 0 picks one, see {@link ControlPlane.addresses}).
   */
  readonly listen?: string;
  /**
   * Serve `listen` over TLS with the control plane's own SVID
   * (`spiffe://<td>/ns/istio-system/sa/istiod`), rotated; a client certificate, when presented,
   * authenticates CA requests and xDS nodes. Without it the CA API refuses every request.
   */
  readonly tls?: boolean;
  /**
   * DNS SANs of the TLS serving certificate, the names clients verify: istio-agent checks the host
   * of its discovery address and `CA_ADDR` (meshletd: `meshletd.meshlet-system.svc`, and
   * `istiod.istio-system.svc` as istiod's certificate carries it). Default none (URI SAN only).
   */
  readonly servingDnsNames?: readonly string[];
  /**
   * The SPIFFE ID of the serving certificate (default `spiffe://<td>/ns/istio-system/sa/istiod`;
   * meshletd: its own namespace and service account).
   */
  readonly identity?: string;
  /**
   * A second gRPC address, plaintext, serving xDS only (istiod's 15010 beside 15012). Streams on it
   * are authenticated as on `listen` when `tokenVerifier` is set (a bearer token; no certificate
   * can be presented without TLS). Default none.
   */
  readonly plaintextListen?: string;
  /**
   * Authenticates bearer tokens (`authorization: Bearer`): meshletd's
   * `KubernetesTokenReviewVerifier` (audience `istio-ca`). When set, the CA API accepts a token or a
   * client certificate, and every xDS stream must prove an identity (certificate or token) that
   * grants the node it claims; streams without one are refused UNAUTHENTICATED.
   */
  readonly tokenVerifier?: TokenVerifier;
  /**
   * Where the self-signed root persists (default a `DirectoryRootStore` in `<stateDir>/ca`); meshletd
   * shares one root between replicas with `KubernetesSecretRootStore` (`istio-ca-secret`).
   */
  readonly rootStore?: RootStore;
  /**
   * A CA built by the caller (e.g. `CertificateAuthority.fromSigner` over Vault's PKI engine); it
   * wins over `rootStore`. The control plane closes it on shutdown.
   */
  readonly ca?: CertificateAuthority;
  /**
   * The CA that issues the control plane's own serving certificate (15012), when it is not `ca`:
   * meshletd's Vault mode signs workloads with one Vault role and its DNS-named serving
   * certificates with another. Its roots must be in `ca`'s trust bundle (agents verify against it).
   * The control plane closes it on shutdown.
   */
  readonly servingCa?: CertificateAuthority;
  /**
   * The monitoring address (`/metrics` for Prometheus, plus the HTTP handlers of extensions), as
   * istiod's port 15014; default `127.0.0.1:15014`, `false` for none.
   */
  readonly metrics?: string | false;
  /** Where the CA root (`ca/`) and the workload files (`workloads/`) live (default `./.meshlet`). */
  readonly stateDir?: string;
  /** SPIFFE trust domain (default `cluster.local`). */
  readonly trustDomain?: string;
  /** Rate-limit service configuration (envoyproxy/ratelimit YAML). */
  readonly rateLimit?: {
    /** A file read at start. */
    readonly file?: string;
    /**
     * ConfigMaps of this name in the served config (every data key one config file), followed
     * as the config changes; default `ratelimit-config` (Istio's rate-limit sample), `false` for none.
     */
    readonly configMap?: string | false;
  };
  /** Serve an SDS socket per workload (default true). */
  readonly sds?: boolean;
  /**
   * Write certificates, bootstraps and SDS sockets for the registry's workloads (default true).
   * Off on a cluster, where each pod's own agent asks the CA API for its certificate.
   */
  readonly workloadFiles?: boolean;
  /** Settings of the gRPC bootstraps written for workloads (e.g. `rbac: true` for grpc-js run with GRPC_XDS_EXPERIMENTAL_RBAC=true). */
  readonly bootstrap?: Pick<
    GrpcBootstrapOptions,
    "rbac" | "refreshInterval" | "istioVersion" | "clusterId" | "metadata"
  >;
  /**
   * Options of the Envoy sidecar and gateway generators. `rateLimitService` defaults to the
   * `listen` address (where `RateLimitServer` is served) when it is an IP address.
   */
  readonly envoy?: EnvoyGeneratorOptions;
  /** Generators per proxy kind; default: proxyless gRPC, and the Envoy generators for sidecars and gateways. */
  readonly generators?: ProxyGenerators;
  /** Quiet time before a config change is pushed (MeshController, default 100 ms). */
  readonly debounceMs?: number;
  /** More services on the control plane's ports (an admin API…). */
  readonly extensions?: readonly ControlPlaneExtension[];
  /** Aborts the start (resolves with a control plane that is already closed). */
  readonly signal?: AbortSignal;
  /** How long the start waits for the first config push before going on without (default 30 s). */
  readonly startTimeoutMs?: number;
}

/** A service the control plane serves, and where. */
export interface ServedService {
  /** What it is: `xDS (ADS, SotW, Delta)`, `metrics (Prometheus)`, … */
  readonly name: string;
  /** `127.0.0.1:15010`, `http://127.0.0.1:15014/metrics`, a directory… */
  readonly address: string;
  /** A remark (e.g. what a service needs to work). */
  readonly note?: string;
}

/** What the control plane reports as it runs, for logs and admin APIs (see {@link ControlPlane.events$}). */
export type ControlPlaneEvent =
  /** A config error appeared (file:line, resource, field path); the resource's last good version keeps serving. */
  | { readonly type: "config-error"; readonly diagnostic: Diagnostic; readonly at: number }
  /** Every config error is gone. */
  | { readonly type: "config-valid"; readonly at: number }
  /** Proxies were pushed. */
  | { readonly type: "push"; readonly push: PushEvent; readonly at: number }
  /** A CA API request was answered. */
  | { readonly type: "certificate"; readonly event: CertificateServiceEvent; readonly at: number }
  /** A workload's certificate files were (re)written. */
  | {
      readonly type: "workload-certificate";
      readonly workload: WorkloadFiles;
      readonly notAfter: Date;
      readonly at: number;
    }
  /** The rate-limit service's configuration changed (its domains, from which files). */
  | {
      readonly type: "rate-limits";
      readonly domains: readonly string[];
      readonly sources: readonly string[];
      readonly at: number;
    }
  /** Something failed without stopping the control plane (a file not written, a bad rate-limit config…). */
  | { readonly type: "error"; readonly message: string; readonly at: number };

/** The parts of a running control plane (what extensions and admin APIs read). */
export interface ControlPlaneParts {
  readonly trustDomain: string;
  readonly stateDir: string;
  readonly tls: boolean;
  readonly store: ConfigStore;
  readonly cache: SnapshotCache;
  readonly controller: MeshController;
  readonly xds: XdsServer;
  readonly ca: CertificateAuthority;
  readonly caService: IstioCertificateService;
  readonly policy: PolicyEngine;
  readonly workloads: WorkloadIdentities;
  /** The control plane's Prometheus registry, when metrics are on. */
  readonly metricsRegistry?: MetricsRegistry;
  /** Its metrics, when on: `observeWebhooks(server.events$)` adds a composed webhook server's. */
  readonly metrics?: ControlPlaneMetrics;
  /**
   * Low-volume events (config errors, pushes, CA requests, certificates, rate-limit changes,
   * errors); replays the last 200 to a new subscriber. xDS protocol events are on `xds.events$`,
   * proxies and analyzer findings on `controller.status$`, config status on `store.status$`.
   */
  readonly events$: Observable<ControlPlaneEvent>;
}

/** A running control plane. */
export interface ControlPlane extends ControlPlaneParts {
  /** Where it listens: `grpc` (`host:port`), `metrics` (URL), `workloads` (directory). */
  readonly addresses: {
    readonly grpc: string;
    readonly metrics?: string;
    readonly workloads: string;
  };
  /** Every service served, in the order to print them (extensions' included). */
  readonly services: readonly ServedService[];
  /** Stops everything (extensions first), gracefully; idempotent. */
  close(): Promise<void>;
}

/** What an extension's {@link ControlPlaneExtension.start} returns. */
export interface ExtensionHandle {
  readonly services?: readonly ServedService[];
  close?(): Promise<void> | void;
}

/**
 * A service mounted on the control plane: gRPC services on its gRPC port, HTTP handlers on its
 * monitoring port, or anything it starts itself once the control plane runs.
 */
export interface ControlPlaneExtension {
  /** Names it in errors. */
  readonly name: string;
  /** Adds services to the gRPC server of `listen` (called before it binds). */
  registerGrpc?(server: grpc.Server, parts: ControlPlaneParts): void;
  /**
   * Handles a request on the monitoring port (`/metrics` is the control plane's); returns true
   * when it answered. Needs `metrics` on.
   */
  handleHttp?(
    request: import("node:http").IncomingMessage,
    response: import("node:http").ServerResponse,
  ): boolean;
  /** Runs once the control plane listens and has served its first config. */
  start?(plane: ControlPlane): Promise<ExtensionHandle | undefined> | ExtensionHandle | undefined;
}

/** Splits `host:port` (`[v6]:port` for IPv6); undefined when it is not one. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

const joinHostPort = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`;
const isIp = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");

/**
 * Starts the reference control plane (see the module comment) and resolves once it listens and
 * has pushed its first config (or `startTimeoutMs` passed: a config that never settles does not
 * stop it). Throws when it cannot start (address in use, unreadable state dir, bad rate-limit file),
 * after closing what it had started.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const listenAddress = options.listen ?? "127.0.0.1:15010";
  const listen = splitHostPort(listenAddress);
  if (listen === undefined) throw new Error(`listen address must be <host>:<port>, got "${listenAddress}"`);
  const metricsAddress = options.metrics === undefined ? "127.0.0.1:15014" : options.metrics;
  const metricsAt = metricsAddress === false ? undefined : splitHostPort(metricsAddress);
  if (metricsAddress !== false && metricsAt === undefined)
    throw new Error(`metrics address must be <host>:<port>, got "${metricsAddress}"`);
  const trustDomain = options.trustDomain ?? "cluster.local";
  const stateDir = resolve(options.stateDir ?? ".meshlet");
  const tls = options.tls ?? false;

  const cleanup: Array<() => Promise<void> | void> = [];
  const events = new ReplaySubject<ControlPlaneEvent>(200);
  const subscriptions: Subscription[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of subscriptions.splice(0)) s.unsubscribe();
    const errors: string[] = [];
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
    events.complete();
    if (errors.length > 0) throw new Error(`shutdown steps failed: ${errors.join("; ")}`);
  };
  const report = (message: string) => events.next({ type: "error", message, at: Date.now() });

  try {
    // The CA: the caller's, or a self-signed root kept in the root store (default <state-dir>/ca,
    // Istio's cacerts layout), so a restart keeps it.
    const plaintextAt =
      options.plaintextListen === undefined ? undefined : splitHostPort(options.plaintextListen);
    if (options.plaintextListen !== undefined && plaintextAt === undefined)
      throw new Error(`plaintext listen address must be <host>:<port>, got "${options.plaintextListen}"`);
    let ca: CertificateAuthority;
    if (options.ca !== undefined) ca = options.ca;
    else {
      let rootStore = options.rootStore;
      if (rootStore === undefined) {
        await mkdir(resolve(stateDir, "ca"), { recursive: true, mode: 0o700 });
        rootStore = new DirectoryRootStore(resolve(stateDir, "ca"));
      }
      ca = await CertificateAuthority.selfSigned({ trustDomain, store: rootStore });
    }
    cleanup.push(() => ca.close());
    if (options.servingCa !== undefined) {
      const servingCa = options.servingCa;
      cleanup.push(() => servingCa.close());
    }

    // Config: validated; the last good version of each resource keeps serving.
    const sources =
      "paths" in options.config
        ? [new FileSource({ paths: [...options.config.paths] })]
        : options.config.sources;
    const store = new ConfigStore({ sources });
    cleanup.push(() => store.close());

    const policy = new PolicyEngine({});
    const fileRateLimits =
      options.rateLimit?.file !== undefined
        ? loadRateLimitYaml(await readFile(options.rateLimit.file, "utf8"), options.rateLimit.file)
        : undefined;
    if (fileRateLimits?.error !== undefined) throw new Error(fileRateLimits.error);
    if (fileRateLimits !== undefined) policy.setRateLimits(fileRateLimits.configs ?? []);

    const cache = new SnapshotCache();
    // The Envoy generators point the ratelimit filter at this control plane's RateLimitServer, whose
    // port is known only once bound: the generator is built then (before any proxy can connect).
    // (Proxies connect only after the bind, and the generators are set in the same turn as it.)
    let envoy: ProxyGenerators | undefined;
    const envoyFor = (kind: "sidecar" | "gateway"): ProxyGenerator =>
      options.generators?.[kind] ??
      ((request) => {
        const generate = envoy?.[kind];
        if (generate === undefined) throw new Error("the Envoy generators are not ready yet");
        return generate(request);
      });
    const generators: ProxyGenerators = {
      ...options.generators,
      sidecar: envoyFor("sidecar"),
      gateway: envoyFor("gateway"),
    };
    const controller = new MeshController({
      config: store,
      cache,
      ca,
      policy,
      generators,
      ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
    });
    cleanup.push(() => controller.close());
    // With a token verifier every stream proves who it is and its node is bound to that identity;
    // without one, the controller binds nodes to verified client certificates when there are any.
    const authorize =
      options.tokenVerifier !== undefined
        ? authenticateNodes({
            tokenVerifier: options.tokenVerifier,
            trustDomain,
            authorize: controller.authorize,
          })
        : controller.authorize;
    const xds = new XdsServer({
      cache,
      logger: silentLogger,
      authorize,
      maxResourceNamesPerType: controller.maxResourceNamesPerType,
    });
    controller.attach(xds);
    cleanup.push(() => xds.close());

    // One gRPC server for xDS, the CA API, ext_authz and rate limiting, as istiod's one port.
    const server = new grpc.Server();
    xds.register(server);
    const caService = new IstioCertificateService({
      ca,
      // Istio's order: a client certificate, then a bearer token (security/pkg/server/ca).
      authenticators: [
        new MtlsAuthenticator({ trustDomains: [trustDomain] }),
        ...(options.tokenVerifier !== undefined ? [new JwtAuthenticator(options.tokenVerifier)] : []),
      ],
    });
    caService.register(server);
    new ExtAuthzServer({ engine: policy }).register(server);
    new RateLimitServer({ engine: policy }).register(server);

    const workloadsDir = resolve(stateDir, "workloads");
    let identities: WorkloadIdentities | undefined;
    const metrics =
      metricsAt !== undefined
        ? new ControlPlaneMetrics({
            xdsEvents$: xds.events$,
            pushes$: controller.pushes$,
            status$: controller.status$,
            caEvents$: caService.events$,
            trustBundle$: ca.trustBundle$,
            signingCertificate: () => ca.signingCertificate,
            issued$: events.pipe(filter((e) => e.type === "workload-certificate")),
            policyDecisions$: policy.decisions$,
            rateLimitDecisions$: policy.rateLimiter.decisions$,
          })
        : undefined;
    if (metrics !== undefined) cleanup.push(() => metrics.close());
    const parts = (): ControlPlaneParts => ({
      trustDomain,
      stateDir,
      tls,
      store,
      cache,
      controller,
      xds,
      ca,
      caService,
      policy,
      workloads: identities as WorkloadIdentities,
      ...(metrics !== undefined ? { metricsRegistry: metrics.registry, metrics } : {}),
      events$: events.asObservable(),
    });
    for (const extension of options.extensions ?? []) extension.registerGrpc?.(server, parts());

    let credentials = grpc.ServerCredentials.createInsecure();
    if (tls) {
      const own = createSpiffeServerCredentials({
        trustBundle$: ca.trustBundle$,
        svid$: svidRotation$({
          ca: options.servingCa ?? ca,
          identity: options.identity ?? `spiffe://${trustDomain}/ns/istio-system/sa/istiod`,
          ...(options.servingDnsNames !== undefined ? { dnsNames: options.servingDnsNames } : {}),
        }),
      });
      cleanup.push(() => own.close());
      credentials = own.credentials;
    }
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync(listenAddress, credentials, (error, p) => (error ? rej(error) : res(p))),
    );
    cleanup.push(() => shutdownGrpc(server));
    const grpcAddress = joinHostPort(listen.host, port);
    let plaintextAddress: string | undefined;
    if (plaintextAt !== undefined && options.plaintextListen !== undefined) {
      // xDS only, as istiod's 15010: the CA API and the policy services stay on `listen`.
      const plain = new grpc.Server();
      xds.register(plain);
      const plainPort = await new Promise<number>((res, rej) =>
        plain.bindAsync(
          options.plaintextListen as string,
          grpc.ServerCredentials.createInsecure(),
          (error, p) => (error ? rej(error) : res(p)),
        ),
      );
      cleanup.push(() => shutdownGrpc(plain));
      plaintextAddress = joinHostPort(plaintextAt.host, plainPort);
    }
    const envoyOptions: EnvoyGeneratorOptions = {
      ...(isIp(listen.host) && listen.host !== "0.0.0.0" && listen.host !== "::"
        ? { rateLimitService: { host: listen.host, port } }
        : {}),
      ...options.envoy,
    };
    envoy = envoyGenerators(envoyOptions);

    identities = new WorkloadIdentities({
      ca,
      dir: workloadsDir,
      serverUri: grpcAddress,
      sds: options.sds ?? true,
      ...(options.bootstrap !== undefined ? { bootstrap: options.bootstrap } : {}),
      onError: report,
      onIssued: (workload, notAfter) =>
        events.next({ type: "workload-certificate", workload, notAfter, at: Date.now() }),
    });
    const workloads = identities;
    const writeWorkloads = options.workloadFiles ?? true;
    cleanup.push(() => workloads.close());

    let monitoring: MonitoringServer | undefined;
    if (metricsAt !== undefined && metrics !== undefined) {
      monitoring = await serveMonitoring({
        host: metricsAt.host,
        port: metricsAt.port,
        registry: metrics.registry,
        handlers: (options.extensions ?? []).flatMap((e) =>
          e.handleHttp !== undefined ? [e.handleHttp.bind(e)] : [],
        ),
      });
      const served = monitoring;
      cleanup.push(() => served.close());
    }
    const metricsUrl =
      monitoring !== undefined
        ? `http://${joinHostPort(monitoring.host, monitoring.port)}/metrics`
        : undefined;

    // Events: config errors as they appear and clear; pushes; CA requests.
    let errors = new Set<string>();
    subscriptions.push(
      store.status$.subscribe((status) => {
        const now = new Map(status.errors.map((d) => [formatDiagnostic(d), d]));
        for (const [key, diagnostic] of now)
          if (!errors.has(key)) events.next({ type: "config-error", diagnostic, at: Date.now() });
        if (errors.size > 0 && now.size === 0) events.next({ type: "config-valid", at: Date.now() });
        errors = new Set(now.keys());
      }),
      controller.pushes$.subscribe((push) => {
        if (writeWorkloads && push.cause === "config" && controller.pushContext !== undefined)
          void workloads.update(controller.pushContext.registry);
        events.next({ type: "push", push, at: Date.now() });
      }),
      caService.events$.subscribe((event) => events.next({ type: "certificate", event, at: Date.now() })),
    );

    // Rate limits from ConfigMaps follow the config; the last good set keeps serving.
    const configMap = options.rateLimit?.configMap ?? "ratelimit-config";
    if (configMap === false && fileRateLimits !== undefined) {
      applyRateLimits(policy, [fileRateLimits], events, report);
    } else if (configMap !== false) {
      let previous = "";
      subscriptions.push(
        store.snapshots$.subscribe((snapshot) => {
          const files = [
            ...(fileRateLimits ? [fileRateLimits] : []),
            ...rateLimitConfigMapFiles(snapshot, configMap),
          ];
          const key = JSON.stringify(files);
          if (key === previous) return;
          previous = key;
          applyRateLimits(policy, files, events, report);
        }),
      );
    }

    const first = firstValueFrom(controller.pushes$.pipe(filter((p) => p.cause === "config")), {
      defaultValue: undefined,
    });
    controller.start();
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      first,
      ...(options.signal ? [whenAborted(options.signal)] : []),
      new Promise<void>((res) => {
        timeout = setTimeout(res, options.startTimeoutMs ?? 30_000);
      }),
    ]);
    clearTimeout(timeout);
    if (writeWorkloads && controller.pushContext !== undefined)
      await workloads.update(controller.pushContext.registry);

    const services: ServedService[] = [
      { name: "xDS (ADS, SotW, Delta)", address: grpcAddress },
      ...(plaintextAddress !== undefined
        ? [{ name: "xDS (ADS, SotW, Delta), plaintext", address: plaintextAddress }]
        : []),
      {
        name: "Istio CA (istio.v1.auth.IstioCertificateService)",
        address: grpcAddress,
        ...(tls || options.tokenVerifier !== undefined
          ? {}
          : { note: "needs --tls: callers authenticate with a client certificate" }),
      },
      { name: "ext_authz (envoy.service.auth.v3.Authorization)", address: grpcAddress },
      { name: "rate limit (envoy.service.ratelimit.v3.RateLimitService)", address: grpcAddress },
      { name: "metrics (Prometheus)", address: metricsUrl ?? "off" },
      ...(writeWorkloads
        ? [
            {
              name: "workload certificates, bootstraps, SDS",
              address: resolve(workloadsDir, "<namespace>", "<name>"),
            },
          ]
        : []),
    ];
    const plane: ControlPlane = {
      ...parts(),
      addresses: {
        grpc: grpcAddress,
        ...(plaintextAddress !== undefined ? { plaintext: plaintextAddress } : {}),
        ...(metricsUrl !== undefined ? { metrics: metricsUrl } : {}),
        workloads: workloadsDir,
      },
      services,
      close,
    };
    for (const extension of options.extensions ?? []) {
      if (extension.start === undefined) continue;
      let handle: ExtensionHandle | undefined;
      try {
        handle = (await extension.start(plane)) ?? undefined;
      } catch (error) {
        throw new Error(
          `extension ${extension.name} did not start: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        );
      }
      if (handle?.services) services.push(...handle.services);
      const stop = handle?.close?.bind(handle);
      // Extensions stop first: cleanup runs in reverse order.
      if (stop !== undefined) cleanup.push(stop);
    }
    if (options.signal?.aborted) await close();
    return plane;
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

function applyRateLimits(
  policy: PolicyEngine,
  files: readonly RateLimitConfigFile[],
  events: ReplaySubject<ControlPlaneEvent>,
  report: (message: string) => void,
): void {
  const bad = files.filter((f) => f.error !== undefined);
  if (bad.length > 0) {
    for (const f of bad) report(`rate limits: ${f.error} (the previous rate limits keep serving)`);
    return;
  }
  const configs: RateLimitConfig[] = files.flatMap((f) => f.configs ?? []);
  try {
    policy.setRateLimits(configs);
  } catch (error) {
    report(
      `rate limits: ${error instanceof Error ? error.message : String(error)} in ${files.map((f) => f.source).join(", ")} (the previous rate limits keep serving)`,
    );
    return;
  }
  events.next({
    type: "rate-limits",
    domains: configs.map((c) => c.domain),
    sources: files.map((f) => f.source),
    at: Date.now(),
  });
}

/** Graceful gRPC shutdown, forced after 2 s (streams never end on their own). */
function shutdownGrpc(server: grpc.Server): Promise<void> {
  return new Promise<void>((res) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      res();
    }, 2000);
    server.tryShutdown(() => {
      clearTimeout(t);
      res();
    });
  });
}

function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((res) => {
    if (signal.aborted) res();
    else signal.addEventListener("abort", () => res(), { once: true });
  });
}
