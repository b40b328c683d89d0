import type { ConfigSnapshot } from "@meshlet/config";
import { SnapshotCache, TypeUrl, type XdsEvent } from "@meshlet/xds";
import { Subject } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { describe, expect, it } from "vitest";
import { MeshController } from "../controller/mesh-controller.js";
import { bookinfoSnapshot } from "../testing/bookinfo.js";
import { envoyGenerators, toTranslationWarning } from "./controller-generator.js";

// The Envoy generators plugged into MeshController: an Envoy sidecar subscribing over ADS gets its
// listeners, routes and clusters in the snapshot cache (virtual time; nothing waits on the clock).

const PRODUCTPAGE = "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local";

describe("envoyGenerators with MeshController", () => {
  it("serves an Envoy sidecar its config and rebuilds it on a VirtualService change", () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    const config = new Subject<ConfigSnapshot>();
    const events = new Subject<XdsEvent>();
    const cache = new SnapshotCache();
    const controller = new MeshController({
      config,
      cache,
      clock: scheduler,
      debounceMs: 100,
      generators: envoyGenerators(),
    });
    controller.attach({ events$: events });
    controller.start();
    config.next(bookinfoSnapshot(["destination-rule-all.yaml"]));
    scheduler.flush();
    const node = {
      id: PRODUCTPAGE,
      metadata: {
        NAMESPACE: "default",
        LABELS: { app: "productpage", version: "v1" },
        SERVICE_ACCOUNT: "bookinfo-productpage",
        INSTANCE_IPS: "10.244.1.10",
      },
    };
    const base = { streamId: 1, protocol: "sotw" as const, node: node as never };
    events.next({ ...base, type: "stream-open", service: "ads", peer: "127.0.0.1:1" });
    events.next({
      ...base,
      type: "request",
      typeUrl: TypeUrl.Listener,
      versionInfo: "",
      responseNonce: "",
      resourceNames: [],
      unsubscribe: [],
      stale: false,
    });
    scheduler.flush();
    const snap = cache.getSnapshot(PRODUCTPAGE);
    expect([...(snap?.resources(TypeUrl.Listener).keys() ?? [])]).toContain("virtualInbound");
    expect([...(snap?.resources(TypeUrl.Cluster).keys() ?? [])]).toContain(
      "outbound|9080|v2|reviews.default.svc.cluster.local",
    );
    expect([...(snap?.resources(TypeUrl.RouteConfiguration).keys() ?? [])]).toContain("9080");
  });

  it("keeps the Envoy warning code in the translation warning", () => {
    expect(
      toTranslationWarning({
        code: "missing-secret",
        message: "m",
        source: { kind: "Gateway", namespace: "a", name: "b" },
      }),
    ).toEqual({
      code: "INVALID_CONFIG",
      message: "missing-secret: m",
      config: { kind: "Gateway", namespace: "a", name: "b" },
      client: "envoy",
    });
  });
});
