// The reference mesh, locally: `npm start` at the repository root.
//
//   meshlet's control plane (startControlPlane — xDS, the Istio CA, rate limiting) in this process,
//   Bookinfo's four services as proxyless gRPC workloads (grpc-js + grpc-js-xds), one process per
//   pod, with mTLS identities from meshlet's CA and Istio's metrics, a load generator, and a live
//   terminal view that follows the YAML in config/ as you edit it (or press a scenario key).
//
// Options: --scenario <name>, --duration <s>, --rps <n>, --plain, --interval <s>, --window <s>,
// --config <dir>, --state-dir <dir>, --smoke, --help. See examples/reference-mesh/README.md.
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ControlPlaneEvent } from "@meshlet/cli/control-plane";
import { formatDiagnostic } from "@meshlet/config";
import { TRUST_DOMAIN } from "./platform.js";
import { ReferenceMesh } from "./reference-mesh.js";
import { applyScenario, currentScenario, listScenarios, SCENARIO_FILE, type Scenario } from "./scenarios.js";
import { SMOKE_STEPS } from "./smoke.js";
import { type Scrape, trafficWindow } from "./traffic.js";
import { ansi, identityLine, renderPlain, renderScreen } from "./view.js";

const EXAMPLE_DIR = fileURLToPath(new URL("..", import.meta.url));

const USAGE = `Usage: npm start -- [options]      (in examples/reference-mesh: npm start -- [options])

Runs the reference mesh on this machine: meshlet's control plane, Bookinfo's services as proxyless
gRPC workloads with mTLS, a load generator, and a live view of the traffic that follows the YAML in
the config directory.

Options:
  --scenario <name>   Write scenarios/<name>.yaml to <config>/${SCENARIO_FILE} before starting.
  --duration <s>      Stop after that many seconds (default: run until Ctrl-C or q).
  --rps <n>           Load generator requests per second (default 10).
  --plain             Plain lines instead of the full-screen view (the default when stdout is
                      not a terminal).
  --interval <s>      Seconds between plain blocks (default 5).
  --window <s>        Seconds of traffic the numbers cover (default 5).
  --config <dir>      The watched config directory (default examples/reference-mesh/config).
  --state-dir <dir>   CA root, workload certificates, platform.yaml, logs
                      (default examples/reference-mesh/.meshlet).
  --smoke             Run a few seconds in temporary directories, walk through two scenarios and
                      exit 0 only if the traffic moved as expected.
  -h, --help          This text.`;

interface Options {
  scenario?: string;
  duration?: number;
  rps: number;
  plain: boolean;
  interval: number;
  window: number;
  configDir: string;
  stateDir: string;
  smoke: boolean;
}

