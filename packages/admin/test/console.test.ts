import { readFileSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseSamples, scrapeMetrics } from "@meshlet/admin";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  eventually,
  type MeshClient,
  startBackend,
  startClient,
} from "../../mesh/test/support/mesh-fixture.js";
import { type AdminPlane, bookinfoFiles, startAdminPlane } from "./support/admin-plane.js";

// The console in a real browser: Debian's chromium (apt-get install chromium; scripts/setup.sh)
// driven by playwright-core, against a real control plane with a real proxyless client
// (@grpc/grpc-js-xds). It asserts what a user sees: the proxy list fills in with the client SYNCED,
// an edited VirtualService appears in the event feed and in the explain answer, the mesh graph
// draws Bookinfo's services from Istio-shaped metrics (test/fixtures/istio-requests-total.prom,
// counters growing with each scrape), and a proxy's config can be searched. It saves a
// screenshot; MESHLET_UPDATE_SCREENSHOT=1 writes it to docs/admin-console.png.

const CHROMIUM = "/usr/bin/chromium";
const FQDN = "echo.test.svc.cluster.local";
const FIXTURE = readFileSync(new URL("./fixtures/istio-requests-total.prom", import.meta.url), "utf8");

let plane: AdminPlane;
let backend: Backend;
let grpcClient: MeshClient;
let metrics: Server;
let context: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  // A /metrics page whose counters grow with every scrape (as a busy mesh's do).
  let scrapes = 0;
  metrics = createServer((_req, res) => {
    scrapes++;
    const text = FIXTURE.replace(/ (\d+)$/gm, (_m, v: string) => ` ${Number(v) * scrapes}`);
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(text);
  });
  await new Promise<void>((r) => metrics.listen(0, "127.0.0.1", () => r()));
  const metricsUrl = `http://127.0.0.1:${(metrics.address() as { port: number }).port}/metrics`;
  expect(parseSamples(FIXTURE, "istio_requests_total").length).toBeGreaterThan(5);

  backend = await startBackend("v1");
  plane = await startAdminPlane(
    {
      ...(await bookinfoFiles("bookinfo.yaml", "destination-rule-all.yaml")),
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
    },
    { admin: { metrics: scrapeMetrics([metricsUrl]) } },
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
  profile = await mkdtemp(join(tmpdir(), "meshlet-console-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 120_000);

afterAll(async () => {
  await context?.close();
  await grpcClient?.close();
  await plane?.close();
  await backend?.close();
  await new Promise<void>((r) => (metrics ? metrics.close(() => r()) : r()));
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe("the browser console", () => {
  it("fills in the proxy list with the proxyless client, SYNCED", async () => {
    await page.goto(plane.server.url);
    const row = page.locator(`#proxies tbody tr[data-proxy="${grpcClient.nodeId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await expect
      .poll(async () => row.locator("td").allTextContents(), { timeout: 30_000 })
      .toEqual([
        "client-js.test",
        "proxyless",
        "SYNCED",
        "SYNCED",
        "SYNCED",
        "SYNCED",
        expect.stringMatching(/^\d+\.\d+\.\d+$/),
      ]);
    await expect.poll(() => page.locator("#plane").textContent()).toBe("control plane meshlet-test");
    await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
  });

  it("shows an edited VirtualService in the event feed and in the explain answer", async () => {
    const files = await bookinfoFiles("virtual-service-reviews-test-v2.yaml");
    await plane.write(
      "virtual-service-reviews-test-v2.yaml",
      files["virtual-service-reviews-test-v2.yaml"] as string,
    );
    await expect
      .poll(() => page.locator("#events li").allTextContents(), { timeout: 30_000 })
      .toContainEqual(expect.stringContaining("VirtualService/default/reviews"));
    await page.fill("#explain-proxy", "productpage-v1-0.default");
    await page.fill("#explain-to", "reviews:9080");
    await page.fill("#explain-headers", "end-user: jason");
    await page.click("#explain-form button");
    const answer = page.locator("#explain");
    await expect
      .poll(() => answer.textContent(), { timeout: 30_000 })
      .toContain("outbound|9080|v2|reviews.default.svc.cluster.local");
    const text = (await answer.textContent()) ?? "";
    expect(text).toContain("forwarded:");
    expect(text).toContain("← VirtualService default/reviews (virtual-service-reviews-test-v2.yaml:2)");
  });

  it("draws the mesh graph from istio_requests_total, with request and error rates on the edges", async () => {
    await expect
      .poll(() => page.locator("#graph .node text").allTextContents(), { timeout: 30_000 })
      .toEqual(
        expect.arrayContaining(["productpage", "reviews", "ratings", "details", "istio-ingressgateway"]),
      );
    // Rates appear once two scrapes exist (the page reads the graph every 5 s).
    await expect
      .poll(() => page.locator("#graph .edge text").allTextContents(), { timeout: 30_000 })
      .toContainEqual(expect.stringMatching(/^\d+\.\d rps · 5\.0% err$/));
  });

  it("shows the selected proxy's config and finds text in it", async () => {
    await page.click(`#proxies tbody tr[data-proxy="${grpcClient.nodeId}"]`);
    await expect
      .poll(() => page.locator("#config summary").allTextContents())
      .toEqual([`outbound|7070||${FQDN}`]);
    await page.selectOption("#config-type", "listeners");
    await expect.poll(() => page.locator("#config summary").allTextContents()).toEqual([`${FQDN}:7070`]);
    await page.fill("#config-search", "no-such-text");
    await expect.poll(() => page.locator("#config summary").count()).toBe(0);
    await page.fill("#config-search", "route_config_name");
    await expect.poll(() => page.locator("#config mark").first().textContent()).toBe("route_config_name");
  });

  it("saves a screenshot of what the user sees", async () => {
    await page.fill("#config-search", "");
    const target = process.env.MESHLET_UPDATE_SCREENSHOT
      ? fileURLToPath(new URL("../../../docs/admin-console.png", import.meta.url))
      : join(profile, "admin-console.png");
    await page.screenshot({ path: target, fullPage: true });
    expect((await stat(target)).size).toBeGreaterThan(20_000);
  });
});
