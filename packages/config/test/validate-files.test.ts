import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { validateFiles } from "../src/index.js";

const bookinfo = join(import.meta.dirname, "fixtures", "bookinfo", "bookinfo.yaml");
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-validate-files-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("validateFiles", () => {
  it("validates a Bookinfo manifest with Services, ServiceAccounts and Deployments clean", async () => {
    const result = await validateFiles([bookinfo]);
    expect(result.diagnostics).toEqual([]);
    expect(result.snapshot.kinds()).toEqual(["Deployment", "Service", "ServiceAccount"]);
    expect(result.snapshot.size).toBe(5);
  });

  it("checks a Deployment's pod template against Kubernetes' schema, at the field", async () => {
    await writeFile(
      join(dir, "deploy.yaml"),
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec:
      containers:
      - name: reviews
        image: reviews:1
        ports: [{containerPort: 9080, protocol: HTTP}]
`,
    );
    const result = await validateFiles([dir]);
    expect(result.errors).toBe(1);
    expect(result.diagnostics[0]).toMatchObject({
      code: "MC0004",
      line: 12,
      path: "spec.template.spec.containers[0].ports[0].protocol",
      resource: "Deployment/default/reviews-v1",
    });
    expect(result.diagnostics[0]?.expected).toContain('"TCP"');
  });

  it("skips kinds the mesh does not read with a note, never an error", async () => {
    await writeFile(
      join(dir, "app.yaml"),
      `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec: {rules: []}
`,
    );
    const result = await validateFiles([dir]);
    expect(result.errors).toBe(0);
    expect(result.warnings).toBe(0);
    expect(result.infos).toBe(2);
    expect(result.diagnostics.map((d) => [d.code, d.severity, d.line])).toEqual([
      ["MC0008", "info", 1],
      ["MC0008", "info", 6],
    ]);
  });
});
