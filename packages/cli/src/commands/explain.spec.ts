import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { command } from "./explain.js";

// `meshlet explain` offline from a directory of the Bookinfo fixtures (packages/mesh/src/envoy/
// testdata/bookinfo, each file citing its upstream in istio/istio samples/bookinfo).

const BOOKINFO = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "mesh",
  "src",
  "envoy",
  "testdata",
  "bookinfo",
);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-explain-"));
  for (const f of [
    "bookinfo.yaml",
    "ingressgateway.yaml",
    "destination-rule-all.yaml",
    "virtual-service-reviews-test-v2.yaml",
    "bookinfo-gateway.yaml",
  ]) {
    await copyFile(join(BOOKINFO, f), join(dir, f));
  }
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command.run(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {},
    signal: new AbortController().signal,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** `meshlet explain` from the productpage sidecar over the fixture directory. */
const fromProductpage = (...args: string[]) => run("-c", dir, "-p", "productpage-v1-0.default", ...args);

describe("meshlet explain", () => {
  it("walks productpage → reviews for jason and names the config that decided, with file:line", async () => {
    const { code, out, err } = await run(
      "--config",
      dir,
      "--proxy",
      "productpage-v1-0.default",
      "--to",
      "reviews:9080",
      "-H",
      "end-user: jason",
      "--path",
      "/reviews/0",
    );
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain(
      "outbound at sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local:",
    );
    expect(out).toContain(
      "cluster       outbound|9080|v2|reviews.default.svc.cluster.local, subset v2; traffic policy of DestinationRule default/reviews",
    );
    expect(out).toMatch(/← VirtualService default\/reviews \(.*virtual-service-reviews-test-v2\.yaml:\d+\)/);
    expect(out).toMatch(/← DestinationRule default\/reviews \(.*destination-rule-all\.yaml:\d+\)/);
    expect(out).toContain("inbound at sidecar~10.244.1.14~reviews-v2-0.default~default.svc.cluster.local:");
    expect(out).toContain(
      "=> forwarded by sidecar~10.244.1.14~reviews-v2-0.default~default.svc.cluster.local to inbound|9080||",
    );
  });

  it("prints JSON with -o json", async () => {
    const { code, out } = await run(
      "-c",
      dir,
      "-p",
      "productpage-v1-0.default",
      "--to",
      "reviews:9080",
      "-o",
      "json",
    );
    expect(code).toBe(0);
    const json = JSON.parse(out);
    expect(json.hops[0].result.clusterMatched).toBe("outbound|9080|v1|reviews.default.svc.cluster.local");
    expect(json.outcome.kind).toBe("forwarded");
  });

  it("explains the ingress gateway, and exits 1 when the request is refused", async () => {
    const ok = await run(
      "-c",
      dir,
      "-p",
      "istio-ingressgateway-0.istio-system",
      "--to",
      "bookinfo.example.com:8080",
      "--path",
      "/productpage",
    );
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/listener\s+gateway listener on port 8080/);
    expect(ok.out).toMatch(/← Gateway default\/bookinfo-gateway \(.*bookinfo-gateway\.yaml:\d+\)/);
    const refused = await run(
      "-c",
      dir,
      "-p",
      "istio-ingressgateway-0.istio-system",
      "--to",
      "bookinfo.example.com:8080",
      "--path",
      "/admin",
    );
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(
      "=> 404 at router~10.244.2.10~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local: no route matched",
    );
  });

  it("inbound with a STRICT PeerAuthentication: plaintext refused, mTLS with an identity accepted", async () => {
    await writeFile(
      join(dir, "pa.yaml"),
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec: {mtls: {mode: STRICT}}\n",
    );
    const plain = await run(
      "-c",
      dir,
      "-p",
      "reviews-v1-0.default",
      "--to",
      "9080",
      "--direction",
      "inbound",
    );
    expect(plain.code).toBe(1);
    expect(plain.out).toContain("connection closed");
    const mtls = await run(
      "-c",
      dir,
      "-p",
      "reviews-v1-0.default",
      "--to",
      "9080",
      "--direction",
      "inbound",
      "--tls",
      "mtls",
      "--source-principal",
      "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
    );
    expect(mtls.code).toBe(0);
    expect(mtls.out).toMatch(/← PeerAuthentication default\/default \(.*pa\.yaml:1\)/);
  });

  it("--jwt-claims: what RBAC sees of a verified token", async () => {
    await writeFile(
      join(dir, "authz.yaml"),
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: issuer.example
    jwks: '{"keys":[]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {requestPrincipals: ["issuer.example/alice"]}
`,
    );
    const denied = await fromProductpage("--to", "reviews:9080");
    expect(denied.code).toBe(1);
    expect(denied.out).toContain("403 RBAC: access denied");
    const allowed = await run(
      "-c",
      dir,
      "-p",
      "productpage-v1-0.default",
      "--to",
      "reviews:9080",
      "--jwt-claims",
      '{"iss":"issuer.example","sub":"alice"}',
    );
    expect(allowed.code).toBe(0);
    expect(allowed.out).toMatch(
      /ALLOW policy ns\[default\]-policy\[require-jwt\]-rule\[0\] matched: allowed/,
    );
    // A token of an issuer no RequestAuthentication trusts never reaches RBAC's metadata.
    const other = await run(
      "-c",
      dir,
      "-p",
      "productpage-v1-0.default",
      "--to",
      "reviews:9080",
      "--jwt-claims",
      '{"iss":"other","sub":"alice"}',
    );
    expect(other.code).toBe(1);
  });

  it("--registry-only blocks unknown hosts", async () => {
    const { code, out } = await run(
      "-c",
      dir,
      "-p",
      "productpage-v1-0.default",
      "--to",
      "httpbin.org:80",
      "--registry-only",
    );
    expect(code).toBe(1);
    expect(out).toContain("block_all");
  });

  it("usage errors exit 2; an unknown proxy exits 1", async () => {
    expect((await run("--proxy", "x", "--to", "a:1")).code).toBe(2);
    expect((await run("-c", dir, "--to", "a:1")).code).toBe(2);
    expect((await fromProductpage("--to", "reviews")).code).toBe(2);
    expect((await fromProductpage("--to", "a:1", "--tls", "ssl")).code).toBe(2);
    const unknown = await run("-c", dir, "-p", "ghost.default", "--to", "reviews:9080");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("no Pod default/ghost in the config");
  });
});
