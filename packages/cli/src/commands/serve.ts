import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DEFAULT_ADMIN_ADDRESS, isLoopbackHost, scrapeMetrics } from "@meshlet/admin";
import { type Diagnostic, FileSource, formatDiagnostic } from "@meshlet/config";
import type { MeshFinding, MeshStatus } from "@meshlet/mesh";
import type { Subscription } from "rxjs";
import type { Command, CommandIo } from "../command.js";
import { EXIT_USAGE } from "../command.js";
import { adminExtension } from "../serve/admin-extension.js";
import {
  type ControlPlane,
  type ControlPlaneExtension,
  splitHostPort,
  startControlPlane,
} from "../serve/control-plane.js";
import { type CaMode, kubernetesControlPlane, type VaultCaSettings } from "../serve/kubernetes-mode.js";
import { meshletdExtension } from "../serve/meshletd-extension.js";

const USAGE = `Usage: meshlet serve --config <dir or file>… [options]
       meshlet serve --kubernetes [options]          (meshletd, on a cluster)

Runs the reference control plane (what istiod does) from a directory of YAML (Istio kinds plus
Kubernetes Service/EndpointSlice/Pod or ServiceEntry/WorkloadEntry), watching it, for proxyless
gRPC clients, Envoy sidecars and gateways. On --listen, one
gRPC port, as istiod serves both: xDS (ADS, state of the world and delta), the Istio CA API
(istio.v1.auth.IstioCertificateService), ext_authz (envoy.service.auth.v3.Authorization) and rate
limiting (envoy.service.ratelimit.v3.RateLimitService). Per workload with a service account, in
<state-dir>/workloads/<namespace>/<name>/: cert-chain.pem, key.pem, root-cert.pem (renewed before
they expire), grpc-bootstrap.json (Istio's shape) and an SDS socket sds.sock. Prometheus metrics on
--metrics. Bad YAML never stops it: the last good config keeps serving and the error is printed
with file:line.

Options:
  --config, -c <path>         Files or directories of YAML/JSON (repeatable; required).
  --listen <host:port>        gRPC address (default 127.0.0.1:15010; port 0 picks one).
  --metrics <host:port>       Prometheus /metrics address (default 127.0.0.1:15014; "off" disables).
  --state-dir <dir>           Where the CA root and workload files live (default ./.meshlet).
  --trust-domain <domain>     SPIFFE trust domain (default cluster.local).
  --tls                       Serve --listen over TLS with the control plane's own SVID
                              (spiffe://<td>/ns/istio-system/sa/istiod); clients may present a
                              certificate, which authenticates CA requests and xDS nodes.
  --ratelimit <file>          envoyproxy/ratelimit YAML for the rate-limit service (ConfigMaps
                              named ratelimit-config in the config are read too, and followed).
  --bootstrap-for <pod>.<ns>  Print that workload's gRPC bootstrap (repeatable).
  --no-sds                    Do not serve SDS sockets.
  --admin <host:port>|off     The admin API (meshlet.admin.v1.MeshAdmin over Connect, gRPC and
                              gRPC-Web) and browser console (default 127.0.0.1:15015; if that
                              port is taken the default is skipped with a warning). An address
                              other than loopback needs --admin-cert/--admin-key and a token.
  --admin-token-env <var>     Environment variable holding the admin API's bearer token (default
                              MESHLET_ADMIN_TOKEN; when it is set, every admin call must carry it).
  --admin-cert <file>         PEM certificate to serve the admin API over TLS (with --admin-key).
  --admin-key <file>          PEM private key of --admin-cert.
  --graph-metrics <url>       A Prometheus page with istio_requests_total (the services' /metrics)
                              for the console's mesh graph (repeatable).
  --grpc-rbac                 Bootstraps say the workloads run grpc-js with
                              GRPC_XDS_EXPERIMENTAL_RBAC=true (else grpc-js servers get no
                              listener while an AuthorizationPolicy selects them).

On a cluster (--kubernetes; the meshletd image runs this): config and registry from the API
server (KubernetesSource; in a pod its service account, else --kubeconfig); --listen defaults to
0.0.0.0:15012 over TLS (xDS and the Istio CA API; serving certificate from its own CA for
MESHLET_SERVICE_HOST and istiod.istio-system.svc), plaintext xDS on 0.0.0.0:15010, metrics on
0.0.0.0:15014, the admission webhooks on 0.0.0.0:15017, /ready and /healthz on 0.0.0.0:8080.
Callers prove their service account with its token (TokenReview, audience istio-ca) or a client
certificate from the mesh's CA; a node claiming another namespace or service account is refused.
The CA root is shared by replicas in Secret istio-ca-secret, published to every namespace as
ConfigMap istio-ca-root-cert, and written into the webhook configurations' caBundle.
Environment (set by \`meshlet manifest generate\`'s Deployment): POD_NAMESPACE, SERVICE_ACCOUNT,
TRUST_DOMAIN, MESHLET_SERVICE_HOST, MESHLET_CONFIG_DIR, MESHLET_CA_MODE, MESHLET_MUTATING_WEBHOOK,
MESHLET_VALIDATING_WEBHOOK; flags win.
  --kubernetes                Run as meshletd (above). --config then adds files to the cluster's config.
  --kubeconfig <file>         Use this kubeconfig (current context; a bearer-token user) instead of
                              the pod's service account (default $KUBECONFIG when set).
  --namespace <ns>            The control plane's namespace (POD_NAMESPACE).
  --service-account <sa>      The control plane's service account (SERVICE_ACCOUNT, default meshletd).
  --service-host <host>       The Service host agents dial (MESHLET_SERVICE_HOST, default
                              meshletd.<namespace>.svc).
  --dns-name <name>           Another DNS name for the serving certificates (repeatable).
  --xds-plaintext <host:port>|off   Plaintext xDS (default 0.0.0.0:15010).
  --webhook <host:port>|off   Admission webhooks (default 0.0.0.0:15017).
  --health <host:port>|off    Readiness /ready and liveness /healthz (default 0.0.0.0:8080).
  --config-dir <dir>          injector.json lives here (MESHLET_CONFIG_DIR, default /etc/meshlet).
  --ca-mode self-signed|plugged|vault   self-signed: root in Secret istio-ca-secret (default);
                              plugged: Istio's cacerts layout in /etc/cacerts; vault: Vault's PKI
                              engine, Kubernetes auth (MESHLET_CA_MODE; VAULT_ADDR, VAULT_NAMESPACE,
                              MESHLET_VAULT_PKI_MOUNT, _PKI_ROLE, _SERVING_ROLE, _AUTH_MOUNT,
                              _AUTH_ROLE, _TOKEN_PATH; docs/aks.md "External CA on Vault").
  --mutating-webhook <name>   MutatingWebhookConfiguration whose caBundle to keep current
                              (MESHLET_MUTATING_WEBHOOK).
  --validating-webhook <name> ValidatingWebhookConfiguration likewise (MESHLET_VALIDATING_WEBHOOK).
  --ca-bundle-resync <seconds>   How often both caBundles are checked again, besides at every
                              root change (default 60).

Stops gracefully on SIGINT/SIGTERM. Exit status: 0 after a graceful stop, 1 when it cannot start,
2 on usage errors.`;

