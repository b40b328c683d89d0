import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { command } from "./validate.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-validate-"));
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
  return { code, out, err };
}

const good = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1}]
`;

describe("meshlet validate", () => {
  it("exits 0 and prints nothing on stdout for valid config", async () => {
    await writeFile(join(dir, "dr.yaml"), good);
    const { code, out, err } = await run(dir);
    expect(code).toBe(0);
    expect(out).toEqual([]);
    expect(err.join("\n")).toContain("1 resources in 1 files: 0 errors, 0 warnings");
  });

  it("prints file:line:column code message for errors and warnings and exits 1 on errors", async () => {
    await writeFile(join(dir, "dr.yaml"), good);
    await writeFile(
      join(dir, "vs.yaml"),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
`,
    );
    const { code, out } = await run(join(dir, "vs.yaml"), join(dir, "dr.yaml"));
    expect(code).toBe(1);
    expect(out).toHaveLength(2);
    // Istio's analyzer rates a missing subset IST0101 ReferencedResourceNotFound, an error.
    expect(out[0]).toMatch(
      /vs\.yaml:8:36 IST0101 error: Referenced host\+subset in destinationrule not found: "reviews\+v2"/,
    );
    expect(out[1]).toMatch(
      /vs\.yaml:15:5 MC0004 error: missing required field hosts \(Gateway\/default\/gw at spec\.servers\[0\]\.hosts\)$/,
    );
  });

  it("reports YAML syntax errors and duplicate resources across files", async () => {
    await writeFile(join(dir, "a.yaml"), good);
    await writeFile(join(dir, "b.yaml"), `# copy\n${good}`);
    await writeFile(join(dir, "c.yaml"), "kind: [oops\n");
    const { code, out } = await run(dir);
    expect(code).toBe(1);
    expect(
      out.some((l) =>
        /b\.yaml:2:1 MC0005 error: DestinationRule\/default\/reviews is already defined at .*a\.yaml:1/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(out.some((l) => /c\.yaml:\d+:\d+ MC0001 error: invalid YAML/.test(l))).toBe(true);
  });

  it("prints JSON with --output json and hides warnings with --no-warnings", async () => {
    await writeFile(
      join(dir, "vs.yaml"),
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n    mirror: {host: m}\n    mirrorPercent: 5\n",
    );
    const json = await run("-o", "json", dir);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out.join("\n")) as {
      warnings: number;
      diagnostics: Array<{ code: string; line: number }>;
    };
    expect(parsed.warnings).toBe(1);
    // Istio accepts the deprecated mirrorPercent with a warning.
    expect(parsed.diagnostics[0]).toMatchObject({ code: "MC1006", line: 9 });
    expect((await run("--no-warnings", dir)).out).toEqual([]);
  });

  it("refuses an AuthorizationPolicy whose CEL condition annotation does not type-check, at its line", async () => {
    // The engine (@meshlet/policy) would refuse this policy; meshlet validate says so first.
    await writeFile(
      join(dir, "authz.yaml"),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: tier
  namespace: foo
  annotations:
    authz.meshlet.io/condition: 'request.hedaers["x-tier"] == "gold"'
spec:
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ok
  namespace: foo
  annotations:
    authz.meshlet.io/condition: '"x-tier" in request.headers'
spec:
  rules: [{}]
`,
    );
    const { code, out } = await run(dir);
    expect(code).toBe(1);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(
      /authz\.yaml:7:5 MC0007 error: CEL expression .* does not type-check: .*hedaers.* \(AuthorizationPolicy\/foo\/tier at metadata\.annotations\["authz\.meshlet\.io\/condition"\]\)$/,
    );
  });

  it("exits 2 with usage on bad arguments", async () => {
    expect((await run()).code).toBe(2);
    expect((await run("--bogus", dir)).code).toBe(2);
    expect((await run("-o", "xml", dir)).code).toBe(2);
  });
});
