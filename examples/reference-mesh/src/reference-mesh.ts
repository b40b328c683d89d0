import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type ControlPlane, type ControlPlaneEvent, startControlPlane } from "@meshlet/cli/control-plane";
import { filter, firstValueFrom, scan, timeout } from "rxjs";
import { NAMESPACE, placeWorkloads, platformYaml, type Workload } from "./platform.js";
import { parsePrometheusText } from "./prometheus-text.js";
import type { Scrape } from "./traffic.js";

// The reference mesh on one machine: meshlet's control plane in this process (startControlPlane,
// what `meshlet serve` runs), the platform YAML it reads next to the user's config directory, and
// one process per Bookinfo workload plus the load generator, each bootstrapped with the files the
// control plane wrote for its pod.

const WORKLOAD_JS = fileURLToPath(new URL("./workload.js", import.meta.url));

/** Options of {@link ReferenceMesh.start}. */
export interface ReferenceMeshOptions {
  /** The watched config directory (the user's YAML). */
  readonly configDir: string;
  /** Where the CA root, workload files, platform.yaml and logs go. */
  readonly stateDir: string;
  /** Load generator requests per second. */
  readonly rps: number;
  /** Progress while starting. */
  readonly progress?: (line: string) => void;
  /** How long to wait for each start step (default 90 s). */
  readonly stepTimeoutMs?: number;
}

/** A workload process. */
export interface RunningWorkload {
  readonly workload: Workload;
  readonly process: ChildProcess;
  readonly log: string;
  /** Set when it exited on its own. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

/** A running reference mesh (see the module comment). */
export class ReferenceMesh {
  readonly #stopping = { value: false };

  private constructor(
    readonly plane: ControlPlane,
    readonly workloads: readonly RunningWorkload[],
    readonly platformFile: string,
    readonly options: ReferenceMeshOptions,
  ) {}

  /** Starts the control plane, then the servers, then the load generator once the servers serve. */
  static async start(options: ReferenceMeshOptions): Promise<ReferenceMesh> {
    const progress = options.progress ?? (() => undefined);
    const stepTimeout = options.stepTimeoutMs ?? 90_000;
    await mkdir(join(options.stateDir, "logs"), { recursive: true });
    const placed = await placeWorkloads();
    const platformFile = join(options.stateDir, "platform.yaml");
    await writeFile(platformFile, platformYaml(placed));

    progress("starting the control plane (xDS, CA, rate limit) …");
    const plane = await startControlPlane({
      config: { paths: [options.configDir, platformFile] },
      listen: "127.0.0.1:0",
      metrics: "127.0.0.1:0",
      stateDir: options.stateDir,
      // The workloads run grpc-js-xds with GRPC_XDS_EXPERIMENTAL_RBAC=true: AuthorizationPolicies
      // become RBAC filters on their server listeners (docs/mesh.md, support matrix).
      bootstrap: { rbac: true },
    });
    const started: RunningWorkload[] = [];
    const mesh = new ReferenceMesh(plane, started, platformFile, options);
    try {
      // Each pod's certificate files must exist before its gRPC library reads them.
      const pods = new Set(placed.map((w) => w.pod));
      progress(`issuing SPIFFE certificates for ${pods.size} workloads …`);
      await firstValueFrom(
        plane.events$.pipe(
          filter(
            (e): e is Extract<ControlPlaneEvent, { type: "workload-certificate" }> =>
              e.type === "workload-certificate" && e.workload.namespace === NAMESPACE,
          ),
          scan((seen, e) => seen.add(e.workload.name), new Set<string>()),
          filter((seen) => [...pods].every((p) => seen.has(p))),
          timeout(stepTimeout),
        ),
      );
      const servers = placed.filter((w) => w.server);
      progress(
        `starting ${servers.length} proxyless gRPC servers; each serves once its listener arrives over xDS …`,
      );
      const serving = servers.map((w) => {
        const running = mesh.#spawn(w, {});
        started.push(running.running);
        return running.serving;
      });
      await Promise.all(serving);
      const loadgen = placed.find((w) => !w.server);
      if (loadgen !== undefined) {
        progress(`starting the load generator (${options.rps} requests/s to productpage) …`);
        const running = mesh.#spawn(loadgen, { LOADGEN_RPS: String(options.rps) });
        started.push(running.running);
        await running.serving;
      }
      return mesh;
    } catch (error) {
      await mesh.close();
      throw error;
    }
  }