function parseArgs(argv: readonly string[]): Options | string {
  const o: Options = {
    rps: 10,
    plain: !process.stdout.isTTY,
    interval: 5,
    window: 5,
    configDir: join(EXAMPLE_DIR, "config"),
    stateDir: join(EXAMPLE_DIR, ".meshlet"),
    smoke: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} takes a positive number`);
      return v;
    };
    try {
      switch (flag) {
        case "-h":
        case "--help":
          return USAGE;
        case "--scenario":
          o.scenario = value();
          break;
        case "--duration":
          o.duration = number();
          break;
        case "--rps":
          o.rps = number();
          break;
        case "--interval":
          o.interval = number();
          break;
        case "--window":
          o.window = number();
          break;
        case "--plain":
          o.plain = true;
          break;
        case "--config":
          o.configDir = resolve(value());
          break;
        case "--state-dir":
          o.stateDir = resolve(value());
          break;
        case "--smoke":
          o.smoke = true;
          o.plain = true;
          break;
        default:
          throw new Error(`unknown option ${arg}`);
      }
    } catch (error) {
      return `reference mesh: ${(error as Error).message}\n\n${USAGE}`;
    }
  }
  return o;
}

const clock = () => new Date().toTimeString().slice(0, 8);

/** A path relative to the working directory when it is inside it, else absolute. */
const shown = (path: string) => {
  const r = relative(process.cwd(), path);
  return r === "" ? "." : r.startsWith("..") ? path : r;
};

/** One line per control-plane event worth showing. */
function describeEvent(e: ControlPlaneEvent): string | undefined {
  switch (e.type) {
    case "config-error": {
      const d = e.diagnostic;
      return `config: ${formatDiagnostic(d.file !== undefined ? { ...d, file: shown(d.file) } : d)}`;
    }
    case "config-valid":
      return "config: every file is valid again";
    case "push":
      if (e.push.proxies.length === 0 || e.push.cause !== "config") return undefined;
      return `push: ${e.push.configs.slice(0, 3).join(", ")}${e.push.configs.length > 3 ? ", …" : ""} → ${e.push.proxies.length} proxies, ${e.push.resourcesChanged} resources changed`;
    case "rate-limits":
      return `rate limits: ${e.domains.length > 0 ? `domain ${e.domains.join(", ")} from ${e.sources.join(", ")}` : "none configured"}`;
    case "error":
      return `error: ${e.message}`;
    default:
      return undefined;
  }
}

async function run(o: Options): Promise<number> {
  const scenarios = await listScenarios(join(EXAMPLE_DIR, "scenarios"));
  const byName = (name: string): Scenario => {
    const s = scenarios.find((x) => x.name === name);
    if (s === undefined)
      throw new Error(`no scenario "${name}"; there are: ${scenarios.map((x) => x.name).join(", ")}`);
    return s;
  };
  const cleanup: string[] = [];
  if (o.smoke) {
    // The smoke run never touches the user's config or state: temporary copies.
    const tmp = await mkdtemp(join(tmpdir(), "meshlet-reference-mesh-"));
    cleanup.push(tmp);
    const config = join(tmp, "config");
    await cp(o.configDir, config, {
      recursive: true,
      filter: (src) => !src.endsWith(SCENARIO_FILE),
    });
    o.configDir = config;
    o.stateDir = join(tmp, "state");
  }
  if (o.scenario !== undefined) await applyScenario(byName(o.scenario), o.configDir);
  else if (!(await readdir(o.configDir)).includes(SCENARIO_FILE))
    await applyScenario(byName("default"), o.configDir);

  const out = (line: string) => process.stdout.write(`${line}\n`);
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  out(`reference mesh: config ${shown(o.configDir)}, state ${shown(o.stateDir)}`);
  const mesh = await ReferenceMesh.start({
    configDir: o.configDir,
    stateDir: o.stateDir,
    rps: o.rps,
    progress: (line) => out(`reference mesh: ${line}`),
  });
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  const events: string[] = [];
  let proxies = 0;
  let rateLimited = false;
  let scenario = await currentScenario(scenarios, o.configDir);
  const subscriptions = [
    mesh.plane.events$.subscribe((e) => {
      if (e.type === "rate-limits") {
        // Only changes are news: "none" at start is not.
        if (e.domains.length === 0 && !rateLimited) return;
        rateLimited = e.domains.length > 0;
      }
      const line = describeEvent(e);
      if (line === undefined) return;
      events.push(`${clock()} ${line}`);
      if (events.length > 50) events.splice(0, events.length - 50);
      if (o.plain) out(`[${String(Math.round(elapsed())).padStart(4)}s] control plane: ${line}`);
    }),
    mesh.plane.controller.status$.subscribe((s) => {
      proxies = s.proxies.length;
    }),
  ];
  const problems = () =>
    mesh.workloads
      .filter((w) => w.exit !== undefined)
      .map((w) => `${w.workload.pod} exited (${w.exit?.code ?? w.exit?.signal}); log ${w.log}`);

  out(
    `reference mesh: control plane on ${mesh.plane.addresses.grpc}, metrics ${mesh.plane.addresses.metrics ?? "off"}`,
  );
  for (const w of mesh.workloads)
    out(
      `reference mesh:   ${w.workload.pod.padEnd(16)} ${w.workload.ip}:${w.workload.port}  metrics http://${w.workload.ip}:${w.workload.metricsPort}/metrics`,
    );
  out(
    `reference mesh: platform (Services, Pods) in ${shown(mesh.platformFile)}; workload logs in ${shown(join(o.stateDir, "logs"))}`,
  );

  const scrapes: Scrape[] = [];
  const sample = async () => {
    scrapes.push(await mesh.scrape());
    const horizon = Date.now() - 120_000;
    while ((scrapes[0]?.at ?? Number.POSITIVE_INFINITY) < horizon) scrapes.shift();
  };

  const finish = async (code: number) => {
    if (stopping) return code;
    stopping = true;
    for (const t of timers) clearInterval(t);
    for (const s of subscriptions) s.unsubscribe();
    await mesh.close();
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
    return code;
  };

  if (o.smoke) {
    let ok = true;
    for (const step of SMOKE_STEPS) {
      await applyScenario(byName(step.scenario), o.configDir);
      const deadline = Date.now() + 90_000;
      let why: string | undefined = "no traffic yet";
      while (Date.now() < deadline) {
        await sample();
        why = step.check(trafficWindow(scrapes, 3));
        if (why === undefined) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      if (why === undefined)
        out(`smoke: ok   ${step.name} (scenario ${step.scenario}, ${Math.round(elapsed())} s)`);
      else {
        ok = false;
        out(`smoke: FAIL ${step.name} (scenario ${step.scenario}): ${why}`);
        for (const line of renderPlain(trafficWindow(scrapes, 3), elapsed())) out(line);
        for (const p of problems()) out(`smoke: ${p}`);
        break;
      }
    }
    for (const i of trafficWindow(scrapes, 30).identities) out(`smoke: identity ${identityLine(i)}`);
    return finish(ok ? 0 : 1);
  }

  return new Promise<number>((resolveExit) => {
    const stop = (code: number) => void finish(code).then(resolveExit);
    process.once("SIGINT", () => stop(0));
    process.once("SIGTERM", () => stop(0));
    if (o.duration !== undefined) timers.push(setTimeout(() => stop(0), o.duration * 1000));

    if (o.plain) {
      const seen = new Set<string>();
      timers.push(setInterval(() => void sample(), 1000));
      timers.push(
        setInterval(() => {
          const w = trafficWindow(scrapes, o.window);
          for (const line of renderPlain(w, elapsed())) out(line);
          for (const i of w.identities) {
            const line = identityLine(i);
            if (!seen.has(line)) out(`[${String(Math.round(elapsed())).padStart(4)}s]   identity ${line}`);
            seen.add(line);
          }
          for (const p of problems()) out(`[${String(Math.round(elapsed())).padStart(4)}s] ${p}`);
        }, o.interval * 1000),
      );
      return;
    }

    const keys = scenarios.slice(0, 10).map((s, i) => ({ key: String(i), name: s.name, scenario: s }));
    const draw = () => {
      const state = {
        controlPlane: mesh.plane.addresses.grpc,
        configDir: shown(o.configDir),
        spiffePrefix: `spiffe://${TRUST_DOMAIN}/`,
        proxies,
        scenario,
        scenarios: keys,
        events,
        problems: problems(),
        ...(mesh.plane.addresses.metrics !== undefined ? { metricsUrl: mesh.plane.addresses.metrics } : {}),
      };
      const screen = renderScreen(trafficWindow(scrapes, o.window), state, process.stdout.columns ?? 100);
      process.stdout.write(`${ansi.home}${screen.join(`${ansi.clearLine}\n`)}${ansi.clearLine}`);
    };
    process.stdout.write(ansi.hideCursor);
    const restore = () => process.stdout.write(`${ansi.showCursor}\n`);
    process.once("exit", restore);
    timers.push(
      setInterval(() => {
        void sample().then(async () => {
          scenario = await currentScenario(scenarios, o.configDir);
          if (!stopping) draw();
        });
      }, 1000),
    );
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.resume();
      process.stdin.on("data", (data: Buffer) => {
        const key = data.toString("utf8");
        if (key === "q" || key === "\u0003") {
          process.stdin.setRawMode(false);
          process.stdin.pause();
          stop(0);
          return;
        }
        const chosen = keys.find((k) => k.key === key);
        if (chosen !== undefined) {
          void applyScenario(chosen.scenario, o.configDir).then(() => {
            events.push(`${clock()} scenario ${chosen.name} written to ${SCENARIO_FILE}`);
            scenario = chosen.name;
          });
        }
      });
    }
  }).finally(() => {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  });
}

const parsed = parseArgs(process.argv.slice(2));
if (typeof parsed === "string") {
  const help = parsed === USAGE;
  (help ? process.stdout : process.stderr).write(`${parsed}\n`);
  process.exitCode = help ? 0 : 2;
} else {
  run(parsed).then(
    (code) => {
      process.exitCode = code;
      // Handles the gRPC libraries keep open must not hold the process after a clean stop.
      setTimeout(() => process.exit(code), 500).unref();
    },
    (error: unknown) => {
      process.stderr.write(`reference mesh: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
