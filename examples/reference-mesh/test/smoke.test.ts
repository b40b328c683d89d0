import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// `npm start -- --smoke` as a user runs it: the built demo (dist/main.js, built by `npm run build`
// at the repository root) starts meshlet's control plane and the Bookinfo workloads as real
// processes (grpc-js-xds, mTLS from meshlet's CA) in temporary directories, applies two scenarios
// and exits 0 only when the traffic the workloads' Istio metrics report moved as each promised.

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));

describe("reference mesh smoke run", () => {
  it("routes round robin with SPIFFE identities, shifts reviews to v3, then denies productpage → reviews", async () => {
    expect(existsSync(main), `${main} is missing: run \`npm run build\` at the repository root`).toBe(true);
    const child = spawn(process.execPath, [main, "--smoke"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    process.off("exit", kill);
    expect(code, out).toBe(0);
    expect(out.match(/^smoke: ok {3}.*$/gm)?.length, out).toBe(3);
    expect(out).toContain("scenario reviews-v3");
    expect(out).toContain("scenario deny-reviews");
    expect(out).toMatch(
      /smoke: identity productpage-v1 → reviews-v\d +spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage → spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews \(mutual_tls\)/,
    );
  }, 300_000);
});
