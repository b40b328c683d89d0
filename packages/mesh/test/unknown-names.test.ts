import { TypeUrl } from "@meshlet/xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MeshControlPlane, startControlPlane } from "./support/control-plane.js";
import { type MeshClient, startClient } from "./support/mesh-fixture.js";

// A real grpc-js-xds client (@grpc/grpc-js-xds) dialling a host no service has, through a real
// control plane (MeshController + XdsServer). Istio generates nothing for a name it does not know;
// to a SotW gRPC client a requested LDS/CDS name absent from the response does not exist (gRFC A27),
// and the server holds no resource for the name. Observed with @grpc/grpc-js-xds 1.14: the RPC does
// not fail with UNAVAILABLE on that response but waits until its deadline (DEADLINE_EXCEEDED) —
// the test pins what the server sends and that the RPC never reaches a backend; see docs/mesh.md.

const UNKNOWN = "nosuch.test.svc.cluster.local:7070";
let plane: MeshControlPlane;
let client: MeshClient | undefined;

beforeAll(async () => {
  plane = await startControlPlane(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: test }
spec:
  hosts: [echo.test.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1 }]
`);
  client = await startClient("grpc-js", {
    serverUri: `127.0.0.1:${plane.port}`,
    podName: "client-js",
    namespace: "test",
    ip: "127.0.0.1",
    labels: { app: "client" },
  });
}, 60_000);
afterAll(async () => {
  await client?.close();
  await plane?.close();
});

describe("a host no service has (grpc-js-xds)", () => {
  it("answers the client's LDS request without the name, and the RPC never succeeds", async () => {
    const [result] = await (client as MeshClient).call(`xds:///${UNKNOWN}`, { count: 1, timeoutMs: 10_000 });
    // UNAVAILABLE (14) per gRFC A27, or DEADLINE_EXCEEDED (4) as grpc-js-xds 1.14 reports it.
    expect(result?.ok).toBe(false);
    expect([4, 14]).toContain(result?.ok === false ? result.code : 0);
    const nodeId = (client as MeshClient).nodeId;
    // The server answered the client's LDS request, without the name.
    const responses = plane.events.filter(
      (e) => e.type === "response" && e.typeUrl === TypeUrl.Listener && e.node?.id === nodeId,
    );
    expect(responses.length).toBeGreaterThan(0);
    for (const r of responses) if (r.type === "response") expect(r.resources).not.toContain(UNKNOWN);
    // The client did ask for it by that name.
    const requested = plane.events.some(
      (e) => e.type === "request" && e.typeUrl === TypeUrl.Listener && e.resourceNames.includes(UNKNOWN),
    );
    expect(requested).toBe(true);
  }, 90_000);
});
