import { relative } from "node:path";
import { formatDiagnostic, validateFiles } from "@meshlet/config";
import {
  type CallProtocol,
  type CallTls,
  ExplainError,
  type ExplainRequest,
  type Explanation,
  explain,
  explanationJson,
  formatExplanation,
  type MeshConfig,
} from "@meshlet/mesh";
import {
  ADMIN_FLAGS,
  adminClient,
  defaultConnection,
  describeAdminError,
  takeAdminFlag,
} from "../admin/connection.js";
import type { Command, CommandIo } from "../command.js";

/** File paths of the config objects named, relative to the working directory (as `validate` prints them). */
function withRelativeFiles(e: Explanation, cwd: string): Explanation {
  return {
    ...e,
    hops: e.hops.map((h) => ({
      ...h,
      steps: h.steps.map((s) => ({
        ...s,
        config: s.config.map((c) =>
          c.file !== undefined ? { ...c, file: relative(cwd, c.file) || c.file } : c,
        ),
      })),
    })),
  };
}

const USAGE = `Usage: meshlet explain --config <files or dirs> --proxy <id | pod.namespace> --to <host:port> [options]
       meshlet explain --admin <url> --proxy <id | pod.namespace> --to <host:port> [options]

Walks the Envoy config meshlet generates for a proxy, as the proxy would walk a request:
listener → filter chain → HTTP filters (RBAC) → route → cluster → endpoints, then into the
destination pod's sidecar (mTLS, RBAC). Prints each step with the config objects that decided it
(kind, namespace/name, file:line). Works offline from config files, or with --admin against the
config a running control plane (meshlet serve) serves now; Envoy does not run.

Options:
  --config, -c <path>         Config files or directories (repeatable; required).
  --proxy, -p <ref>           The source proxy: its node id, or its pod as <pod>.<namespace>.
  --to <host:port>            The destination, as the application dials it (inbound: the port).
  --method, -X <method>       Request method (default GET).
  --path <path>               Request path with query (default /).
  --header, -H <name:value>   A request header (repeatable).
  --direction outbound|inbound  outbound (default): the app calls --to; inbound: a peer calls the proxy's workload.
  --protocol http|http2|tcp   Default http.
  --tls plaintext|tls|mtls    What the caller speaks (default plaintext).
  --sni <name>                SNI of a TLS call.
  --address <ip>              Destination IP for a host the registry cannot resolve.
  --source-principal <id>     Inbound: the caller's SPIFFE ID on mTLS.
  --jwt-claims <json>         Claims of a valid JWT the request carries (RequestAuthentication passed).
  --registry-only             Mesh outboundTrafficPolicy REGISTRY_ONLY (default ALLOW_ANY).
  --no-follow                 Stop at the source proxy.
  --default-namespace <ns>    Namespace for resources written without one (default "default").
  --output, -o text|json      Output format (default text).
${ADMIN_FLAGS}

Exit status: 0 the request is forwarded or answered, 1 refused (or the proxy is not in the config),
2 usage errors.`;

/** `meshlet explain`: what a proxy would do with a request, offline from a config directory. */
export const command: Command = {
  name: "explain",
  summary:
    "Explain how a proxy would route a request, step by step, from config files or a running control plane.",
  usage: USAGE,
  run: runExplain,
};

const PROTOCOLS = new Set(["http", "http2", "tcp"]);
const TLS_MODES = new Set(["plaintext", "tls", "mtls"]);

