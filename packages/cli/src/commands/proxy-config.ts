import { ConfigType } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { stringify } from "yaml";
import { type DumpKind, dumpResources, dumpTable } from "../admin/config-dump-tables.js";
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

const USAGE = `Usage: meshlet proxy-config <listeners|routes|clusters|endpoints|secrets> <proxy> [options]

Shows the config a running control plane (meshlet serve) sent a proxy — what it holds as far as its
ACKs tell — as istioctl proxy-config does, from the admin API's Envoy-shaped config dump. <proxy> is
a node id or <pod>.<namespace>. Private keys are never shown (they read [redacted]).

Options:
  --name <name>               Only this resource (repeatable): a listener, route configuration,
                              cluster, cluster of endpoints, or secret name.
  --output, -o table|json|yaml  Output format (default table; json/yaml print the resources).
${ADMIN_FLAGS}

Exit status: 0 shown, 1 the proxy is not connected (or the admin API could not be reached),
2 usage errors.`;

/** `meshlet proxy-config`: istioctl proxy-config over the admin API. */
export const command: Command = {
  name: "proxy-config",
  summary: "Show the listeners, routes, clusters, endpoints or secrets a proxy was sent (admin API).",
  usage: USAGE,
  run: runProxyConfig,
};

const KINDS: Readonly<Record<string, { kind: DumpKind; type: ConfigType }>> = {
  listeners: { kind: "listeners", type: ConfigType.LISTENERS },
  listener: { kind: "listeners", type: ConfigType.LISTENERS },
  routes: { kind: "routes", type: ConfigType.ROUTES },
  route: { kind: "routes", type: ConfigType.ROUTES },
  clusters: { kind: "clusters", type: ConfigType.CLUSTERS },
  cluster: { kind: "clusters", type: ConfigType.CLUSTERS },
  endpoints: { kind: "endpoints", type: ConfigType.ENDPOINTS },
  endpoint: { kind: "endpoints", type: ConfigType.ENDPOINTS },
  secrets: { kind: "secrets", type: ConfigType.SECRETS },
  secret: { kind: "secrets", type: ConfigType.SECRETS },
};

async function runProxyConfig(args: readonly string[], io: CommandIo): Promise<number> {
  const usageError = (m: string) => {
    io.err(`meshlet proxy-config: ${m}\n\n${USAGE}`);
    return EXIT_USAGE;
  };
  const conn = defaultConnection(io);
  const names: string[] = [];
  const positional: string[] = [];
  let output = "table";
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
      case "--name": {
        const v = value();
        if (v === undefined || v === "") return usageError("--name needs a value");
        names.push(v);
        break;
      }
      case "-o":
      case "--output":
        output = value() ?? "";
        break;
      default:
        if (arg.startsWith("-")) return usageError(`unknown option ${arg}`);
        positional.push(arg);
    }
  }
  const [what, proxy, ...rest] = positional;
  if (what === undefined)
    return usageError("name what to show: listeners, routes, clusters, endpoints or secrets");
  const kind = KINDS[what];
  if (kind === undefined)
    return usageError(
      `unknown config type ${JSON.stringify(what)}: listeners, routes, clusters, endpoints or secrets`,
    );
  if (proxy === undefined) return usageError("name the proxy: a node id or <pod>.<namespace>");
  if (rest.length > 0) return usageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (!["table", "json", "yaml"].includes(output))
    return usageError(`--output must be table, json or yaml, got ${JSON.stringify(output)}`);
  const field = {
    listeners: "listenerNames",
    routes: "routeNames",
    clusters: "clusterNames",
    endpoints: "endpointNames",
    secrets: "secretNames",
  }[kind.kind];
  let dump: unknown;
  try {
    const res = await (await adminClient(conn, io)).getProxyConfig({
      proxy,
      types: [kind.type],
      [field]: names,
    });
    dump = res.configDump;
  } catch (error) {
    io.err(`meshlet proxy-config: ${describeAdminError(error, conn)}`);
    return 1;
  }
  if (output === "json") io.out(JSON.stringify(dumpResources(dump, kind.kind), null, 2));
  else if (output === "yaml") io.out(stringify(dumpResources(dump, kind.kind)).trimEnd());
  else for (const line of formatTable(dumpTable(dump, kind.kind))) io.out(line);
  return 0;
}