/** `meshlet serve`: the reference control plane from a directory of YAML. */
export const command: Command = {
  name: "serve",
  summary: "Run the reference control plane (xDS, Istio CA API, SDS, ext_authz, rate limit) from YAML.",
  usage: USAGE,
  run: runServe,
};

interface ServeOptions {
  config: string[];
  listen: string;
  metrics: string | undefined;
  stateDir: string;
  trustDomain: string;
  tls: boolean;
  ratelimit?: string;
  bootstrapFor: string[];
  sds: boolean;
  grpcRbac: boolean;
  admin: string | undefined;
  adminExplicit: boolean;
  adminTokenEnv: string;
  adminCert?: string;
  adminKey?: string;
  graphMetrics: string[];
  /** Flags given explicitly (their defaults differ with --kubernetes). */
  explicit: Set<string>;
  kubernetes: boolean;
  kubeconfig?: string;
  namespace?: string;
  serviceAccount?: string;
  serviceHost?: string;
  dnsNames: string[];
  xdsPlaintext: string | undefined;
  webhook: string | undefined;
  health: string | undefined;
  configDir?: string;
  caMode?: string;
  mutatingWebhook?: string;
  validatingWebhook?: string;
  caBundleResyncSeconds?: number;
}

function parseArgs(args: readonly string[], io: CommandIo): ServeOptions | number {
  const o: ServeOptions = {
    config: [],
    listen: "127.0.0.1:15010",
    metrics: "127.0.0.1:15014",
    stateDir: ".meshlet",
    trustDomain: "cluster.local",
    tls: false,
    bootstrapFor: [],
    sds: true,
    grpcRbac: false,
    admin: DEFAULT_ADMIN_ADDRESS,
    adminExplicit: false,
    adminTokenEnv: "MESHLET_ADMIN_TOKEN",
    graphMetrics: [],
    explicit: new Set(),
    kubernetes: false,
    dnsNames: [],
    xdsPlaintext: "0.0.0.0:15010",
    webhook: "0.0.0.0:15017",
    health: "0.0.0.0:8080",
  };
  const value = (i: number, flag: string): string | undefined => {
    const v = args[i + 1];
    if (v === undefined || v.startsWith("--")) {
      io.err(`meshlet serve: ${flag} needs a value\n\n${USAGE}`);
      return undefined;
    }
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
    const take = () => {
      if (inline !== undefined) return inline;
      const v = value(i, flag);
      if (v !== undefined) i++;
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        io.out(USAGE);
        return 0;
      case "-c":
      case "--config": {
        const v = take();
        if (v === undefined) return EXIT_USAGE;
        o.config.push(v);
        break;
      }
      case "--listen":
      case "--metrics":
      case "--state-dir":
      case "--trust-domain":
      case "--ratelimit":
      case "--bootstrap-for":
      case "--admin":
      case "--admin-token-env":
      case "--admin-cert":
      case "--admin-key":
      case "--graph-metrics":
      case "--kubeconfig":
      case "--namespace":
      case "--service-account":
      case "--service-host":
      case "--dns-name":
      case "--xds-plaintext":
      case "--webhook":
      case "--health":
      case "--config-dir":
      case "--ca-mode":
      case "--mutating-webhook":
      case "--validating-webhook":
      case "--ca-bundle-resync": {
        const v = take();
        if (v === undefined) return EXIT_USAGE;
        o.explicit.add(flag);
        if (flag === "--kubeconfig") o.kubeconfig = v;
        else if (flag === "--namespace") o.namespace = v;
        else if (flag === "--service-account") o.serviceAccount = v;
        else if (flag === "--service-host") o.serviceHost = v;
        else if (flag === "--dns-name") o.dnsNames.push(v);
        else if (flag === "--xds-plaintext") o.xdsPlaintext = v === "off" ? undefined : v;
        else if (flag === "--webhook") o.webhook = v === "off" ? undefined : v;
        else if (flag === "--health") o.health = v === "off" ? undefined : v;
        else if (flag === "--config-dir") o.configDir = v;
        else if (flag === "--ca-mode") o.caMode = v;
        else if (flag === "--mutating-webhook") o.mutatingWebhook = v;
        else if (flag === "--validating-webhook") o.validatingWebhook = v;
        else if (flag === "--ca-bundle-resync") {
          const seconds = Number(v);
          if (!(seconds > 0)) {
            io.err(`meshlet serve: --ca-bundle-resync takes a positive number of seconds, got "${v}"`);
            return EXIT_USAGE;
          }
          o.caBundleResyncSeconds = seconds;
        } else if (flag === "--admin") {
          o.admin = v === "off" ? undefined : v;
          o.adminExplicit = true;
        } else if (flag === "--admin-token-env") o.adminTokenEnv = v;
        else if (flag === "--admin-cert") o.adminCert = v;
        else if (flag === "--admin-key") o.adminKey = v;
        else if (flag === "--graph-metrics") o.graphMetrics.push(v);
        else if (flag === "--listen") o.listen = v;
        else if (flag === "--metrics") o.metrics = v === "off" ? undefined : v;
        else if (flag === "--state-dir") o.stateDir = v;
        else if (flag === "--trust-domain") o.trustDomain = v;
        else if (flag === "--ratelimit") o.ratelimit = v;
        else o.bootstrapFor.push(v);
        break;
      }
      case "--tls":
        o.tls = true;
        break;
      case "--kubernetes":
        o.kubernetes = true;
        break;
      case "--no-sds":
        o.sds = false;
        break;
      case "--grpc-rbac":
        o.grpcRbac = true;
        break;
      default:
        io.err(`meshlet serve: unknown argument ${arg}\n\n${USAGE}`);
        return EXIT_USAGE;
    }
  }
  if (o.config.length === 0 && !o.kubernetes) {
    io.err(
      `meshlet serve: name the config with --config <dir>, or run on a cluster with --kubernetes\n\n${USAGE}`,
    );
    return EXIT_USAGE;
  }
  const kubernetesOnly = [...o.explicit].filter((f) =>
    [
      "--kubeconfig",
      "--namespace",
      "--service-account",
      "--service-host",
      "--dns-name",
      "--xds-plaintext",
      "--webhook",
      "--health",
      "--config-dir",
      "--ca-mode",
      "--mutating-webhook",
      "--validating-webhook",
      "--ca-bundle-resync",
    ].includes(f),
  );
  if (!o.kubernetes && kubernetesOnly.length > 0) {
    io.err(`meshlet serve: ${kubernetesOnly.join(", ")} only apply with --kubernetes`);
    return EXIT_USAGE;
  }
  if (o.kubernetes) {
    // meshletd's defaults: Istio's ports on every interface, TLS on 15012, state in /tmp (the
    // container's root filesystem is read-only), no SDS sockets (the pods' agents serve SDS).
    if (!o.explicit.has("--listen")) o.listen = "0.0.0.0:15012";
    if (!o.explicit.has("--metrics")) o.metrics = "0.0.0.0:15014";
    if (!o.explicit.has("--state-dir")) o.stateDir = join(tmpdir(), "meshlet");
    o.tls = true;
    o.sds = false;
  }
  if ((o.adminCert === undefined) !== (o.adminKey === undefined)) {
    io.err("meshlet serve: --admin-cert and --admin-key go together");
    return EXIT_USAGE;
  }
  for (const url of o.graphMetrics) {
    if (!/^https?:\/\//.test(url)) {
      io.err(`meshlet serve: --graph-metrics takes an http(s) URL, got "${url}"`);
      return EXIT_USAGE;
    }
  }
  for (const [flag, address] of [
    ["--listen", o.listen],
    ["--metrics", o.metrics],
    ["--admin", o.admin],
    ...(o.kubernetes
      ? ([
          ["--xds-plaintext", o.xdsPlaintext],
          ["--webhook", o.webhook],
          ["--health", o.health],
        ] as const)
      : []),
  ] as const) {
    if (address !== undefined && splitHostPort(address) === undefined) {
      io.err(`meshlet serve: ${flag} must be <host>:<port>, got "${address}"`);
      return EXIT_USAGE;
    }
  }
  for (const w of o.bootstrapFor) {
    if (!/^[^.\s]+\.[^.\s]+$/.test(w)) {
      io.err(`meshlet serve: --bootstrap-for takes <pod>.<namespace>, got "${w}"`);
      return EXIT_USAGE;
    }
  }
  return o;
}

