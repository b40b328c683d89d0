import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** The outcome of one RPC made by a real xDS client. */
export type RpcResult = { ok: true; backend: string } | { ok: false; code: number; details: string };

/** A real xDS client running in its own process, driven by JSON lines on stdin/stdout. */
export interface XdsClientProcess {
  /** Which client this is, for messages ("grpc-js-xds", "c-core"). */
  readonly name: string;
  /** The OS process id. */
  readonly pid: number;
  /** Makes `count` sequential unary RPCs to `target` (e.g. `xds:///echo`), one result per RPC. */
  call(
    target: string,
    count: number,
    options?: { timeoutMs?: number; method?: string },
  ): Promise<RpcResult[]>;
  /** Closes the client's channels (so its xDS client unsubscribes), then waits for the process to exit. */
  close(): Promise<void>;
  /** Everything the client wrote to stderr so far (its own logs), for failure messages. */
  stderr(): string;
}

/** How to start a client process. */
export interface ClientProcessOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** How long the process may take to print `{"ready":true}`. */
  startTimeoutMs?: number;
}

/** The xDS bootstrap both clients read from `GRPC_XDS_BOOTSTRAP_CONFIG`. */
export function bootstrapConfig(options: { serverPort: number; nodeId: string; cluster?: string }): string {
  return JSON.stringify({
    xds_servers: [
      {
        server_uri: `127.0.0.1:${options.serverPort}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    // grpc-js-xds rejects a bootstrap whose node has no `locality` ("locality field missing in node element").
    node: { id: options.nodeId, cluster: options.cluster ?? "meshlet-test", locality: {} },
  });
}

const live = new Set<ChildProcessWithoutNullStreams>();
let exitHookInstalled = false;

/** Last resort: if the test process exits with clients still running, kill them. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

interface Pending {
  resolve(message: Record<string, unknown>): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Spawns a client process and waits until it reports ready. */
export async function startClientProcess(options: ClientProcessOptions): Promise<XdsClientProcess> {
  installExitHook();
  const child = spawn(options.command, options.args, {
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  // How the process ended, for messages: "code 1" or "signal SIGSEGV".
  const exited = new Promise<string>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  let exitStatus: string | undefined;
  void exited.then((status) => {
    exitStatus = status;
  });
  child.stdin.on("error", () => {
    // The process died; the pending command is rejected by the exit handler below.
  });

  const pending = new Map<number, Pending>();
  let nextId = 1;
  let ready: (() => void) | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      stderr += `[non-JSON stdout] ${line}\n`;
      return;
    }
    if (message.ready === true) {
      ready?.();
      return;
    }
    const waiting = typeof message.id === "number" ? pending.get(message.id) : undefined;
    if (!waiting) return;
    pending.delete(message.id as number);
    clearTimeout(waiting.timer);
    if (typeof message.error === "string") waiting.reject(new Error(`${options.name}: ${message.error}`));
    else waiting.resolve(message);
  });
  const tail = () => stderr.slice(-4000);
  void exited.then((status) => {
    for (const [id, waiting] of pending) {
      pending.delete(id);
      clearTimeout(waiting.timer);
      waiting.reject(new Error(`${options.name} exited (${status}) during a command; stderr:\n${tail()}`));
    }
    ready = undefined;
  });

  const send = (command: Record<string, unknown>, timeoutMs: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`${options.name} is not running (${exitStatus ?? "exited"}); stderr:\n${tail()}`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${options.name} did not answer ${JSON.stringify(command)} in ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });

  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${options.name} not ready in ${startTimeoutMs} ms; stderr:\n${tail()}`)),
        startTimeoutMs,
      );
      ready = () => {
        clearTimeout(timer);
        resolve();
      };
      void exited.then((status) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited (${status}) before ready; stderr:\n${tail()}`));
      });
    });
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    pid: child.pid!,
    async call(target, count, callOptions = {}) {
      const timeoutMs = callOptions.timeoutMs ?? 5000;
      const reply = await send(
        {
          op: "call",
          target,
          count,
          timeoutMs,
          ...(callOptions.method ? { method: callOptions.method } : {}),
        },
        count * timeoutMs + 10_000,
      );
      return reply.results as RpcResult[];
    },
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          await send({ op: "close" }, 10_000).catch(() => undefined);
          child.stdin.end();
          const killTimer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(killTimer);
        }
        lines.close();
      })();
      return closing;
    },
    stderr: () => stderr,
  };
}

/** Counts results per backend id; failed RPCs count under `"error"`. */
export function tally(results: RpcResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) {
    const key = result.ok ? result.backend : "error";
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
