import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { AttributeContextSchema } from "@meshlet/api/envoy/service/auth/v3/attribute_context_pb";
import { CheckRequestSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { describe, expect, it } from "vitest";
import { PolicyEngine } from "../policy-engine.js";
import { ExtAuthzServer } from "./ext-authz-server.js";

describe("ExtAuthzServer.check", () => {
  it("lets enrich() set the workload that policy scoping uses", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [{ metadata: { name: "allow-nothing", namespace: "payments" }, spec: {} }],
    });
    const plain = new ExtAuthzServer({ engine });
    const enriched = new ExtAuthzServer({
      engine,
      enrich: (a) => ({
        ...a,
        destination: { ...a.destination, namespace: "payments", labels: { app: "ledger" } },
      }),
    });
    const req = create(CheckRequestSchema, { attributes: create(AttributeContextSchema, {}) });
    expect((await plain.check(req)).status?.code).toBe(status.OK);
    const denied = await enriched.check(req);
    expect(denied.status?.code).toBe(status.PERMISSION_DENIED);
    expect(denied.dynamicMetadata).toEqual({ reason: "no-matching-allow" });
  });

  it("answers UNAUTHENTICATED with 401 when a JWT is invalid", async () => {
    const engine = new PolicyEngine({
      requestAuthentications: [
        {
          metadata: { name: "jwt", namespace: "default" },
          spec: { jwtRules: [{ issuer: "https://i", jwks: JSON.stringify({ keys: [] }) }] },
        },
      ],
    });
    const req = create(CheckRequestSchema, {
      attributes: { request: { http: { path: "/", headers: { authorization: "Bearer x.y.z" } } } },
    });
    const res = await new ExtAuthzServer({ engine }).check(req);
    expect(res.status?.code).toBe(status.UNAUTHENTICATED);
    expect(res.httpResponse.case === "deniedResponse" && res.httpResponse.value.status?.code).toBe(401);
  });
});
