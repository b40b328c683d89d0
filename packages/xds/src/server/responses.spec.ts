import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { fromBinary } from "@bufbuild/protobuf";
import {
  DeltaDiscoveryResponseSchema,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { describe, expect, it } from "vitest";
import type { CachedResource } from "../cached-resource.js";
import { ResourcePool } from "../resource-pool.js";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { GRPC_PREFIX, ResponseCache } from "./responses.js";

const controlPlane = { sotw: new Uint8Array(0), delta: new Uint8Array(0) };

describe("ResponseCache", () => {
  it("shares one response between lists of the same resources built by different proxies", () => {
    const pool = new ResourcePool();
    const shared = [resources.cluster({ name: "a" }), resources.cluster({ name: "b" })];
    // Two proxies' snapshots, each with its own array: the resources are the same objects.
    const p1 = Snapshot.create({ clusters: [...shared] }, { pool });
    const p2 = Snapshot.create({ clusters: [...shared] }, { pool });
    const list1 = [...p1.resources(TypeUrl.Cluster).values()];
    const list2 = [...p2.resources(TypeUrl.Cluster).values()];
    expect(list1).not.toBe(list2);
    const cache = new ResponseCache(controlPlane);
    const r1 = cache.sotw("v1", TypeUrl.Cluster, list1, false, true);
    const r2 = cache.sotw("v1", TypeUrl.Cluster, list2, false, true);
    expect(r2.framed).toBe(r1.framed);
    expect(r2.nonce).toBe(r1.nonce);
    const d1 = cache.delta("v1", TypeUrl.Cluster, list1, ["gone"], false);
    const d2 = cache.delta("v1", TypeUrl.Cluster, list2, ["gone"], false);
    expect(d2.framed).toBe(d1.framed);
  });

  it("keeps one list's responses apart by version and type, sharing each while it lives", () => {
    // One slot per list for the common case, a table once the list goes out under a second
    // (type URL, version): e.g. the same changed resources under each proxy's own version.
    const pool = new ResourcePool();
    const list = [
      ...Snapshot.create({ clusters: [resources.cluster({ name: "a" })] }, { pool })
        .resources(TypeUrl.Cluster)
        .values(),
    ];
    const cache = new ResponseCache(controlPlane);
    const v1 = cache.delta("v1", TypeUrl.Cluster, list, [], false);
    expect(cache.delta("v1", TypeUrl.Cluster, list, [], false)).toBe(v1);
    const v2 = cache.delta("v2", TypeUrl.Cluster, list, [], false);
    const other = cache.delta("v1", "type.googleapis.com/custom.Type", list, [], false);
    expect(new Set([v1.nonce, v2.nonce, other.nonce]).size).toBe(3);
    expect(cache.delta("v1", TypeUrl.Cluster, list, [], false)).toBe(v1);
    expect(cache.delta("v2", TypeUrl.Cluster, list, [], false)).toBe(v2);
    expect(cache.delta("v1", "type.googleapis.com/custom.Type", list, [], false)).toBe(other);
    const decoded = fromBinary(DeltaDiscoveryResponseSchema, v2.framed.subarray(GRPC_PREFIX));
    expect([decoded.systemVersionInfo, decoded.nonce]).toEqual(["v2", v2.nonce]);
    // With removals, the same per (removed names, type URL, version).
    const gone1 = cache.delta("v1", TypeUrl.Cluster, list, ["x"], false);
    const gone2 = cache.delta("v2", TypeUrl.Cluster, list, ["x"], false);
    expect(gone1).not.toBe(v1);
    expect(gone2.nonce).not.toBe(gone1.nonce);
    expect(cache.delta("v1", TypeUrl.Cluster, list, ["x"], false)).toBe(gone1);
    expect(cache.delta("v2", TypeUrl.Cluster, list, ["x"], false)).toBe(gone2);
    // SotW likewise.
    const s1 = cache.sotw("v1", TypeUrl.Cluster, list, false, true);
    const s2 = cache.sotw("v2", TypeUrl.Cluster, list, false, true);
    expect(s2.nonce).not.toBe(s1.nonce);
    expect(cache.sotw("v1", TypeUrl.Cluster, list, false, true)).toBe(s1);
  });

  it("keeps a list's responses apart when type URL and version join alike (a client's type URL may hold spaces)", () => {
    // One list may go out under several type URLs (an empty set shared by types), and a type URL
    // comes from the client: ("A", "y z") and ("A y", "z") are two responses, whatever string
    // their slot is found by.
    const cache = new ResponseCache(controlPlane);
    const none: CachedResource[] = [];
    const first = cache.sotw("v0", TypeUrl.Cluster, none, false, true);
    const real = cache.sotw("y z", "type.googleapis.com/A", none, false, true);
    const hostile = cache.sotw("z", "type.googleapis.com/A y", none, false, true);
    expect(hostile).not.toBe(real);
    expect(hostile.nonce).not.toBe(real.nonce);
    const body = fromBinary(DiscoveryResponseSchema, hostile.framed.subarray(GRPC_PREFIX));
    expect([body.typeUrl, body.versionInfo]).toEqual(["type.googleapis.com/A y", "z"]);
    // Each is still shared while it lives.
    expect(cache.sotw("v0", TypeUrl.Cluster, none, false, true)).toBe(first);
    expect(cache.sotw("z", "type.googleapis.com/A y", none, false, true)).toBe(hostile);
  });

  it("keeps lists that differ in a resource or in order apart", () => {
    const pool = new ResourcePool();
    const [a, b] = [
      ...Snapshot.create(
        { clusters: [resources.cluster({ name: "a" }), resources.cluster({ name: "b" })] },
        { pool },
      )
        .resources(TypeUrl.Cluster)
        .values(),
    ];
    const cache = new ResponseCache(controlPlane);
    const ab = cache.sotw("v", TypeUrl.Cluster, [a!, b!], false, true);
    const ba = cache.sotw("v", TypeUrl.Cluster, [b!, a!], false, true);
    const aOnly = cache.sotw("v", TypeUrl.Cluster, [a!], false, true);
    expect(new Set([ab.framed, ba.framed, aOnly.framed]).size).toBe(3);
    // Another version of the same list is another response (version_info differs).
    expect(cache.sotw("w", TypeUrl.Cluster, [a!, b!], false, true).framed).not.toBe(ab.framed);
  });

  it("writes each resource's bytes in the Any and Resource framing its sotwField/deltaField has", () => {
    const pool = new ResourcePool();
    const s = Snapshot.create(
      {
        clusters: [resources.cluster({ name: "a" }), resources.cluster({ name: "b-ü", connectTimeoutMs: 7 })],
      },
      { pool },
    );
    const list = [...s.resources(TypeUrl.Cluster).values()];
    const cache = new ResponseCache({ sotw: new Uint8Array([50, 0]), delta: new Uint8Array([58, 0]) });
    const sotw = cache.sotw("v9", TypeUrl.Cluster, list, false, true);
    const expectedSotw = Buffer.concat([
      Buffer.from([10, 2, 118, 57]), // version_info "v9"
      ...list.map((r) => r.sotwField()),
      Buffer.from([34, TypeUrl.Cluster.length]),
      Buffer.from(TypeUrl.Cluster),
      Buffer.from([42, sotw.nonce.length]),
      Buffer.from(sotw.nonce),
      Buffer.from([50, 0]),
    ]);
    expect(sotw.framed.subarray(GRPC_PREFIX)).toEqual(expectedSotw);
    expect(sotw.framed.readUInt32BE(1)).toBe(expectedSotw.length);
    const decoded = fromBinary(DiscoveryResponseSchema, sotw.framed.subarray(GRPC_PREFIX));
    expect(decoded.resources.map((a) => Buffer.from(a.value))).toEqual(list.map((r) => Buffer.from(r.bytes)));

    const delta = cache.delta("v9", TypeUrl.Cluster, list, ["gone"], false);
    const d = fromBinary(DeltaDiscoveryResponseSchema, delta.framed.subarray(GRPC_PREFIX));
    expect(d.resources.map((r) => [r.name, r.version, Buffer.from(r.resource?.value ?? [])])).toEqual(
      list.map((r) => [r.name, r.version, Buffer.from(r.bytes)]),
    );
    expect(d.removedResources).toEqual(["gone"]);
    expect(d.systemVersionInfo).toBe("v9");
    const deltaFields = Buffer.concat(list.map((r) => r.deltaField()));
    expect(delta.framed.includes(deltaFields)).toBe(true);
  });

  it("holds a response only while a stream still has its buffer: then it is assembled again", async () => {
    const pool = new ResourcePool();
    const list = [
      ...Snapshot.create({ clusters: [resources.cluster({ name: "w" })] }, { pool })
        .resources(TypeUrl.Cluster)
        .values(),
    ];
    const cache = new ResponseCache(controlPlane);
    let first: { framed: Buffer; nonce: string } | undefined = cache.sotw(
      "v",
      TypeUrl.Cluster,
      list,
      false,
      true,
    );
    const nonce = first.nonce;
    await collectGarbage();
    // Still held (by `first`): found again, same bytes, same nonce.
    expect(cache.sotw("v", TypeUrl.Cluster, list, false, true).nonce).toBe(nonce);
    first = undefined;
    await collectGarbage();
    const again = cache.sotw("v", TypeUrl.Cluster, list, false, true);
    expect(again.nonce).not.toBe(nonce);
    expect(fromBinary(DiscoveryResponseSchema, again.framed.subarray(GRPC_PREFIX)).nonce).toBe(again.nonce);
  });

  it("keeps removed-name lists apart even when a name holds the characters between names", () => {
    const cache = new ResponseCache(controlPlane);
    const lists = [["a\u0000b"], ["a", "b"], ["a,b"], ["a", ",b"]];
    const none: never[] = [];
    const removed = lists.map((names) => cache.delta("v", TypeUrl.Cluster, none, names, false).framed);
    expect(new Set(removed).size).toBe(lists.length);
  });
});

async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 0));
    gc();
  }
}
