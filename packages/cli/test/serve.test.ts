import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "@meshlet/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  eventually,
  freePort,
  type MeshClient,
  type RpcResult,
  startBackend,
  startClient,
  tally,
} from "../../mesh/test/support/mesh-fixture.js";

// `meshlet serve` as a user runs it: the real binary, a directory of Kubernetes YAML (a Service, its
// pods, client pods), real proxyless clients (grpc-js-xds and gRPC C-core) bootstrapped with the
// files serve wrote for their pods, edits to the YAML while traffic runs, a broken file, metrics,
// and a graceful stop. The echo pods are 127.0.0.2 and 127.0.0.3 (Linux routes all of 127/8 to
// loopback), both on one port, as two pods of a Service are.

const launcher = fileURLToPath(new URL("../bin/meshlet.mjs", import.meta.url));
const FQDN = "echo.test.svc.cluster.local";

interface Serve {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves once stderr (or stdout) shows a line matching `re` after `from` characters. */
  waitFor(re: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<string>;
  readonly exited: Promise<number | null>;
}

function startServe(args: string[], cwd: string): Serve {
  const child = spawn(process.execPath, [launcher, "serve", ...args], {
    cwd,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  process.on("exit", () => child.kill("SIGKILL"));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, stream = "stderr", timeoutMs = 30_000) {
      return eventually(() => {
        const m = re.exec(stream === "stdout" ? out : err);
        if (m === null)
          throw new Error(
            `no ${re} in serve's ${stream}:\n${(stream === "stdout" ? out : err).slice(-3000)}`,
          );
        return m[0];
      }, timeoutMs);
    },
  };
}

const service = (port: number) => `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: test }
spec:
  clusterIP: 10.96.0.10
  selector: { app: echo }
  ports: [{ name: grpc, port: 7070, targetPort: ${port} }]
---
apiVersion: v1
kind: Pod
metadata: { name: echo-v1, namespace: test, labels: { app: echo, version: v1 } }
spec: { serviceAccountName: echo, containers: [{ name: app, ports: [{ containerPort: ${port} }] }] }
status: { podIP: 127.0.0.2, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-v2, namespace: test, labels: { app: echo, version: v2 } }
spec: { serviceAccountName: echo, containers: [{ name: app, ports: [{ containerPort: ${port} }] }] }
status: { podIP: 127.0.0.3, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: client-js, namespace: test, labels: { app: client } }
spec: { serviceAccountName: client, containers: [{ name: app }] }
status: { podIP: 127.0.0.1, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: client-c, namespace: test, labels: { app: client } }
spec: { serviceAccountName: client, containers: [{ name: app }] }
status: { podIP: 127.0.0.1, phase: Running }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: test }
spec:
  host: echo
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

const routeTo = (subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: test }
spec:
  hosts: [echo]
  http: [{ route: [{ destination: { host: echo, subset: ${subset} } }] }]
`;

let dir: string;
let serve: Serve;
let backends: Backend[] = [];
let clients: MeshClient[] = [];
let address: string;
let metricsUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-serve-"));
  const port = await freePort("127.0.0.2");
  backends = await Promise.all([
    startBackend("v1", `127.0.0.2:${port}`),
    startBackend("v2", `127.0.0.3:${port}`),
  ]);
  await writeFile(join(dir, "echo.yaml"), service(port));
  await writeFile(join(dir, "route.yaml"), routeTo("v1"));
  serve = startServe(
    [
      "--config",
      ".",
      "--listen",
      "127.0.0.1:0",
      "--metrics",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      "--state-dir",
      join(dir, ".state"),
      "--bootstrap-for",
      "client-js.test",
    ],
    dir,
  );
  await serve.waitFor(/^Ready\./m, "stdout", 60_000);
  address = (/plaintext on (127\.0\.0\.1:\d+)/.exec(serve.stdout()) as RegExpExecArray)[1] as string;
  metricsUrl = (/(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(serve.stdout()) as RegExpExecArray)[1] as string;
  const bootstrap = (pod: string) => join(dir, ".state", "workloads", "test", pod, "grpc-bootstrap.json");
  clients = await Promise.all([
    startClient("grpc-js", {
      file: bootstrap("client-js"),
      nodeId: "sidecar~127.0.0.1~client-js.test~test.svc.cluster.local",
    }),
    startClient("c-core", {
      file: bootstrap("client-c"),
      nodeId: "sidecar~127.0.0.1~client-c.test~test.svc.cluster.local",
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (serve && serve.child.exitCode === null) {
    serve.child.kill("SIGKILL");
    await serve.exited;
  }
  await Promise.allSettled(backends.map((b) => b.close()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const target = (c: MeshClient) => (c.kind === "grpc-js" ? `xds:///${FQDN}:7070` : "xds:///echo:7070");
const onBothClients = (check: (c: MeshClient) => Promise<void>) =>
  Promise.all(
    clients.map((c) =>
      eventually(async () => {
        try {
          await check(c);
        } catch (error) {
          throw new Error(`${c.kind}: ${String(error)}\nserve stderr:\n${serve.stderr().slice(-2000)}`, {
            cause: error,
          });
        }
      }),
    ),
  );

describe("meshlet serve", () => {
  it("prints where it listens and the bootstrap it wrote, with the workload's certificate files", async () => {
    expect(serve.stdout()).toMatch(/xDS \(ADS, SotW, Delta\)\s+127\.0\.0\.1:\d+/);
    expect(serve.stdout()).toMatch(
      /Istio CA \(istio\.v1\.auth\.IstioCertificateService\)\s+127\.0\.0\.1:\d+/,
    );
    const workload = join(dir, ".state", "workloads", "test", "echo-v1");
    const printed = serve.stdout().slice(serve.stdout().indexOf("gRPC bootstrap for client-js.test"));
    const json = JSON.parse(printed.slice(printed.indexOf("{"), printed.lastIndexOf("}") + 1));
    // Istio's bootstrap shape (istio/istio pkg/istio-agent/testdata/grpc-bootstrap.json).
    expect(json).toMatchObject({
      xds_servers: [
        { server_uri: address, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] },
      ],
      node: {
        id: "sidecar~127.0.0.1~client-js.test~test.svc.cluster.local",
        metadata: { GENERATOR: "grpc", NAMESPACE: "test" },
        locality: {},
      },
      certificate_providers: {
        default: { plugin_name: "file_watcher", config: { refresh_interval: "900s" } },
      },
      server_listener_resource_name_template: "xds.istio.io/grpc/lds/inbound/%s",
    });
    const chain = await readFile(join(workload, "cert-chain.pem"), "utf8");
    const leaf = new X509Certificate(chain);
    expect(leaf.subjectAltName).toBe("URI:spiffe://cluster.local/ns/test/sa/echo");
    const root = await readFile(join(workload, "root-cert.pem"), "utf8");
    expect(leaf.verify(new X509Certificate(root).publicKey)).toBe(true);
    expect((await stat(join(workload, "key.pem"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(workload, "sds.sock"))).isSocket()).toBe(true);
  });

  it("routes real proxyless clients bootstrapped with serve's files", async () => {
    await onBothClients(async (c) => expect(tally(await c.call(target(c), { count: 6 }))).toEqual({ v1: 6 }));
  });

  it("serves the admin API on --admin: proxy-status shows both clients SYNCED", async () => {
    const adminUrl = (
      /admin API \(meshlet\.admin\.v1\.MeshAdmin\)\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(
        serve.stdout(),
      ) as RegExpExecArray
    )[1] as string;
    await onBothClients(async (c) => {
      await c.call(target(c));
      const out: string[] = [];
      const code = await main(["proxy-status", "--admin", adminUrl, c.nodeId.split("~")[2] as string], {
        out: (l) => out.push(l),
        err: () => {},
        env: {},
        signal: new AbortController().signal,
      });
      expect(code).toBe(0);
      expect(out.join("\n")).toMatch(/CDS\s+SYNCED/);
    });
    // Its console page, served by the same listener.
    expect((await fetch(`${adminUrl}/`)).status).toBe(200);
  });

  it("follows a YAML edit while traffic runs, without failing an RPC", async () => {
    const results: RpcResult[] = [];
    const traffic = (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const c = clients[0] as MeshClient;
        const batch = await c.call(target(c), { count: 20 });
        results.push(...batch);
        if (batch.every((r) => r.ok && r.backend === "v2")) return;
        if (Date.now() > deadline)
          throw new Error(`traffic never moved to v2: ${JSON.stringify(tally(batch))}`);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, "route.yaml"), routeTo("v2"));
    await traffic;
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(tally(results).v1).toBeGreaterThan(0);
    await onBothClients(async (c) => expect(tally(await c.call(target(c), { count: 4 }))).toEqual({ v2: 4 }));
  });

  it("keeps serving the last good config when a file breaks, and says where", async () => {
    await writeFile(join(dir, "route.yaml"), `${routeTo("v1")}  oops: [unclosed\n`);
    const line = await serve.waitFor(/config: route\.yaml:\d+:\d+ \S+ error: [^\n]+/);
    // The flow sequence opened on line 7 is still open at the end of the file, line 8.
    expect(line).toMatch(/route\.yaml:[78]:\d+ MC0001 error:/);
    // The broken edit is not applied: still v2.
    await onBothClients(async (c) => expect(tally(await c.call(target(c), { count: 4 }))).toEqual({ v2: 4 }));
    await writeFile(join(dir, "route.yaml"), routeTo("v1"));
    await serve.waitFor(/config: every file is valid again/);
    await onBothClients(async (c) => expect(tally(await c.call(target(c), { count: 4 }))).toEqual({ v1: 4 }));
  });

  it("exports control-plane metrics for Prometheus", async () => {
    const text = await (await fetch(metricsUrl)).text();
    // istiod's names and labels (istio/istio pilot/pkg/xds/monitoring.go): streams by the proxy's
    // ISTIO_VERSION, pushes by the lower-case short type.
    expect(text).toMatch(/^pilot_xds\{version="[^"]*"\} [2-9]/m);
    expect(text).toMatch(/^pilot_xds_pushes\{type="lds"\} \d+/m);
    expect(text).toMatch(/^meshlet_pushes_total\{cause="config"\} \d+/m);
  });

  it("stops gracefully on SIGTERM and keeps its CA root across a restart", async () => {
    const root = await readFile(join(dir, ".state", "workloads", "test", "echo-v1", "root-cert.pem"), "utf8");
    serve.child.kill("SIGTERM");
    expect(await serve.exited).toBe(0);
    expect(serve.stderr()).toContain("meshlet serve: stopping");
    const again = startServe(
      [
        "--config",
        ".",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "off",
        "--admin",
        "off",
        "--state-dir",
        join(dir, ".state"),
      ],
      dir,
    );
    try {
      await again.waitFor(/^Ready\./m, "stdout", 60_000);
      await eventually(async () =>
        expect(
          await readFile(join(dir, ".state", "workloads", "test", "echo-v1", "root-cert.pem"), "utf8"),
        ).toBe(root),
      );
    } finally {
      again.child.kill("SIGTERM");
      expect(await again.exited).toBe(0);
    }
  });
});
