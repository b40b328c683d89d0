import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "@meshlet/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selfSignedLocalhost } from "../../admin/test/support/self-signed.js";
import { eventually } from "../../mesh/test/support/mesh-fixture.js";

// `meshlet serve --admin 0.0.0.0:<port>` as an operator exposes it beyond the machine: TLS (an
// openssl self-signed certificate) and a bearer token from MESHLET_ADMIN_TOKEN. The token works,
// its absence gets `unauthenticated`, and it never appears in what serve prints.

const launcher = fileURLToPath(new URL("../bin/meshlet.mjs", import.meta.url));
const TOKEN = "serve-admin-token-4f1e0c2b9a8d7e6f";
let dir: string;
let out = "";
let child: ReturnType<typeof spawn> | undefined;
let exited: Promise<number | null>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-serve-admin-tls-"));
  selfSignedLocalhost(dir);
  await writeFile(
    join(dir, "svc.yaml"),
    "apiVersion: v1\nkind: Service\nmetadata: { name: echo, namespace: test }\nspec:\n  selector: { app: echo }\n  ports: [{ name: grpc, port: 7070 }]\n",
  );
  child = spawn(
    process.execPath,
    [
      launcher,
      "serve",
      "--config",
      "svc.yaml",
      "--listen",
      "127.0.0.1:0",
      "--metrics",
      "off",
      "--admin",
      "0.0.0.0:0",
      "--admin-cert",
      "cert.pem",
      "--admin-key",
      "key.pem",
      "--state-dir",
      join(dir, "state"),
    ],
    { cwd: dir, env: { ...process.env, MESHLET_ADMIN_TOKEN: TOKEN }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (out += c));
  exited = new Promise((resolve) => child?.on("exit", (code) => resolve(code)));
  await eventually(() => expect(out).toMatch(/^Ready\./m), 60_000);
}, 90_000);

afterAll(async () => {
  child?.kill("SIGTERM");
  await exited;
  await rm(dir, { recursive: true, force: true });
});

describe("meshlet serve --admin on a non-loopback address", () => {
  it("serves over TLS with the token, answers unauthenticated without it, and never prints it", async () => {
    // Bound to every address, the printed URL names the machine (no client can dial 0.0.0.0).
    const host = hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const port = new RegExp(
      `admin API \\(meshlet\\.admin\\.v1\\.MeshAdmin\\)\\s+https://${host}:(\\d+) \\(bearer token required\\)`,
    ).exec(out)?.[1];
    expect(port, out).toBeDefined();
    const admin = `https://127.0.0.1:${port}`;
    const status = async (env: Record<string, string>) => {
      const lines: string[] = [];
      const code = await main(["proxy-status", "--admin", admin, "--admin-ca", join(dir, "cert.pem")], {
        out: (l) => lines.push(l),
        err: (l) => lines.push(l),
        env,
        signal: new AbortController().signal,
      });
      return { code, text: lines.join("\n") };
    };
    const ok = await status({ MESHLET_ADMIN_TOKEN: TOKEN });
    expect(ok.code, ok.text).toBe(0);
    expect(ok.text.split("\n")[0]).toMatch(/^NAME\s+CLUSTER\s+CDS/);
    const refused = await status({});
    expect(refused.code).toBe(4);
    expect(refused.text).toContain("unauthenticated");
    // Plain HTTP to the TLS port gets nowhere.
    const plain = await main(["proxy-status", "--admin", `http://127.0.0.1:${port}`], {
      out: () => {},
      err: () => {},
      env: { MESHLET_ADMIN_TOKEN: TOKEN },
      signal: new AbortController().signal,
    });
    expect(plain).not.toBe(0);
    expect(out).not.toContain(TOKEN);
  });
});
