import { mkdir, readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { serveMetrics } from "@meshlet/adapters/prometheus";
import {
  CertificateAuthority,
  createSpiffeServerCredentials,
  DirectoryRootStore,
  IstioCertificateService,
  MtlsAuthenticator,
  svidRotation$,
} from "@meshlet/ca";
import { ConfigStore, type Diagnostic, FileSource, formatDiagnostic } from "@meshlet/config";
import { MeshController, type MeshFinding, type MeshStatus } from "@meshlet/mesh";
import { ExtAuthzServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "@meshlet/policy";
import { SnapshotCache, silentLogger, XdsServer } from "@meshlet/xds";
import { filter, firstValueFrom, type Subscription } from "rxjs";
import type { Command, CommandIo } from "../command.js";
import { EXIT_USAGE } from "../command.js";
import { ControlPlaneMetrics } from "./serve/control-plane-metrics.js";
import { WorkloadIdentities } from "./serve/workload-identities.js";

const USAGE = `Usage: meshlet serve --config <dir or file>… [options]

Runs the reference control plane (what istiod does) from a directory of YAML (Istio kinds plus
Kubernetes Service/EndpointSlice/Pod or ServiceEntry/WorkloadEntry), watching it. On --listen, one
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
  --ratelimit <file>          envoyproxy/ratelimit YAML for the rate-limit service.
  --bootstrap-for <pod>.<ns>  Print that workload's gRPC bootstrap (repeatable).
  --no-sds                    Do not serve SDS sockets.

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
      case "--bootstrap-for": {
        const v = take();
        if (v === undefined) return EXIT_USAGE;
        if (flag === "--listen") o.listen = v;
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
      case "--no-sds":
        o.sds = false;
        break;
      default:
        io.err(`meshlet serve: unknown argument ${arg}\n\n${USAGE}`);
        return EXIT_USAGE;
    }
  }
  if (o.config.length === 0) {
    io.err(`meshlet serve: name the config with --config <dir>\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  for (const [flag, address] of [
    ["--listen", o.listen],
    ["--metrics", o.metrics],
  ] as const) {
    if (address !== undefined && splitAddress(address) === undefined) {
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

function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port: Number(m[2]) };
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
  const cleanup: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch (error) {
        io.err(
          `meshlet serve: shutdown step failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  };

  try {
    // The CA: a self-signed root kept in <state-dir>/ca (Istio's cacerts layout), so a restart keeps it.
    const stateDir = resolve(o.stateDir);
    await mkdir(resolve(stateDir, "ca"), { recursive: true, mode: 0o700 });
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: o.trustDomain,
      store: new DirectoryRootStore(resolve(stateDir, "ca")),
    });
    cleanup.push(() => ca.close());

    // Config: the files, watched, validated; the last good version of each resource keeps serving.
    const store = new ConfigStore({ sources: [new FileSource({ paths: o.config })] });
    cleanup.push(() => store.close());
    const engine = new PolicyEngine({});
    if (o.ratelimit !== undefined) {
      engine.setRateLimits(parseRateLimitConfig(await readFile(o.ratelimit, "utf8"), o.ratelimit));
    }
    const cache = new SnapshotCache();
    const controller = new MeshController({ config: store, cache, ca, policy: engine });
    cleanup.push(() => controller.close());
    const xds = new XdsServer({ cache, logger: silentLogger, authorize: controller.authorize });
    controller.attach(xds);
    cleanup.push(() => xds.close());

    // One gRPC server for xDS, the CA API, ext_authz and rate limiting, as istiod's one port.
    const server = new grpc.Server();
    xds.register(server);
    const caService = new IstioCertificateService({
      ca,
      authenticators: [new MtlsAuthenticator({ trustDomains: [o.trustDomain] })],
    });
    caService.register(server);
    new ExtAuthzServer({ engine }).register(server);
    new RateLimitServer({ engine }).register(server);
    let credentials = grpc.ServerCredentials.createInsecure();
    if (o.tls) {
      const own = createSpiffeServerCredentials({
        trustBundle$: ca.trustBundle$,
        svid$: svidRotation$({ ca, identity: `spiffe://${o.trustDomain}/ns/istio-system/sa/istiod` }),
      });
      cleanup.push(() => own.close());
      credentials = own.credentials;
    }
    const listen = splitAddress(o.listen) as { host: string; port: number };
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync(o.listen, credentials, (error, p) => (error ? rej(error) : res(p))),
    );
    cleanup.push(
      () =>
        new Promise<void>((res) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            res();
          }, 2000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            res();
          });
        }),
    );
    const address = `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${port}`;

    const identities = new WorkloadIdentities({
      ca,
      dir: resolve(stateDir, "workloads"),
      serverUri: address,
      sds: o.sds,
      onError: (m) => io.err(`meshlet serve: ${m}`),
    });
    cleanup.push(() => identities.close());

    let metricsUrl: string | undefined;
    if (o.metrics !== undefined) {
      const m = splitAddress(o.metrics) as { host: string; port: number };
      const metrics = new ControlPlaneMetrics({
        xdsEvents$: xds.events$,
        pushes$: controller.pushes$,
        status$: controller.status$,
        caEvents$: caService.events$,
      });
      const served = await serveMetrics(metrics.registry, { host: m.host, port: m.port });
      cleanup.push(() => served.close());
      cleanup.push(() => metrics.close());
      metricsUrl = `http://${m.host.includes(":") ? `[${m.host}]` : m.host}:${served.port}/metrics`;
    }

    // Reports: config errors (file:line) as they appear and clear, analyzer findings, proxies,
    // refused nodes, warnings, pushes.
    const subscriptions: Subscription[] = [];
    cleanup.push(() => {
      for (const s of subscriptions) s.unsubscribe();
    });
    let errors = new Set<string>();
    subscriptions.push(
      store.status$.subscribe((status) => {
        const now = new Set(status.errors.map(shown));
        for (const e of now) if (!errors.has(e)) io.err(`config: ${e}`);
        if (errors.size > 0 && now.size === 0) io.err("config: every file is valid again");
        errors = now;
      }),
    );
    let previous: MeshStatus | undefined;
    subscriptions.push(
      controller.status$.subscribe((s) => reportStatus(io, previous, s, shown, (p) => (previous = p))),
    );
    subscriptions.push(
      controller.pushes$.subscribe((p) => {
        if (p.cause === "config" && controller.pushContext !== undefined) {
          void identities.update(controller.pushContext.registry);
        }
        if (p.proxies.length === 0) return;
        const why =
          p.configs.length > 0
            ? ` (${p.configs.slice(0, 3).join(", ")}${p.configs.length > 3 ? ", …" : ""})`
            : "";
        io.err(
          `push: ${p.cause}${why} → ${p.proxies.length} proxies, ${p.resourcesChanged} resources changed, ${p.durationMs} ms (config version ${p.version})`,
        );
      }),
    );

    const first = firstValueFrom(controller.pushes$.pipe(filter((p) => p.cause === "config")));
    controller.start();
    await Promise.race([first, whenAborted(io.signal)]);
    if (controller.pushContext !== undefined) await identities.update(controller.pushContext.registry);

    const services = [
      ["xDS (ADS, SotW, Delta)", address],
      [
        "Istio CA (istio.v1.auth.IstioCertificateService)",
        `${address}${o.tls ? "" : " (needs --tls: callers authenticate with a client certificate)"}`,
      ],
      ["ext_authz (envoy.service.auth.v3.Authorization)", address],
      ["rate limit (envoy.service.ratelimit.v3.RateLimitService)", address],
      ["metrics (Prometheus)", metricsUrl ?? "off"],
      ["workload certificates, bootstraps, SDS", resolve(stateDir, "workloads", "<namespace>", "<name>")],
    ] as const;
    io.out(
      `meshlet serve: ${o.tls ? "TLS" : "plaintext"} on ${address}, config ${o.config.join(", ")}, trust domain ${o.trustDomain}`,
    );
    for (const [what, where] of services) io.out(`  ${what.padEnd(58)} ${where}`);
    for (const w of identities.all())
      io.out(`  workload ${w.namespace}/${w.name}: ${w.spiffeId}, GRPC_XDS_BOOTSTRAP=${w.bootstrap}`);
    for (const target of o.bootstrapFor) {
      const [pod, ns] = target.split(".") as [string, string];
      const bootstrap = identities.bootstrap(ns, pod);
      if (bootstrap === undefined) {
        io.err(
          `meshlet serve: --bootstrap-for ${target}: no workload ${ns}/${pod} with a service account in the config`,
        );
        continue;
      }
      io.out(`gRPC bootstrap for ${target} (${identities.files(ns, pod)?.bootstrap}):`);
      io.out(JSON.stringify(bootstrap, null, 2));
    }
    io.out("Ready. Ctrl-C stops.");

    await whenAborted(io.signal);
    io.err("meshlet serve: stopping");
    await stop();
    return 0;
  } catch (error) {
    io.err(`meshlet serve: ${error instanceof Error ? error.message : String(error)}`);
    await stop();
    return 1;
  }
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
