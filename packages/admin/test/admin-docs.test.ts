import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TypeUrl, testing } from "@meshlet/xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../mesh/test/support/mesh-fixture.js";
import { type AdminPlane, bookinfoFiles, startAdminPlane } from "./support/admin-plane.js";

// docs/admin.md says what works: every ```sh block in it is run here, as written, with bash and
// the real curl (and the real `meshlet` CLI, packages/cli/bin/meshlet.mjs), against a real control
// plane serving Istio's Bookinfo sample with productpage's sidecar connected (a scripted xDS client:
// Envoy cannot run here). Only the address changes: http://127.0.0.1:15015 → this test's port.

const DOC = fileURLToPath(new URL("../../../docs/admin.md", import.meta.url));
const MESHLET = fileURLToPath(new URL("../../cli/bin/meshlet.mjs", import.meta.url));
const PRODUCTPAGE_ID = "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local";

/** The doc's ```sh blocks, each with the heading it sits under. */
function shBlocks(markdown: string): Array<{ heading: string; script: string }> {
  const out: Array<{ heading: string; script: string }> = [];
  let heading = "";
  for (const m of markdown.matchAll(/^(#{1,4} .*)$|^```sh\n([\s\S]*?)^```$/gm)) {
    if (m[1] !== undefined) heading = m[1];
    else out.push({ heading, script: m[2] as string });
  }
  return out;
}

/** Runs a script with bash; `stopWhen` ends a script that does not end by itself (a stream). */
function run(
  script: string,
  env: Record<string, string>,
  stopWhen?: (stdout: string) => boolean,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `set -euo pipefail\nmeshlet() { node ${MESHLET} "$@"; }\n${script}`], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      process.kill(-(child.pid as number), "SIGKILL");
      reject(new Error(`timed out:\n${script}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.stdout.setEncoding("latin1").on("data", (c: string) => {
      stdout += c;
      if (stopWhen?.(stdout)) process.kill(-(child.pid as number), "SIGTERM");
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let plane: AdminPlane;
let sidecar: testing.AdsClient;
const blocks = shBlocks(readFileSync(DOC, "utf8"));

beforeAll(async () => {
  plane = await startAdminPlane(await bookinfoFiles("bookinfo.yaml", "destination-rule-all.yaml"));
  sidecar = testing.AdsClient.connect({
    address: `127.0.0.1:${plane.xdsPort}`,
    node: {
      id: PRODUCTPAGE_ID,
      metadata: {
        NAMESPACE: "default",
        SERVICE_ACCOUNT: "bookinfo-productpage",
        LABELS: { app: "productpage", version: "v1" },
        ISTIO_VERSION: "1.27.0",
        CLUSTER_ID: "Kubernetes",
      },
    },
    autoAck: true,
  });
  sidecar.request({ typeUrl: TypeUrl.Cluster });
  await sidecar.next(TypeUrl.Cluster);
  const client = (await import("@meshlet/admin")).createAdminClient({ url: plane.server.url });
  await eventually(async () => {
    const { proxies } = await client.listProxies({});
    expect(
      proxies.find((p) => p.id === PRODUCTPAGE_ID)?.types.find((t) => t.type === "CDS")?.versionAcked,
    ).not.toBe("");
  });
  // Something in the feed for the WatchEvents example's replay.
  plane.admin.feed.publish({ case: "push", value: { cause: "manual", configVersion: "docs" } });
});

afterAll(async () => {
  sidecar?.close();
  await plane?.close();
});

describe("docs/admin.md", () => {
  it("shows each MeshAdmin call with curl, and the CLI commands", () => {
    const all = blocks.map((b) => b.script).join("\n");
    for (const m of [
      "ListProxies",
      "GetProxyConfig",
      "Explain",
      "WatchEvents",
      "GetConfigStatus",
      "GetMeshGraph",
    ])
      expect(all, m).toMatch(new RegExp(`curl[^\\n]*(\\\\\\n[^\\n]*)*MeshAdmin/${m}`));
    for (const c of [
      "meshlet proxy-status",
      "meshlet proxy-config",
      "meshlet explain --admin",
      "meshlet events",
    ])
      expect(all, c).toContain(c);
    expect(readFileSync(DOC, "utf8")).toContain("](admin-console.png)");
  });

  it.each(blocks.map((b, i) => [`${i + 1}: ${b.heading}`, b] as const))(
    "block %s runs as written and answers without an error",
    async (_name, block) => {
      const script = block.script.replaceAll("http://127.0.0.1:15015", plane.server.url);
      if (block.script.includes("curl "))
        expect(block.script, "a curl example uses the default address").toContain("http://127.0.0.1:15015/");
      const streaming = script.includes("/WatchEvents");
      const r = await run(
        script,
        { MESHLET_ADMIN_URL: plane.server.url, MESHLET_ADMIN_TOKEN: "" },
        streaming ? (out) => out.includes('"configVersion":"docs"') : undefined,
      );
      if (streaming) {
        // Enveloped messages: 5 bytes, then the event's JSON (the replayed push).
        expect(r.stdout).toMatch(/^\0\0\0.{2}\{"sequence":"\d+"/s);
        expect(r.stdout).toContain('"push":{"cause":"manual","configVersion":"docs"}');
        return;
      }
      if (process.env.MESHLET_DOCS_PRINT) console.log(`${script}\n${r.stdout}`);
      expect(r.code, `${script}\n${r.stderr}`).toBe(0);
      expect(r.stdout).not.toMatch(/"code":\s*"[a-z_]+"/);
      for (const line of script.split("\n").filter((l) => l.startsWith("curl")))
        expect(line, "a curl example asks for errors on stderr (-sS)").toContain("-sS");
    },
  );
});
