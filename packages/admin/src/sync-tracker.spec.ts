import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { SyncStatus } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import type { XdsEvent } from "@meshlet/xds";
import { describe, expect, it } from "vitest";
import { SyncTracker, syncStatusOf, worstStatus } from "./sync-tracker.js";

// istioctl's rule (istio/istio istioctl/pkg/writer/pilot/status.go `xdsStatus(sent, acked)`):
// nothing sent → NOT SENT; the nonce sent is the nonce ACKed → SYNCED; nothing ACKed → STALE
// (Never Acknowledged); else STALE. A NACK of the last response is ERROR (CSDS ConfigStatus ERROR).

const node = create(NodeSchema, { id: "sidecar~10.0.0.1~a-0.ns~ns.svc.cluster.local" });
const CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const base = { streamId: 1, protocol: "sotw" as const, node };
const sent = (version: string, nonce: string): XdsEvent => ({
  ...base,
  type: "response",
  typeUrl: CDS,
  version,
  nonce,
  resources: [],
  removed: [],
  heartbeat: false,
  bytes: 1,
});
const ack = (version: string, nonce: string): XdsEvent => ({
  ...base,
  type: "ack",
  typeUrl: CDS,
  version,
  nonce,
});
const nack = (rejected: string, nonce: string): XdsEvent => ({
  ...base,
  type: "nack",
  typeUrl: CDS,
  version: "",
  rejectedVersion: rejected,
  nonce,
  errorDetail: { code: 3, message: "bad" },
});

describe("SyncTracker", () => {
  it("follows a type through sent, ACKed, sent again, NACKed and ACKed", () => {
    let now = 100;
    const t = new SyncTracker(() => now);
    const status = () => syncStatusOf(t.nodes().get(node.id)?.types.get(CDS));
    expect(status()).toBe(SyncStatus.NOT_SENT);
    t.record(sent("v1", "1"));
    expect(status()).toBe(SyncStatus.STALE);
    expect(t.nodes().get(node.id)?.types.get(CDS)?.acked).toBeUndefined();
    t.record(ack("v1", "1"));
    expect(status()).toBe(SyncStatus.SYNCED);
    now = 200;
    t.record(sent("v2", "2"));
    expect(status()).toBe(SyncStatus.STALE);
    t.record(nack("v2", "2"));
    expect(status()).toBe(SyncStatus.ERROR);
    expect(t.nodes().get(node.id)?.types.get(CDS)?.nacked).toMatchObject({
      version: "v2",
      error: "bad",
      at: 200,
    });
    t.record(sent("v3", "3"));
    t.record(ack("v3", "3"));
    expect(status()).toBe(SyncStatus.SYNCED);
    expect(t.nodes().get(node.id)?.types.get(CDS)?.nacked).toBeUndefined();
    expect(t.nodes().get(node.id)?.since).toBe(100);
  });

  it("forgets a stream when it closes", () => {
    const t = new SyncTracker();
    t.record(sent("v1", "1"));
    t.record({ ...base, type: "stream-close" });
    expect(t.nodes().size).toBe(0);
  });

  it("ranks statuses ERROR > STALE > SYNCED > NOT SENT", () => {
    expect(worstStatus([SyncStatus.SYNCED, SyncStatus.NOT_SENT])).toBe(SyncStatus.SYNCED);
    expect(worstStatus([SyncStatus.SYNCED, SyncStatus.STALE])).toBe(SyncStatus.STALE);
    expect(worstStatus([SyncStatus.STALE, SyncStatus.ERROR, SyncStatus.SYNCED])).toBe(SyncStatus.ERROR);
    expect(worstStatus([])).toBe(SyncStatus.NOT_SENT);
  });
});
