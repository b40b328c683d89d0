import { TypeUrl } from "@meshlet/xds";
import { AdsClient } from "@meshlet/xds/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MeshControlPlane, startControlPlane } from "./support/control-plane.js";

// The cap on resource names per type and stream, through a real control plane (MeshController +
// XdsServer on 127.0.0.1, the server given the controller's cap as `meshlet serve` does) and a real
// gRPC stream (grpc-js, @meshlet/xds's AdsClient) speaking as a proxyless node: over the cap, the
// stream ends with RESOURCE_EXHAUSTED (gRPC status 8) naming the node and the type.

const NODE = "sidecar~127.0.0.1~client-0.test~test.svc.cluster.local";
let plane: MeshControlPlane;

beforeAll(async () => {
  plane = await startControlPlane(
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: test }
spec:
  hosts: [echo.test.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1 }]
`,
    { maxResourceNamesPerType: 3 },
  );
});
afterAll(async () => {
  await plane?.close();
});

function client(): AdsClient {
  return AdsClient.connect({
    address: `127.0.0.1:${plane.port}`,
    node: { id: NODE, metadata: { GENERATOR: "grpc", NAMESPACE: "test" } },
  });
}

describe("resource names per type and stream", () => {
  it("refuses a proxyless client's LDS subscription over the cap with RESOURCE_EXHAUSTED", async () => {
    const c = client();
    try {
      c.request({ typeUrl: TypeUrl.Listener, resourceNames: ["a:1", "b:2", "c:3", "d:4"] });
      const error = (await c.next(TypeUrl.Listener, 30_000).catch((e: unknown) => e)) as {
        code?: number;
        details?: string;
      };
      expect(error.code).toBe(8);
      expect(error.details).toBe(
        `node "${NODE}" subscribed to 4 resource names of ${TypeUrl.Listener} on one stream; the limit is 3 per type and stream — subscribe with a wildcard, or raise maxResourceNamesPerType`,
      );
      expect(plane.controller.connectedProxy(NODE)).toBeUndefined();
    } finally {
      c.close();
    }
  });

  it("serves a subscription at the cap", async () => {
    const c = client();
    try {
      // Three names of one service (short names resolve in the client's namespace, `test`).
      const names = ["echo:7070", "echo.test:7070", "echo.test.svc.cluster.local:7070"];
      c.request({ typeUrl: TypeUrl.Listener, resourceNames: names });
      const response = await c.next(TypeUrl.Listener, 30_000);
      expect(response.resources.map((r) => r.name).sort()).toEqual([...names].sort());
      expect(c.error).toBeUndefined();
    } finally {
      c.close();
    }
  });
});