async function runExplain(args: readonly string[], io: CommandIo): Promise<number> {
  const usageError = (message: string) => {
    io.err(`meshlet explain: ${message}\n\n${USAGE}`);
    return 2;
  };
  const paths: string[] = [];
  const headers: Record<string, string> = {};
  let proxy: string | undefined;
  let to: string | undefined;
  let method: string | undefined;
  let path: string | undefined;
  let direction: ExplainRequest["direction"];
  let protocol: string | undefined;
  let tls: string | undefined;
  let sni: string | undefined;
  let address: string | undefined;
  let sourcePrincipal: string | undefined;
  let jwtClaims: ExplainRequest["jwtClaims"];
  let registryOnly = false;
  let follow = true;
  let format = "text";
  let defaultNamespace: string | undefined;
  const conn = defaultConnection(io);
  let viaAdmin = false;
  for (let i = 0; i < args.length; i++) {
    const took = takeAdminFlag(args, i, conn);
    if (typeof took === "string") return usageError(took);
    if (took > 0) {
      if ((args[i] as string).startsWith("--admin") && !(args[i] as string).startsWith("--admin-"))
        viaAdmin = true;
      i += took - 1;
      continue;
    }
    const arg = args[i] as string;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : args[++i]);
    switch (flag) {
      case "-c":
      case "--config": {
        const v = value();
        if (v === undefined) return usageError("--config needs a path");
        paths.push(v);
        break;
      }
      case "-p":
      case "--proxy":
        proxy = value();
        break;
      case "--to":
        to = value();
        break;
      case "-X":
      case "--method":
        method = value();
        break;
      case "--path":
        path = value();
        break;
      case "-H":
      case "--header": {
        const h = value() ?? "";
        const colon = h.indexOf(":");
        if (colon <= 0) return usageError(`--header ${JSON.stringify(h)} is not name:value`);
        headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
        break;
      }
      case "--direction": {
        const d = value();
        if (d !== "outbound" && d !== "inbound")
          return usageError(`--direction must be outbound or inbound, got ${JSON.stringify(d)}`);
        direction = d;
        break;
      }
      case "--protocol":
        protocol = value();
        break;
      case "--tls":
        tls = value();
        break;
      case "--sni":
        sni = value();
        break;
      case "--address":
        address = value();
        break;
      case "--source-principal":
        sourcePrincipal = value();
        break;
      case "--jwt-claims": {
        const v = value() ?? "";
        try {
          const parsed: unknown = JSON.parse(v);
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
            throw new Error("not an object");
          jwtClaims = parsed as ExplainRequest["jwtClaims"];
        } catch {
          return usageError(`--jwt-claims must be a JSON object, got ${JSON.stringify(v)}`);
        }
        break;
      }
      case "--registry-only":
        registryOnly = true;
        break;
      case "--no-follow":
        follow = false;
        break;
      case "--default-namespace":
        defaultNamespace = value();
        break;
      case "-o":
      case "--output":
        format = value() ?? "";
        break;
      case "-h":
      case "--help":
        io.out(USAGE);
        return 0;
      default:
        return usageError(
          arg.startsWith("-") ? `unknown option ${arg}` : `unexpected argument ${JSON.stringify(arg)}`,
        );
    }
  }
  if (paths.length === 0 && !viaAdmin)
    return usageError("--config (files) or --admin (a running control plane) is required");
  if (paths.length > 0 && viaAdmin)
    return usageError("--config and --admin exclude each other: explain files, or a running control plane");
  if (proxy === undefined || proxy === "") return usageError("--proxy is required");
  if (to === undefined || to === "") return usageError("--to is required");
  if (format !== "text" && format !== "json")
    return usageError(`--output must be text or json, got ${JSON.stringify(format)}`);
  if (protocol !== undefined && !PROTOCOLS.has(protocol))
    return usageError(`--protocol must be http, http2 or tcp, got ${JSON.stringify(protocol)}`);
  if (tls !== undefined && !TLS_MODES.has(tls))
    return usageError(`--tls must be plaintext, tls or mtls, got ${JSON.stringify(tls)}`);

  if (viaAdmin) {
    if (registryOnly || defaultNamespace !== undefined)
      return usageError(
        "--registry-only and --default-namespace apply to --config only (the control plane has its own)",
      );
    return explainViaAdmin(
      {
        proxy,
        to,
        method: method?.toUpperCase() ?? "",
        path: path ?? "",
        headers,
        direction: direction ?? "",
        protocol: protocol ?? "",
        tls: tls ?? "",
        sni: sni ?? "",
        address: address ?? "",
        sourcePrincipal: sourcePrincipal ?? "",
        ...(jwtClaims !== undefined ? { jwtClaims: jwtClaims as Record<string, never> } : {}),
        noFollow: !follow,
      },
      format,
      conn,
      io,
    );
  }
  const loaded = await validateFiles(paths, defaultNamespace !== undefined ? { defaultNamespace } : {});
  if (loaded.errors > 0) {
    const cwd = process.cwd();
    for (const d of loaded.diagnostics.filter((x) => x.severity === "error")) {
      io.err(formatDiagnostic(d.file !== undefined ? { ...d, file: relative(cwd, d.file) || d.file } : d));
    }
    io.err(`meshlet explain: ${loaded.errors} invalid resources left out of the config`);
  }
  const request: ExplainRequest = {
    proxy,
    to,
    ...(method !== undefined ? { method: method.toUpperCase() } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(direction !== undefined ? { direction } : {}),
    ...(protocol !== undefined ? { protocol: protocol as CallProtocol } : {}),
    ...(tls !== undefined ? { tls: tls as CallTls } : {}),
    ...(sni !== undefined ? { sni } : {}),
    ...(address !== undefined ? { address } : {}),
    ...(sourcePrincipal !== undefined ? { sourcePrincipal } : {}),
    ...(jwtClaims !== undefined ? { jwtClaims } : {}),
    ...(follow ? {} : { follow: false }),
  };
  const mesh: Partial<MeshConfig> | undefined = registryOnly
    ? { outboundTrafficPolicy: { mode: "REGISTRY_ONLY" } }
    : undefined;
  let explanation: Explanation;
  try {
    explanation = explain(request, { snapshot: loaded.snapshot, ...(mesh !== undefined ? { mesh } : {}) });
  } catch (error) {
    if (error instanceof ExplainError) {
      io.err(`meshlet explain: ${error.message}`);
      return error.code === "bad-request" ? 2 : 1;
    }
    throw error;
  }
  explanation = withRelativeFiles(explanation, process.cwd());
  if (format === "json") io.out(JSON.stringify(explanationJson(explanation), null, 2));
  else for (const line of formatExplanation(explanation)) io.out(line);
  return explanation.outcome.kind === "refused" ? 1 : 0;
}

/** `meshlet explain --admin`: the same walk, by the control plane, against the config it serves now. */
async function explainViaAdmin(
  request: Parameters<Awaited<ReturnType<typeof adminClient>>["explain"]>[0],
  format: string,
  conn: ReturnType<typeof defaultConnection>,
  io: CommandIo,
): Promise<number> {
  let res: Awaited<ReturnType<Awaited<ReturnType<typeof adminClient>>["explain"]>>;
  try {
    res = await (await adminClient(conn, io)).explain(request);
  } catch (error) {
    io.err(`meshlet explain: ${describeAdminError(error, conn)}`);
    const code = (error as { code?: number }).code;
    return code === 3 ? 2 : 1;
  }
  if (format === "json") io.out(JSON.stringify(res.explanation, null, 2));
  else {
    for (const line of res.text) io.out(line);
    io.out(`(config version ${res.configVersion}, served by ${conn.url})`);
  }
  return res.outcome === "refused" ? 1 : 0;
}
