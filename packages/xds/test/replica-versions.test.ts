import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Snapshot, TypeUrl } from "@meshlet/xds";
import { describe, expect, it } from "vitest";

// Two control-plane replicas are two processes: the versions a client carries from one to the
// other (SotW version_info, Delta initial_resource_versions) must be the same for the same
// content, whatever order each replica built its sets and its map fields in.

/**
 * A snapshot of two clusters with metadata (filter_metadata and Struct keys) and a set of ten
 * clusters, its keys and resources inserted in `order`; the versions of both types as JSON.
 */
const program = `
import { create } from "@bufbuild/protobuf";
import { MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { resources, Snapshot, TypeUrl } from "@meshlet/xds";
const reverse = process.env.ORDER === "reverse";
const o = (...entries) => Object.fromEntries(reverse ? entries.reverse() : entries);
const clusters = Array.from({ length: 10 }, (_, i) => {
  const c = resources.cluster({ name: "svc-" + i, connectTimeoutMs: 1000 + i });
  c.metadata = create(MetadataSchema, {
    filterMetadata: o(["istio", o(["name", "svc-" + i], ["namespace", "default"], ["labels", o(["app", "a"], ["version", "v1"])])], ["envoy.lb", o(["canary", true])]),
  });
  return c;
});
const s = Snapshot.create({ clusters: reverse ? clusters.reverse() : clusters });
process.stdout.write(JSON.stringify({ clusters: s.version(TypeUrl.Cluster), empty: s.version(TypeUrl.Listener) }));
`;

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

async function versionsIn(order: "forward" | "reverse"): Promise<{ clusters: string; empty: string }> {
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", program], {
    cwd: repoRoot,
    env: { ...process.env, ORDER: order },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { clusters: string; empty: string };
}

describe("versions across processes (replicas)", () => {
  it("are equal for the same content built in different orders in two processes", async () => {
    const [forward, reverse] = await Promise.all([versionsIn("forward"), versionsIn("reverse")]);
    expect(reverse).toEqual(forward);
    // This process agrees on the empty set's version (nothing process-specific goes in).
    expect(Snapshot.create({}).version(TypeUrl.Listener)).toBe(forward.empty);
    expect(forward.clusters).toMatch(/^[A-Za-z0-9_-]{22}$/);
  }, 90_000);
});
