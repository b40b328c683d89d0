import { describe, expect, it } from "vitest";
import { capabilitiesOf, ENVOY_CAPABILITIES, grpcClientOf } from "./capabilities.js";

// User agents as the clients send them: grpc-js-xds `xds-client.ts` ("gRPC Node Pure JS"), C-core
// `GrpcXdsClient` (what Debian's python3-grpcio 1.51 sent in meshlet's end-to-end tests).

describe("capabilitiesOf", () => {
  it("serves Envoy everything Istio emits", () => {
    expect(capabilitiesOf({ userAgentName: "envoy" }, false)).toBe(ENVOY_CAPABILITIES);
  });

  it("tells the gRPC libraries apart by user agent", () => {
    expect(grpcClientOf({ userAgentName: "gRPC Node Pure JS" })).toBe("grpc-js");
    expect(grpcClientOf({ userAgentName: "gRPC C-core linux Python" })).toBe("grpc-c-core");
    expect(grpcClientOf({ userAgentName: "gRPC Go" })).toBe("grpc-go");
    expect(grpcClientOf({ userAgentName: "gRPC Java" })).toBe("grpc-java");
    expect(grpcClientOf({})).toBe("grpc-unknown");
  });

  it("keeps grpc-js without RBAC unless its node says the experimental flag is on", () => {
    const js = { userAgentName: "gRPC Node Pure JS" };
    expect(capabilitiesOf(js, true).rbac).toBe(false);
    expect(capabilitiesOf({ ...js, metadata: { GRPC_XDS_EXPERIMENTAL_RBAC: "true" } }, true).rbac).toBe(true);
    expect(capabilitiesOf(js, true).lbPolicies).toEqual(new Set(["ROUND_ROBIN", "RING_HASH"]));
  });

  it("keeps C-core 29 off RING_HASH and route timeouts, and newer C-core on them", () => {
    const old = capabilitiesOf(
      {
        userAgentName: "gRPC C-core linux Python",
        userAgentVersionType: { case: "userAgentVersion", value: "C-core 29.0.0 Python 1.51.1" },
      },
      true,
    );
    expect(old).toMatchObject({
      client: "grpc-c-core",
      rbac: true,
      routeTimeouts: false,
      headerMatcher: "legacy",
    });
    expect(old.lbPolicies).toEqual(new Set(["ROUND_ROBIN"]));
    const newer = capabilitiesOf(
      {
        userAgentName: "gRPC C-core linux",
        userAgentVersionType: { case: "userAgentVersion", value: "C-core 45.0.0" },
      },
      true,
    );
    expect(newer.routeTimeouts).toBe(true);
    expect(newer.lbPolicies.has("RING_HASH")).toBe(true);
    expect(newer.lbPolicies.has("LEAST_REQUEST")).toBe(false);
  });
});
