import { main } from "@meshlet/cli";
import { TypeUrl, testing } from "@meshlet/xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminPlane, bookinfoFiles, startAdminPlane } from "../../admin/test/support/admin-plane.js";
import {
  type Backend,
  eventually,
  type MeshClient,
  startBackend,
  startClient,
} from "../../mesh/test/support/mesh-fixture.js";

// `meshlet proxy-status`, `proxy-config` and `explain --admin` against a running control plane's
// admin API (token required), with a real proxyless client (@grpc/grpc-js-xds) and scripted Envoy
// nodes. Column names and status words are istioctl's (istio/istio
// istioctl/pkg/writer/pilot/status.go, istioctl/pkg/writer/envoy/configdump/*.go and testdata).

const TOKEN = "cli-test-token-0123456789abcdef";
const FQDN = "echo.test.svc.cluster.local";
const GATEWAY_ID = "router~10.244.2.10~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwCLITESTKEYMATERIAL\n-----END PRIVATE KEY-----\n";

let plane: AdminPlane;
let backend: Backend;
let grpcClient: MeshClient;
const ads: testing.AdsClient[] = [];

async function meshlet(
  args: string[],
  env: Record<string, string | undefined> = { MESHLET_ADMIN_TOKEN: TOKEN },
) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    out: (l) => out.push(...l.split("\n")),
    err: (l) => err.push(...l.split("\n")),
    env: { MESHLET_ADMIN_URL: plane.server.url, ...env },
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

beforeAll(async () => {
  backend = await startBackend("v1");
  plane = await startAdminPlane(
    {
      ...(await bookinfoFiles("bookinfo.yaml", "ingressgateway.yaml", "destination-rule-all.yaml")),
      "echo.yaml": `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: test }
spec:
  hosts: [${FQDN}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${backend.port} } }]
`,
      "gateway.yaml": `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: secure-gateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      tls: { mode: SIMPLE, credentialName: bookinfo-credential }
      hosts: ["bookinfo.example.com"]
---
apiVersion: v1
kind: Secret
metadata: { name: bookinfo-credential, namespace: istio-system }
type: kubernetes.io/tls
data:
  tls.crt: ${b64("not a certificate")}
  tls.key: ${b64(KEY)}
`,
    },
    { listen: { token: TOKEN } },
  );
  grpcClient = await startClient("grpc-js", {
    serverUri: `127.0.0.1:${plane.xdsPort}`,
    podName: "client-js",
    namespace: "test",
    ip: "127.0.0.1",
    labels: { app: "client" },
  });
  await eventually(async () => {
    const [r] = await grpcClient.call(`xds:///${FQDN}:7070`, { timeoutMs: 3000 });
    expect(r?.ok).toBe(true);
  });
});

afterAll(async () => {
  for (const c of ads) c.close();
  await grpcClient?.close();
  await plane?.close();
  await backend?.close();
});

