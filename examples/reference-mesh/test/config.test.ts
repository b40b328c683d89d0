import { cp, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatDiagnostic, validateFiles } from "@meshlet/config";
import { analyzeMesh, PushContext } from "@meshlet/mesh";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformYaml, WORKLOADS, workloadIp } from "../src/platform.js";

// The shipped YAML, as the demo's control plane reads it: config/ plus each scenario plus the
// platform the demo writes at start. Each combination must validate cleanly (`meshlet validate`)
// and give no `istioctl analyze` finding (a subset that selects no pod, a missing host…).

const example = fileURLToPath(new URL("..", import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "reference-mesh-config-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const scenarios = await readdir(join(example, "scenarios"));

describe("the reference mesh's YAML", () => {
  it.each(scenarios)("config/ with scenarios/%s validates and analyzes clean", async (scenario) => {
    const root = join(dir, scenario);
    await cp(join(example, "config"), root, {
      recursive: true,
      filter: (src) => !src.endsWith("scenario.yaml"),
    });
    await cp(join(example, "scenarios", scenario), join(root, "scenario.yaml"));
    const placed = WORKLOADS.map((w, i) => ({
      ...w,
      ip: workloadIp(i),
      port: 20_000 + i,
      metricsPort: 21_000 + i,
    }));
    await writeFile(join(root, "platform.yaml"), platformYaml(placed));

    const result = await validateFiles([root]);
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([]);
    const findings = analyzeMesh(PushContext.create({ snapshot: result.snapshot }));
    expect(findings.map((f) => formatDiagnostic(f))).toEqual([]);
    // Every pod is a workload of the registry, at its own address, with its service account.
    const push = PushContext.create({ snapshot: result.snapshot });
    for (const w of placed) {
      const found = push.registry.workloadsByAddress(w.ip).find((x) => x.name === w.pod);
      expect(found?.identity, w.pod).toBe(`spiffe://cluster.local/ns/default/sa/${w.serviceAccount}`);
    }
  });
});
