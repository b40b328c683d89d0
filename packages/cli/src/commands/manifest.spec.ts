import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { command } from "./manifest.js";

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

describe("meshlet manifest generate", () => {
  it("prints multi-document YAML of the reference mesh", async () => {
    const { code, out, err } = await run("generate");
    expect(code).toBe(0);
    expect(err).toBe("");
    const docs = parseAllDocuments(out).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    expect(docs.length).toBe(19);
    expect(docs[0]).toMatchObject({ kind: "Namespace", metadata: { name: "meshlet-system" } });
    expect(docs.map((d) => d.kind)).toContain("MutatingWebhookConfiguration");
  });

  it("applies --set values and prints a JSON List with -o json", async () => {
    const { code, out } = await run(
      "generate",
      "--set",
      "meshletd.replicas=4",
      "--set=meshletd.autoscale.enabled=false",
      "-o",
      "json",
    );
    expect(code).toBe(0);
    const list = JSON.parse(out) as {
      kind: string;
      items: Array<{ kind: string; metadata: { name: string }; spec?: { replicas?: number } }>;
    };
    expect(list.kind).toBe("List");
    expect(
      list.items.find((o) => o.kind === "Deployment" && o.metadata.name === "meshletd")?.spec?.replicas,
    ).toBe(4);
  });

  it("refuses an unknown --set key with the list of valid keys, exit 2", async () => {
    const { code, out, err } = await run("generate", "--set", "pilot.replicaCount=2");
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).toContain('unknown value "pilot.replicaCount"; valid keys:');
    expect(err).toContain("\n  meshletd.replicas\n");
    expect(err).toContain("\n  gateway.service.azureInternal\n");
  });

  it("refuses a bad value, a bad output format and unknown options", async () => {
    expect((await run("generate", "--set", "meshletd.replicas=0")).err).toContain(
      "expected an integer from 1 to 100",
    );
    expect((await run("generate", "-o", "toml")).code).toBe(2);
    expect((await run("generate", "--dry-run")).code).toBe(2);
    expect((await run("install")).code).toBe(2);
  });

  it("lists every value with its default", async () => {
    const { code, out } = await run("generate", "--list-values");
    expect(code).toBe(0);
    expect(out.split("\n")).toContain("meshletd.replicas=2");
    expect(out.split("\n")).toContain("global.proxyVersion=1.27.9");
    expect(out.split("\n")).toContain("meshletd.nodeSelector=kubernetes.io/os=linux");
  });
});
