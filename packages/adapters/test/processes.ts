import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free loopback TCP port (for servers that cannot bind port 0 and report it). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** A child process started for a test, with its temp dir; `stop()` kills it and removes the dir. */
export interface TestProcess {
  proc: ChildProcess;
  port: number;
  dir: string;
  output: () => string;
  /** Kills the process (SIGKILL by default, as a crash) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Spawns a process and resolves once `ready` matches its output (stdout or stderr). Rejects with
 * the output if it exits first or is not ready within `timeoutMs`.
 */
export async function startProcess(
  command: string,
  args: (dir: string, port: number) => string[],
  ready: RegExp,
  options: { port?: number; dir?: string; timeoutMs?: number } = {},
): Promise<TestProcess> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "meshlet-adapters-")));
  const port = options.port ?? (await freePort());
  const proc = spawn(command, args(dir, port), { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = once(proc, "exit");
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };
  const handle: TestProcess = {
    proc,
    port,
    dir,
    output: () => out,
    kill,
    async stop() {
      await kill("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void handle.stop();
      reject(new Error(`${command} not ready within ${options.timeoutMs ?? 30_000} ms:\n${out}`));
    }, options.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before it was ready:\n${out}`));
    });
    proc.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return handle;
}

/** Starts Debian's `redis-server` on loopback with no persistence, in a temp dir. */
export function startRedis(options: { port?: number; dir?: string } = {}): Promise<TestProcess> {
  return startProcess(
    "redis-server",
    (dir, port) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    /Ready to accept connections/,
    options,
  );
}

/**
 * Starts Debian's `prometheus` on loopback, scraping `targets` every second, with its TSDB in a
 * temp dir.
 */
export async function startPrometheus(targets: string[]): Promise<TestProcess> {
  const { writeFile } = await import("node:fs/promises");
  const dir = await mkdtemp(join(tmpdir(), "meshlet-prometheus-"));
  const config = [
    "global:",
    "  scrape_interval: 1s",
    "  evaluation_interval: 1s",
    "scrape_configs:",
    "  - job_name: meshlet",
    "    static_configs:",
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
  await writeFile(join(dir, "prometheus.yml"), config);
  return startProcess(
    "prometheus",
    (d, port) => [
      `--config.file=${join(d, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(d, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-lifecycle",
    ],
    /Server is ready to receive web requests/,
    { dir, timeoutMs: 60_000 },
  );
}
