import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// The `meshlet` binary as a user runs it: a separate process, real files, exit status.
const run = promisify(execFile);
const packageDir = fileURLToPath(new URL("..", import.meta.url));
// The committed launcher, exactly what npm links as `meshlet` (it runs the built dist/, which
// `npm test` builds first).
const launcher = join(packageDir, "bin", "meshlet.mjs");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-cli-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function meshlet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [launcher, ...args], {
      cwd: dir,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("meshlet command", () => {
  it("is a committed launcher declared as the package bin, so npm links it before any build", async () => {
    const pkg = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin.meshlet).toBe("./bin/meshlet.mjs");
    expect(await readFile(launcher, "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
    // The link npm made at install time (node_modules/.bin/meshlet) points at the launcher.
    const { stdout } = await run("npx", ["--no-install", "meshlet", "--help"], { cwd: packageDir });
    expect(stdout).toContain("validate");
  });

  it("validate exits non-zero and prints relative file:line:column on errors", async () => {
    await writeFile(
      join(dir, "pa.yaml"),
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\nspec:\n  mtls: {mode: STRICTEST}\n",
    );
    const result = await meshlet("validate", ".");
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^pa\.yaml:5:10 MC0004 error: .*STRICT.* \(PeerAuthentication\/default\/default at spec\.mtls\.mode\)\n$/,
    );
  });

  it("validate exits 0 on valid config, and unknown commands exit 2", async () => {
    await writeFile(
      join(dir, "ns.json"),
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } }),
    );
    expect((await meshlet("validate", "ns.json")).code).toBe(0);
    const unknown = await meshlet("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it("manifest generate prints the reference mesh's manifests and refuses unknown --set keys", async () => {
    const ok = await meshlet("manifest", "generate", "--set", "gateway.service.azureInternal=true");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^---\napiVersion: v1\nkind: Namespace\n/);
    expect(ok.stdout).toContain('service.beta.kubernetes.io/azure-load-balancer-internal: "true"');
    const bad = await meshlet("manifest", "generate", "--set", "meshletd.replicaCount=3");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown value "meshletd.replicaCount"; valid keys:');
  });
});
