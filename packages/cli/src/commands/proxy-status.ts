import { toJson } from "@bufbuild/protobuf";
import {
  type Proxy as AdminProxy,
  ListProxiesResponseSchema,
  SyncStatus,
  type TypeSync,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { stringify } from "yaml";
import {
  ADMIN_FLAGS,
  adminClient,
  defaultConnection,
  describeAdminError,
  takeAdminFlag,
} from "../admin/connection.js";
import { formatTable } from "../admin/table.js";
import type { Command, CommandIo } from "../command.js";
import { EXIT_USAGE } from "../command.js";

const USAGE = `Usage: meshlet proxy-status [<proxy>] [options]

Shows every proxy connected to a running control plane (meshlet serve) and whether it runs the
config it was sent, per xDS type — as istioctl proxy-status does:
  SYNCED                       it ACKed the last response
  NOT SENT                     nothing of that type was sent
  STALE                        a response was sent and not answered yet
  STALE (Never Acknowledged)   … and it never ACKed one of that type
  ERROR                        it rejected (NACKed) the last response
With <proxy> (a node id or <pod>.<namespace>), prints that proxy's versions and NACK errors.

Options:
  --namespace, -n <ns>        Only proxies of this namespace.
  --output, -o table|json|yaml  Output format (default table).
${ADMIN_FLAGS}

Exit status: 0 every proxy listed is SYNCED (or NOT SENT), 1 one is STALE or ERROR (or the admin
API could not be reached), 2 usage errors.`;

/** `meshlet proxy-status`: istioctl proxy-status over the admin API. */
export const command: Command = {
  name: "proxy-status",
  summary: "Show the connected proxies and whether each runs the config it was sent (admin API).",
  usage: USAGE,
  run: runProxyStatus,
};

/** istioctl's words for a status (istioctl/pkg/writer/pilot/status.go `xdsStatus`). */
export function statusText(t: Pick<TypeSync, "status" | "versionAcked"> | undefined): string {
  switch (t?.status) {
    case SyncStatus.SYNCED:
      return "SYNCED";
    case SyncStatus.STALE:
      return t.versionAcked === "" ? "STALE (Never Acknowledged)" : "STALE";
    case SyncStatus.ERROR:
      return "ERROR";
    default:
      return "NOT SENT";
  }
}

const COLUMNS = ["CDS", "LDS", "EDS", "RDS", "ECDS"] as const;

/** The table istioctl proxy-status prints: NAME CLUSTER CDS LDS EDS RDS ECDS ISTIOD VERSION. */
export function proxyStatusTable(proxies: readonly AdminProxy[], controlPlane: string): string[] {
  const rows: string[][] = [["NAME", "CLUSTER", ...COLUMNS, "ISTIOD", "VERSION"]];
  for (const p of proxies) {
    const byType = new Map(p.types.map((t) => [t.type, t]));
    rows.push([
      p.id,
      p.clusterId,
      ...COLUMNS.map((c) => statusText(byType.get(c))),
      controlPlane,
      p.clientVersion === "" ? p.client : p.clientVersion,
    ]);
  }
  return formatTable(rows);
}

async function runProxyStatus(args: readonly string[], io: CommandIo): Promise<number> {
  const usageError = (m: string) => {
    io.err(`meshlet proxy-status: ${m}\n\n${USAGE}`);
    return EXIT_USAGE;
  };
  const conn = defaultConnection(io);
  let namespace = "";
  let output = "table";
  let proxy: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const took = takeAdminFlag(args, i, conn);
    if (typeof took === "string") return usageError(took);
    if (took > 0) {
      i += took - 1;
      continue;
    }
    const arg = args[i] as string;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : args[++i]);
    switch (flag) {
      case "-h":
      case "--help":
        io.out(USAGE);
        return 0;
      case "-n":
      case "--namespace":
        namespace = value() ?? "";
        break;
      case "-o":
      case "--output":
        output = value() ?? "";
        break;
      default:
        if (arg.startsWith("-")) return usageError(`unknown option ${arg}`);
        if (proxy !== undefined) return usageError(`one proxy at a time, got ${proxy} and ${arg}`);
        proxy = arg;
    }
  }
  if (!["table", "json", "yaml"].includes(output))
    return usageError(`--output must be table, json or yaml, got ${JSON.stringify(output)}`);
  let res: Awaited<ReturnType<Awaited<ReturnType<typeof adminClient>>["listProxies"]>>;
  try {
    res = await (await adminClient(conn, io)).listProxies({ namespace });
  } catch (error) {
    io.err(`meshlet proxy-status: ${describeAdminError(error, conn)}`);
    return 1;
  }
  let proxies = res.proxies;
  if (proxy !== undefined) {
    proxies = proxies.filter((p) => p.id === proxy || p.id.split("~")[2] === proxy);
    if (proxies.length === 0) {
      io.err(`meshlet proxy-status: no connected proxy ${proxy}`);
      return 1;
    }
  }
  const bad = proxies.filter((p) => p.status === SyncStatus.STALE || p.status === SyncStatus.ERROR);
  if (output === "json" || output === "yaml") {
    const json = toJson(ListProxiesResponseSchema, { ...res, proxies }, { alwaysEmitImplicit: false });
    io.out(output === "json" ? JSON.stringify(json, null, 2) : stringify(json).trimEnd());
  } else if (proxy !== undefined) {
    for (const p of proxies) printOne(p, io);
  } else {
    for (const line of proxyStatusTable(proxies, res.controlPlane)) io.out(line);
  }
  for (const p of bad) {
    for (const t of p.types.filter((x) => x.status === SyncStatus.ERROR))
      io.err(`${p.id}: ${t.type} version ${t.versionNacked} rejected: ${t.nackError}`);
  }
  return bad.length > 0 ? 1 : 0;
}

function printOne(p: AdminProxy, io: CommandIo): void {
  io.out(`${p.id}`);
  io.out(
    `  workload ${p.workload}.${p.namespace}, ${p.client}${p.clientVersion ? ` ${p.clientVersion}` : ""}`,
  );
  if (p.identity) io.out(`  identity ${p.identity}`);
  if (p.configVersion) io.out(`  config version ${p.configVersion}`);
  const rows: string[][] = [["TYPE", "STATUS", "SENT", "ACKED", "NACKED"]];
  for (const t of p.types)
    rows.push([t.type, statusText(t), t.versionSent || "-", t.versionAcked || "-", t.versionNacked || "-"]);
  for (const line of formatTable(rows)) io.out(`  ${line}`);
  for (const t of p.types) if (t.nackError) io.out(`  ${t.type} NACK: ${t.nackError}`);
  for (const w of p.warnings) io.out(`  warning: ${w}`);
  if (p.error) io.out(`  error: ${p.error}`);
}