const CA_MODES: readonly string[] = ["self-signed", "plugged", "vault"];

/** `ca.mode=vault`: the Deployment's `VAULT_ADDR` and `MESHLET_VAULT_*` (unset: the defaults). */
function vaultSettings(env: (name: string) => string | undefined): VaultCaSettings {
  const pairs: Array<[keyof Omit<VaultCaSettings, "address">, string]> = [
    ["pkiMount", "MESHLET_VAULT_PKI_MOUNT"],
    ["role", "MESHLET_VAULT_PKI_ROLE"],
    ["servingRole", "MESHLET_VAULT_SERVING_ROLE"],
    ["authMount", "MESHLET_VAULT_AUTH_MOUNT"],
    ["authRole", "MESHLET_VAULT_AUTH_ROLE"],
    ["tokenPath", "MESHLET_VAULT_TOKEN_PATH"],
    ["namespace", "VAULT_NAMESPACE"],
  ];
  const settings: Record<string, string> = { address: env("VAULT_ADDR") ?? "" };
  for (const [key, name] of pairs) {
    const value = env(name);
    if (value !== undefined) settings[key] = value;
  }
  return settings as unknown as VaultCaSettings;
}

/** `--kubernetes`: flags over the Deployment's environment (docs/aks.md, "meshletd's contract"). */
async function kubernetesOptions(o: ServeOptions, io: CommandIo) {
  const env = (name: string) => {
    const v = io.env[name];
    return v === undefined || v === "" ? undefined : v;
  };
  const caMode = o.caMode ?? env("MESHLET_CA_MODE") ?? "self-signed";
  if (!CA_MODES.includes(caMode))
    throw new Error(
      `CA mode "${caMode}" is not one meshlet serve knows (supported: ${CA_MODES.join(", ")}); see docs/aks.md`,
    );
  const namespace = o.namespace ?? env("POD_NAMESPACE");
  const serviceAccount = o.serviceAccount ?? env("SERVICE_ACCOUNT");
  const serviceHost = o.serviceHost ?? env("MESHLET_SERVICE_HOST");
  const mutating = o.mutatingWebhook ?? env("MESHLET_MUTATING_WEBHOOK");
  const validating = o.validatingWebhook ?? env("MESHLET_VALIDATING_WEBHOOK");
  const kubeconfig = o.kubeconfig ?? env("KUBECONFIG");
  return kubernetesControlPlane({
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    ...(serviceHost !== undefined ? { serviceHost } : {}),
    trustDomain: o.explicit.has("--trust-domain") ? o.trustDomain : (env("TRUST_DOMAIN") ?? o.trustDomain),
    dnsNames: o.dnsNames,
    configDir: o.configDir ?? env("MESHLET_CONFIG_DIR") ?? "/etc/meshlet",
    caMode: caMode as CaMode,
    ...(caMode === "vault" ? { vault: vaultSettings(env) } : {}),
    ...(mutating !== undefined ? { mutatingWebhook: mutating } : {}),
    ...(validating !== undefined ? { validatingWebhook: validating } : {}),
    webhook: o.webhook ?? false,
    ...(o.caBundleResyncSeconds !== undefined ? { caBundleResyncMs: o.caBundleResyncSeconds * 1000 } : {}),
    health: o.health ?? false,
    extraSources: o.config.length > 0 ? [new FileSource({ paths: o.config })] : [],
    onError: (message) => io.err(`meshletd: ${message}`),
  });
}

