import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";

// A child process driven by JSON lines (one command per stdin line, one reply per stdout line), as
// the real gRPC clients and servers of these tests are. Every process is killed when the test
// process exits, whatever happened.

const live = new Set<ChildProcessWithoutNullStreams>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** A running JSON-lines process. */
export interface LineProcess {
  readonly name: string;
  /** Sends a command and resolves with its reply (rejects on an `error` reply, a timeout or an exit). */
  send(command: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>>;
  /** Ends stdin, waits for the exit (kills after 5 s). Idempotent. */
  close(): Promise<void>;
  /** Its stderr so far (for failure messages). */
  stderr(): string;
}

/** Spawns a process and waits for it to print `{"ready":true}`. */
export async function startLineProcess(options: {
  name: string;
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<LineProcess> {
  const child = spawn(options.command, options.args, {
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-100_000);
  });
  child.stdin.on("error", () => {});
  const exited = new Promise<string>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve(signal ? `signal ${signal}` : `code ${code}`);
    }),
  );
  const pending = new Map<
    number,
    { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  let ready: (() => void) | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      stderr += `[stdout] ${line}\n`;
      return;
    }
    if (message.ready === true) {
      ready?.();
      return;
    }
    const waiting = typeof message.id === "number" ? pending.get(message.id) : undefined;
    if (waiting === undefined) return;
    pending.delete(message.id as number);
    if (typeof message.error === "string") waiting.reject(new Error(`${options.name}: ${message.error}`));
    else waiting.resolve(message);
  });
  const tail = () => stderr.slice(-3000);
  void exited.then((status) => {
    for (const [id, w] of pending) {
      pending.delete(id);
      w.reject(new Error(`${options.name} exited (${status}); stderr:\n${tail()}`));
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${options.name} not ready; stderr:\n${tail()}`)),
        options.startTimeoutMs ?? 30_000,
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
  let nextId = 1;
  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    send(command, timeoutMs) {
      return new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          reject(
            new Error(
              `${options.name} is not running (exit ${child.exitCode ?? child.signalCode}); stderr:\n${tail()}`,
            ),
          );
          return;
        }
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${options.name} did not answer ${JSON.stringify(command)} in ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
      });
    },
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.stdin.end();
          const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(kill);
        }
        lines.close();
      })();
      return closing;
    },
    stderr: () => stderr,
  };
}
