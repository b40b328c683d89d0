import { toJson } from "@bufbuild/protobuf";
import { type Event as AdminEvent, EventKind, EventSchema } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import {
  ADMIN_EXIT_STATUS,
  ADMIN_FLAGS,
  adminArgs,
  adminClient,
  adminExitCode,
  defaultConnection,
  describeAdminError,
} from "../admin/connection.js";
import type { Command, CommandIo } from "../command.js";
import { EXIT_USAGE } from "../command.js";

const KINDS: Readonly<Record<string, EventKind>> = {
  push: EventKind.PUSH,
  nack: EventKind.NACK,
  diagnostic: EventKind.DIAGNOSTIC,
  certificate: EventKind.CERTIFICATE,
  "policy-denial": EventKind.POLICY_DENIAL,
  proxy: EventKind.PROXY,
};

const USAGE = `Usage: meshlet events [options]

Follows a running control plane's event feed (the admin API's WatchEvents stream, what the
console's feed shows): pushes (cause, proxies, duration), NACKs, config errors and analyzer
findings as they appear and clear, certificates issued and refused, policy denials, proxies
connecting and leaving. One line per event; runs until Ctrl-C, the control plane stops, or --count.

Options:
  --kind <kind>               Only this kind (repeatable): ${Object.keys(KINDS).join(", ")}.
  --replay <n>                First print up to n recent events (default 0).
  --count <n>                 Exit 0 after n events.
  --output, -o text|json      text (default) or one JSON object per line (Event as proto3 JSON).
${ADMIN_FLAGS}

Exit status: 0 the stream ended (Ctrl-C, --count reached, the control plane closed it), 2 usage
errors, ${ADMIN_EXIT_STATUS}`;

/** `meshlet events`: the admin API's event feed in a terminal or a script. */
export const command: Command = {
  name: "events",
  summary: "Follow a running control plane's events: pushes, NACKs, config errors, denials (admin API).",
  usage: USAGE,
  run: runEvents,
};

async function runEvents(args: readonly string[], io: CommandIo): Promise<number> {
  const usageError = (m: string) => {
    io.err(`meshlet events: ${m}\n\n${USAGE}`);
    return EXIT_USAGE;
  };
  const conn = defaultConnection(io);
  const kinds: EventKind[] = [];
  let replay = 0;
  let count: number | undefined;
  let output = "text";
  for (const a of adminArgs(args, conn)) {
    if ("error" in a) return usageError(a.error);
    const { arg, flag } = a;
    const value = () => a.value() ?? "";
    const count0 = (v: string) => (/^\d{1,6}$/.test(v) ? Number(v) : undefined);
    switch (flag) {
      case "-h":
      case "--help":
        io.out(USAGE);
        return 0;
      case "--kind": {
        const v = value();
        const k = KINDS[v];
        if (k === undefined)
          return usageError(
            `--kind must be one of ${Object.keys(KINDS).join(", ")}, got ${JSON.stringify(v)}`,
          );
        kinds.push(k);
        break;
      }
      case "--replay": {
        const n = count0(value());
        if (n === undefined) return usageError("--replay takes a number of events");
        replay = n;
        break;
      }
      case "--count": {
        const n = count0(value());
        if (n === undefined || n === 0) return usageError("--count takes a positive number of events");
        count = n;
        break;
      }
      case "-o":
      case "--output":
        output = value();
        break;
      default:
        return usageError(arg.startsWith("-") ? `unknown option ${arg}` : `unexpected argument ${arg}`);
    }
  }
  if (output !== "text" && output !== "json")
    return usageError(`--output must be text or json, got ${JSON.stringify(output)}`);
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  io.signal.addEventListener("abort", onAbort, { once: true });
  let seen = 0;
  try {
    const client = await adminClient(conn, io);
    const { describeEvent } = await import("@meshlet/admin/client");
    for await (const e of client.watchEvents({ kinds, replay }, { signal: abort.signal, timeoutMs: 0 })) {
      io.out(output === "json" ? JSON.stringify(toJson(EventSchema, e)) : textLine(e, describeEvent));
      if (count !== undefined && ++seen >= count) break;
    }
    return 0;
  } catch (error) {
    if (abort.signal.aborted) return 0;
    io.err(`meshlet events: ${describeAdminError(error, conn)}`);
    return adminExitCode(error);
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    abort.abort();
  }
}

function textLine(e: AdminEvent, describe: (e: AdminEvent) => { kind: string; text: string }): string {
  const d = describe(e);
  const time = e.time ? new Date(Number(e.time.seconds) * 1000 + e.time.nanos / 1e6).toISOString() : "";
  return `${time} ${d.kind.padEnd(8)} ${d.text}`;
}
