import { create } from "@bufbuild/protobuf";
import { ProxySchema, SyncStatus, TypeSyncSchema } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { describe, expect, it } from "vitest";
import { proxyStatusTable, statusText } from "./proxy-status.js";

// istioctl's words and columns (istio/istio istioctl/pkg/writer/pilot/status.go): `xdsStatus(sent,
// acked)` — nothing sent: NOT SENT; sent == acked: SYNCED; nothing ever ACKed: STALE (Never
// Acknowledged); else STALE — and the header NAME CLUSTER CDS LDS EDS RDS ECDS ISTIOD VERSION.
// ERROR is CSDS's ConfigStatus for a NACKed last response (the XDS writer prints those names).

const t = (status: SyncStatus, versionAcked = "") => create(TypeSyncSchema, { status, versionAcked });

describe("proxy-status words", () => {
  it("maps each state to istioctl's word", () => {
    expect(statusText(undefined)).toBe("NOT SENT");
    expect(statusText(t(SyncStatus.NOT_SENT))).toBe("NOT SENT");
    expect(statusText(t(SyncStatus.SYNCED, "v1"))).toBe("SYNCED");
    expect(statusText(t(SyncStatus.STALE, ""))).toBe("STALE (Never Acknowledged)");
    expect(statusText(t(SyncStatus.STALE, "v1"))).toBe("STALE");
    expect(statusText(t(SyncStatus.ERROR, "v1"))).toBe("ERROR");
  });

  it("prints istioctl's columns; a type the proxy never asked for reads NOT SENT; VERSION falls back to the client", () => {
    const p = create(ProxySchema, {
      id: "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local",
      clusterId: "Kubernetes",
      client: "envoy",
      clientVersion: "",
      types: [
        { type: "CDS", status: SyncStatus.SYNCED, versionAcked: "3" },
        { type: "LDS", status: SyncStatus.STALE, versionAcked: "2" },
        { type: "EDS", status: SyncStatus.STALE },
        { type: "RDS", status: SyncStatus.ERROR, versionAcked: "1" },
      ],
    });
    const rows = proxyStatusTable([p], "meshlet-0").map((l) => l.split(/\s{2,}/));
    expect(rows).toEqual([
      ["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"],
      [
        p.id,
        "Kubernetes",
        "SYNCED",
        "STALE",
        "STALE (Never Acknowledged)",
        "ERROR",
        "NOT SENT",
        "meshlet-0",
        "envoy",
      ],
    ]);
  });
});