  #spawn(
    workload: Workload,
    env: Record<string, string>,
  ): { running: RunningWorkload; serving: Promise<void> } {
    const files = this.plane.workloads.files(NAMESPACE, workload.pod);
    if (files === undefined) throw new Error(`the control plane wrote no bootstrap for ${workload.pod}`);
    const log = join(this.options.stateDir, "logs", `${workload.pod}.log`);
    const fd = openSync(log, "a");
    const child = spawn(process.execPath, [WORKLOAD_JS], {
      env: {
        ...process.env,
        GRPC_XDS_BOOTSTRAP: files.bootstrap,
        GRPC_XDS_EXPERIMENTAL_RBAC: "true",
        WORKLOAD: JSON.stringify(workload),
        ...(workload.app === "productpage" ? { RATELIMIT_SERVICE: this.plane.addresses.grpc } : {}),
        ...env,
      },
      stdio: ["pipe", "pipe", fd],
    });
    closeSync(fd);
    const running: RunningWorkload = { workload, process: child, log };
    const serving = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          void this.#explainStall(running).then((why) =>
            reject(new Error(`${workload.pod} did not start serving: ${why}`)),
          ),
        this.options.stepTimeoutMs ?? 90_000,
      );
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        try {
          const event = JSON.parse(line) as { event?: string };
          if (event.event === "serving" || event.event === "started") {
            clearTimeout(timer);
            resolve();
          }
        } catch {
          // Not a status line.
        }
      });
      child.on("exit", (code, signal) => {
        running.exit = { code, signal };
        clearTimeout(timer);
        if (!this.#stopping.value)
          void this.#explainStall(running).then((why) => reject(new Error(`${workload.pod} exited: ${why}`)));
      });
    });
    // A rejection nobody awaits (a crash after start) is reported by the view, not as unhandled.
    serving.catch(() => undefined);
    return { running, serving };
  }

  async #explainStall(running: RunningWorkload): Promise<string> {
    const tail = (await readFile(running.log, "utf8").catch(() => ""))
      .trim()
      .split("\n")
      .slice(-5)
      .join("\n    ");
    const status = (await firstValueFrom(this.plane.controller.status$)).proxies.find((p) =>
      p.id.includes(`~${running.workload.pod}.`),
    );
    const proxy =
      status === undefined
        ? "it never connected to the control plane"
        : `proxy ${status.id}: ${status.error ?? "no error"}${status.warnings.length > 0 ? `; ${status.warnings.map((w) => w.message).join("; ")}` : ""}`;
    return `${running.exit ? `exit code ${running.exit.code ?? running.exit.signal}; ` : ""}${proxy}; log ${running.log}${tail ? `:\n    ${tail}` : ""}`;
  }

  /** Scrapes every workload's /metrics (a workload that does not answer is left out). */
  async scrape(): Promise<Scrape> {
    const texts = await Promise.all(
      this.workloads.map(async (w) => {
        try {
          const res = await fetch(`http://${w.workload.ip}:${w.workload.metricsPort}/metrics`, {
            signal: AbortSignal.timeout(2000),
          });
          return res.ok ? await res.text() : "";
        } catch {
          return "";
        }
      }),
    );
    return { at: Date.now(), samples: texts.flatMap((t) => parsePrometheusText(t)) };
  }

  /** Stops the workloads (closing their stdin), then the control plane. */
  async close(): Promise<void> {
    if (this.#stopping.value) return;
    this.#stopping.value = true;
    await Promise.all(
      this.workloads.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.process.exitCode !== null || w.process.signalCode !== null) {
              resolve();
              return;
            }
            const kill = setTimeout(() => w.process.kill("SIGKILL"), 3000);
            w.process.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            w.process.stdin?.end();
          }),
      ),
    );
    await this.plane.close();
  }
}