function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

async function runServe(args: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parseArgs(args, io);
  if (typeof parsed === "number") return parsed;
  const o = parsed;
  const cwd = process.cwd();
  const shown = (d: Diagnostic) =>
    formatDiagnostic(d.file !== undefined ? { ...d, file: relative(cwd, d.file) || d.file } : d);

  const extensions: ControlPlaneExtension[] = [];
  if (o.admin !== undefined) {
    const token = io.env[o.adminTokenEnv];
    const host = splitHostPort(o.admin)?.host ?? "";
    if (!isLoopbackHost(host) && (o.adminCert === undefined || token === undefined || token === "")) {
      io.err(
        `meshlet serve: refusing to serve the admin API on ${o.admin} without TLS (--admin-cert/--admin-key) and a token (${o.adminTokenEnv}): it shows every proxy's config. Bind a loopback address, or give both`,
      );
      return 1;
    }
    let tls: { key: Buffer; cert: Buffer } | undefined;
    try {
      if (o.adminCert !== undefined && o.adminKey !== undefined)
        tls = { cert: await readFile(o.adminCert), key: await readFile(o.adminKey) };
    } catch (error) {
      io.err(`meshlet serve: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
    extensions.push(
      adminExtension({
        address: o.admin,
        ...(token !== undefined && token !== "" ? { token } : {}),
        ...(tls !== undefined ? { tls } : {}),
        ...(o.graphMetrics.length > 0 ? { metrics: scrapeMetrics(o.graphMetrics) } : {}),
        displayPath: (f) => relative(cwd, f) || f,
        // The default port being taken (another serve, a test) must not stop the control plane.
        ...(o.adminExplicit
          ? {}
          : { optional: (m: string) => io.err(`meshlet serve: admin API not started: ${m}`) }),
      }),
    );
  }
  let plane: ControlPlane;
  try {
    const cluster = o.kubernetes ? await kubernetesOptions(o, io) : undefined;
    if (cluster !== undefined) extensions.unshift(meshletdExtension(cluster.extension));
    plane = await startControlPlane({
      extensions,
      config: { paths: o.config },
      ...cluster?.options,
      ...(cluster !== undefined
        ? {
            workloadFiles: false,
            ...(o.xdsPlaintext !== undefined ? { plaintextListen: o.xdsPlaintext } : {}),
          }
        : {}),
      listen: o.listen,
      metrics: o.metrics ?? false,
      stateDir: o.stateDir,
      trustDomain: cluster?.options.trustDomain ?? o.trustDomain,
      tls: o.tls,
      sds: o.sds,
      ...(o.ratelimit !== undefined ? { rateLimit: { file: o.ratelimit } } : {}),
      ...(o.grpcRbac ? { bootstrap: { rbac: true } } : {}),
      signal: io.signal,
    });
  } catch (error) {
    io.err(`meshlet serve: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  const stop = async () => {
    try {
      await plane.close();
    } catch (error) {
      io.err(`meshlet serve: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  if (io.signal.aborted) {
    await stop();
    return 0;
  }

  // Reports: config errors (file:line) as they appear and clear, analyzer findings, proxies,
  // refused nodes, warnings, pushes, errors that stop nothing.
  const subscriptions: Subscription[] = [
    plane.events$.subscribe((e) => {
      if (e.type === "config-error") io.err(`config: ${shown(e.diagnostic)}`);
      else if (e.type === "config-valid") io.err("config: every file is valid again");
      else if (e.type === "error") io.err(`meshlet serve: ${e.message}`);
      else if (e.type === "rate-limits")
        io.err(
          `rate limits: domains ${e.domains.join(", ") || "(none)"} from ${e.sources.join(", ") || "(none)"}`,
        );
      else if (e.type === "push" && e.push.proxies.length > 0) {
        const p = e.push;
        const why =
          p.configs.length > 0
            ? ` (${p.configs.slice(0, 3).join(", ")}${p.configs.length > 3 ? ", …" : ""})`
            : "";
        io.err(
          `push: ${p.cause}${why} → ${p.proxies.length} proxies, ${p.resourcesChanged} resources changed, ${p.durationMs} ms (config version ${p.version})`,
        );
      }
    }),
  ];
  let previous: MeshStatus | undefined;
  subscriptions.push(
    plane.controller.status$.subscribe((s) => reportStatus(io, previous, s, shown, (p) => (previous = p))),
  );

  io.out(
    `meshlet serve: ${o.tls ? "TLS" : "plaintext"} on ${plane.addresses.grpc}, config ${(o.kubernetes ? ["kubernetes API", ...o.config] : o.config).join(", ")}, trust domain ${plane.trustDomain}`,
  );
  for (const s of plane.services)
    io.out(`  ${s.name.padEnd(58)} ${s.address}${s.note !== undefined ? ` (${s.note})` : ""}`);
  for (const w of plane.workloads.all())
    io.out(`  workload ${w.namespace}/${w.name}: ${w.spiffeId}, GRPC_XDS_BOOTSTRAP=${w.bootstrap}`);
  for (const target of o.bootstrapFor) {
    const [pod, ns] = target.split(".") as [string, string];
    const bootstrap = plane.workloads.bootstrap(ns, pod);
    if (bootstrap === undefined) {
      io.err(
        `meshlet serve: --bootstrap-for ${target}: no workload ${ns}/${pod} with a service account in the config`,
      );
      continue;
    }
    io.out(`gRPC bootstrap for ${target} (${plane.workloads.files(ns, pod)?.bootstrap}):`);
    io.out(JSON.stringify(bootstrap, null, 2));
  }
  io.out("Ready. Ctrl-C stops.");

  await whenAborted(io.signal);
  io.err("meshlet serve: stopping");
  for (const s of subscriptions) s.unsubscribe();
  await stop();
  return 0;
}

function reportStatus(
  io: CommandIo,
  before: MeshStatus | undefined,
  now: MeshStatus,
  shown: (d: Diagnostic) => string,
  remember: (s: MeshStatus) => void,
): void {
  const key = (f: MeshFinding) => shown(f);
  const old = new Set((before?.findings ?? []).map(key));
  for (const f of now.findings) if (!old.has(key(f))) io.err(`analysis: ${key(f)}`);
  const was = new Map((before?.proxies ?? []).map((p) => [p.id, p]));
  for (const p of now.proxies) {
    const prev = was.get(p.id);
    if (prev === undefined) io.err(`proxy connected: ${p.id} (${p.kind}, ${p.client})`);
    const seen = new Set((prev?.warnings ?? []).map((w) => w.message));
    for (const w of p.warnings)
      if (!seen.has(w.message)) io.err(`warning for ${p.id}: ${w.message}${w.path ? ` (${w.path})` : ""}`);
    if (p.error !== undefined && p.error !== prev?.error) io.err(`error for ${p.id}: ${p.error}`);
  }
  const ids = new Set(now.proxies.map((p) => p.id));
  for (const id of was.keys()) if (!ids.has(id)) io.err(`proxy disconnected: ${id}`);
  const refusedBefore = before?.refused.length ?? 0;
  const lastBefore = before?.refused.at(-1);
  const fresh =
    lastBefore === undefined ? now.refused : now.refused.slice(now.refused.indexOf(lastBefore) + 1);
  for (const r of refusedBefore === now.refused.length && lastBefore === now.refused.at(-1) ? [] : fresh) {
    io.err(`refused node ${JSON.stringify(r.nodeId)} (gRPC status ${r.code}): ${r.reason}`);
  }
  remember(now);
}