describe("meshlet proxy-status", () => {
  it("prints istioctl's columns and exits 0 while every proxy is SYNCED", async () => {
    const r = await eventually(async () => {
      const x = await meshlet(["proxy-status"]);
      expect(x.code).toBe(0);
      expect(x.out.join("\n")).toContain("SYNCED");
      return x;
    });
    expect(r.out[0]?.split(/\s{2,}/)).toEqual([
      "NAME",
      "CLUSTER",
      "CDS",
      "LDS",
      "EDS",
      "RDS",
      "ECDS",
      "ISTIOD",
      "VERSION",
    ]);
    const row = r.out.find((l) => l.startsWith(grpcClient.nodeId))?.split(/\s{2,}/);
    // Istio's grpc bootstrap carries CLUSTER_ID Kubernetes; VERSION is the client's user agent version.
    expect(row).toEqual([
      grpcClient.nodeId,
      "Kubernetes",
      "SYNCED",
      "SYNCED",
      "SYNCED",
      "SYNCED",
      "NOT SENT",
      "meshlet-test",
      expect.stringMatching(/^\d+\.\d+\.\d+$/),
    ]);
  });

  it("exits 1 and names the error when a proxy NACKs; -o json carries the same", async () => {
    const id = "sidecar~10.244.1.11~details-v1-0.default~default.svc.cluster.local";
    const sidecar = testing.AdsClient.connect({
      address: `127.0.0.1:${plane.xdsPort}`,
      node: {
        id,
        metadata: { NAMESPACE: "default", SERVICE_ACCOUNT: "bookinfo-details", CLUSTER_ID: "Kubernetes" },
      },
      autoAck: (res) =>
        res.typeUrl === TypeUrl.Listener ? "listener 0.0.0.0_9080: rejected for the test" : undefined,
    });
    ads.push(sidecar);
    sidecar.request({ typeUrl: TypeUrl.Listener });
    const r = await eventually(async () => {
      const x = await meshlet(["proxy-status"]);
      expect(x.code).toBe(1);
      return x;
    });
    expect(
      r.out
        .find((l) => l.startsWith(id))
        ?.split(/\s{2,}/)
        .slice(0, 7),
    ).toEqual([id, "Kubernetes", "NOT SENT", "ERROR", "NOT SENT", "NOT SENT", "NOT SENT"]);
    expect(r.err.join("\n")).toContain("LDS version");
    expect(r.err.join("\n")).toContain("rejected for the test");
    const one = await meshlet(["proxy-status", "details-v1-0.default", "-o", "json"]);
    expect(one.code).toBe(1);
    const json = JSON.parse(one.out.join("\n")) as {
      proxies: Array<{ types: Array<{ type: string; status: string; nackError?: string }> }>;
    };
    expect(json.proxies[0]?.types.find((t) => t.type === "LDS")).toMatchObject({
      status: "SYNC_STATUS_ERROR",
      nackError: "listener 0.0.0.0_9080: rejected for the test",
    });
    sidecar.close();
    await eventually(async () => expect((await meshlet(["proxy-status"])).code).toBe(0));
  });

  it("without the token, or with a wrong one: unauthenticated, exit 1, and says which variable to set", async () => {
    for (const env of [{}, { MESHLET_ADMIN_TOKEN: "wrong-token-wrong-token-wrong" }]) {
      const r = await meshlet(["proxy-status"], env);
      expect(r.code).toBe(1);
      expect(r.err.join("\n")).toContain("unauthenticated");
      expect(r.err.join("\n")).toContain("MESHLET_ADMIN_TOKEN");
    }
    const custom = await meshlet(["proxy-status", "--admin-token-env", "MY_TOKEN"], { MY_TOKEN: TOKEN });
    expect(custom.code).toBe(0);
  });

  it("exits 1 when nothing answers at --admin, and 2 on usage errors", async () => {
    const r = await meshlet(["proxy-status", "--admin", "http://127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.err.join("\n")).toContain("cannot reach the admin API at http://127.0.0.1:1");
    expect((await meshlet(["proxy-status", "-o", "xml"])).code).toBe(2);
  });
});

describe("meshlet proxy-config", () => {
  it("clusters, listeners, routes and endpoints of the proxyless client, with istioctl's columns", async () => {
    const clusters = await meshlet(["proxy-config", "clusters", "client-js.test"]);
    expect(clusters.code).toBe(0);
    expect(clusters.out.map((l) => l.split(/\s{2,}/))).toEqual([
      ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
      [FQDN, "7070", "-", "outbound", "EDS"],
    ]);
    const listeners = await meshlet(["proxy-config", "listeners", grpcClient.nodeId]);
    expect(listeners.out.map((l) => l.split(/\s{2,}/))).toEqual([
      ["NAME", "ADDRESSES", "PORT", "TYPE", "DESTINATION"],
      // A ServiceEntry without addresses: the API listener's address is 0.0.0.0 (Istio's grpcgen).
      [`${FQDN}:7070`, "0.0.0.0", "7070", "API", `Route: outbound|7070||${FQDN}`],
    ]);
    const routes = await meshlet(["proxy-config", "routes", "client-js.test"]);
    expect(routes.out[0]?.split(/\s{2,}/)).toEqual([
      "NAME",
      "VHOST NAME",
      "DOMAINS",
      "MATCH",
      "VIRTUAL SERVICE",
    ]);
    expect(routes.out[1]?.split(/\s{2,}/).slice(0, 2)).toEqual([`outbound|7070||${FQDN}`, `${FQDN}:7070`]);
    const endpoints = await meshlet(["proxy-config", "endpoints", "client-js.test"]);
    expect(endpoints.out.map((l) => l.split(/\s{2,}/))).toEqual([
      ["ENDPOINT", "STATUS", "LOCALITY", "CLUSTER"],
      [`127.0.0.1:${backend.port}`, "HEALTHY", `outbound|7070||${FQDN}`],
    ]);
    const json = await meshlet(["proxy-config", "clusters", "client-js.test", "-o", "json"]);
    expect((JSON.parse(json.out.join("\n")) as Array<{ name: string }>).map((c) => c.name)).toEqual([
      `outbound|7070||${FQDN}`,
    ]);
    const yaml = await meshlet(["proxy-config", "clusters", "client-js.test", "-o", "yaml"]);
    expect(yaml.out).toContain(`- name: outbound|7070||${FQDN}`);
  });

  it("secrets: listed with their type, the private key never printed", async () => {
    const gw = testing.AdsClient.connect({
      address: `127.0.0.1:${plane.xdsPort}`,
      node: { id: GATEWAY_ID, metadata: { NAMESPACE: "istio-system", LABELS: { istio: "ingressgateway" } } },
      autoAck: true,
    });
    ads.push(gw);
    gw.request({ typeUrl: TypeUrl.Secret, resourceNames: ["kubernetes://bookinfo-credential"] });
    await gw.next(TypeUrl.Secret);
    const table = await eventually(async () => {
      const r = await meshlet(["proxy-config", "secrets", "istio-ingressgateway-0.istio-system"]);
      expect(r.out).toHaveLength(2);
      return r;
    });
    expect(table.out[1]?.split(/\s{2,}/)).toEqual([
      "kubernetes://bookinfo-credential",
      "Cert Chain",
      "ACTIVE",
      "false",
    ]);
    for (const o of ["json", "yaml"]) {
      const r = await meshlet(["proxy-config", "secrets", "istio-ingressgateway-0.istio-system", "-o", o]);
      expect(r.out.join("\n")).not.toContain("CLITESTKEYMATERIAL");
      expect(r.out.join("\n")).not.toContain(b64(KEY).slice(0, 30));
      expect(r.out.join("\n")).toContain(b64("[redacted]"));
    }
  });

  it("exits 1 for a proxy that is not connected, 2 for an unknown config type", async () => {
    const r = await meshlet(["proxy-config", "clusters", "ghost-0.default"]);
    expect(r.code).toBe(1);
    expect(r.err.join("\n")).toContain('no connected proxy "ghost-0.default"');
    expect((await meshlet(["proxy-config", "bootstrap", "client-js.test"])).code).toBe(2);
  });
});

describe("meshlet explain --admin", () => {
  it("prints the walk the offline explain prints, against the config being served", async () => {
    const args = ["--proxy", "productpage-v1-0.default", "--to", "reviews:9080", "-H", "end-user: jason"];
    const live = await meshlet(["explain", "--admin", plane.server.url, ...args]);
    expect(live.code).toBe(0);
    const offline = await meshlet(["explain", "--config", plane.dir, ...args]);
    expect(offline.code).toBe(0);
    // Same steps; only the file paths differ (relative to the server's config dir vs. this cwd).
    const strip = (lines: string[]) =>
      lines.filter((l) => !l.includes("←") && !l.startsWith("(config version"));
    expect(strip(live.out)).toEqual(strip(offline.out));
    expect(live.out.at(-1)).toMatch(/^\(config version \d+, served by http:\/\/127\.0\.0\.1:\d+\)$/);
    expect(live.out.some((l) => l.includes("← Service default/reviews (bookinfo.yaml:"))).toBe(true);
    const json = await meshlet(["explain", "--admin", plane.server.url, ...args, "-o", "json"]);
    expect(JSON.parse(json.out.join("\n"))).toMatchObject({ outcome: { kind: "forwarded" } });
  });

  it("refuses --config with --admin, and a bad --protocol with exit 2", async () => {
    expect(
      (
        await meshlet([
          "explain",
          "--config",
          plane.dir,
          "--admin",
          plane.server.url,
          "--proxy",
          "x",
          "--to",
          "y:1",
        ])
      ).code,
    ).toBe(2);
    expect(
      (
        await meshlet([
          "explain",
          "--admin",
          plane.server.url,
          "--proxy",
          "productpage-v1-0.default",
          "--to",
          "reviews:9080",
          "--protocol",
          "quic",
        ])
      ).code,
    ).toBe(2);
  });
});
