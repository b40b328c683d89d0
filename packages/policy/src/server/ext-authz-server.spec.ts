import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { AttributeContextSchema } from "@meshlet/api/envoy/service/auth/v3/attribute_context_pb";
import { type CheckRequest, CheckRequestSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { describe, expect, it } from "vitest";
import {
  attributesFromCheckRequest,
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
} from "../attributes.js";
import { PolicyEngine } from "../policy-engine.js";
import { ExtAuthzServer } from "./ext-authz-server.js";

const socket = (ip: string, port: number) =>
  create(AddressSchema, {
    address: {
      case: "socketAddress",
      value: create(SocketAddressSchema, { address: ip, portSpecifier: { case: "portValue", value: port } }),
    },
  });

/** A CheckRequest as Envoy sends it: `ext` are the route's context_extensions, `headers` the client's. */
function request(o: {
  ext?: Record<string, string>;
  headers?: Record<string, string>;
  peer?: string;
}): CheckRequest {
  return create(CheckRequestSchema, {
    attributes: create(AttributeContextSchema, {
      source: { address: socket(o.peer ?? "10.0.0.7", 40000) },
      destination: {
        address: socket("10.1.0.1", 8080),
        principal: "spiffe://cluster.local/ns/foo/sa/httpbin",
      },
      contextExtensions: o.ext ?? {},
      request: { http: { method: "GET", path: "/", host: "httpbin.foo.svc", headers: o.headers ?? {} } },
    }),
  });
}

const workload = {
  [CONTEXT_EXTENSION_NAMESPACE]: "foo",
  [CONTEXT_EXTENSION_LABELS]: JSON.stringify({ app: "httpbin" }),
};

const denyFromDocNet = new PolicyEngine({
  authorizationPolicies: [
    {
      metadata: { name: "deny-doc-net", namespace: "foo" },
      spec: { action: "DENY", rules: [{ from: [{ source: { remoteIpBlocks: ["203.0.113.0/24"] } }] }] },
    },
  ],
});

describe("ExtAuthzServer trusts only what Envoy asserts", () => {
  it("denies a request whose context extensions do not name the workload, never assuming default", async () => {
    // No policy anywhere would allow-by-default; without the workload the answer must still be no.
    const engine = new PolicyEngine();
    const res = await new ExtAuthzServer({ engine }).check(request({}));
    expect(res.status?.code).toBe(status.PERMISSION_DENIED);
    expect(res.dynamicMetadata).toEqual({ reason: "missing-workload" });
    const onlyNamespace = await new ExtAuthzServer({ engine }).check(
      request({ ext: { [CONTEXT_EXTENSION_NAMESPACE]: "foo" } }),
    );
    expect(onlyNamespace.status?.code).toBe(status.PERMISSION_DENIED);
    const ok = await new ExtAuthzServer({ engine }).check(request({ ext: workload }));
    expect(ok.status?.code).toBe(status.OK);
  });

  it("denies when the labels extension is not a JSON object of strings", async () => {
    const res = await new ExtAuthzServer({ engine: new PolicyEngine() }).check(
      request({ ext: { ...workload, [CONTEXT_EXTENSION_LABELS]: "app=httpbin" } }),
    );
    expect(res.status?.code).toBe(status.PERMISSION_DENIED);
    expect(res.dynamicMetadata).toEqual({ reason: "missing-workload" });
  });

  it("scopes policies by the workload in the context extensions, not by the principal", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [{ metadata: { name: "allow-nothing", namespace: "payments" }, spec: {} }],
    });
    const server = new ExtAuthzServer({ engine });
    // The destination principal says ns/foo; the mesh says the workload is in payments.
    const res = await server.check(
      request({ ext: { ...workload, [CONTEXT_EXTENSION_NAMESPACE]: "payments" } }),
    );
    expect(res.status?.code).toBe(status.PERMISSION_DENIED);
    expect(res.dynamicMetadata).toEqual({ reason: "no-matching-allow" });
  });

  it("never takes remote.ip from a client's x-envoy-external-address", async () => {
    const server = new ExtAuthzServer({ engine: denyFromDocNet });
    const spoofed = request({ ext: workload, headers: { "x-envoy-external-address": "203.0.113.9" } });
    expect(attributesFromCheckRequest(spoofed).remote?.ip).toBe("10.0.0.7");
    expect((await server.check(spoofed)).status?.code).toBe(status.OK);
    // Even with trusted hops configured: Envoy leaves a client's value in place on internal requests.
    const hops = new ExtAuthzServer({ engine: denyFromDocNet, xffNumTrustedHops: 1 });
    expect((await hops.check(spoofed)).status?.code).toBe(status.OK);
  });

  it("reads x-forwarded-for only with xff_num_trusted_hops, as Envoy computes the trusted client address", async () => {
    // envoyproxy/envoy docs/root/configuration/http/http_conn_man/headers.rst: with N trusted hops
    // the trusted client is the (N+1)th address from the right of the XFF Envoy forwards.
    const xff = request({ ext: workload, headers: { "x-forwarded-for": "203.0.113.9, 198.51.100.4" } });
    expect(attributesFromCheckRequest(xff).remote?.ip).toBe("10.0.0.7");
    expect(attributesFromCheckRequest(xff, { xffNumTrustedHops: 0 }).remote?.ip).toBe("198.51.100.4");
    expect(attributesFromCheckRequest(xff, { xffNumTrustedHops: 1 }).remote?.ip).toBe("203.0.113.9");
    // Fewer addresses than hops + 1: the direct peer (Envoy's fallback).
    expect(attributesFromCheckRequest(xff, { xffNumTrustedHops: 2 }).remote?.ip).toBe("10.0.0.7");
    expect((await new ExtAuthzServer({ engine: denyFromDocNet }).check(xff)).status?.code).toBe(status.OK);
    expect(
      (await new ExtAuthzServer({ engine: denyFromDocNet, xffNumTrustedHops: 1 }).check(xff)).status?.code,
    ).toBe(status.PERMISSION_DENIED);
  });

  it("refuses a negative or fractional xffNumTrustedHops", () => {
    expect(() => new ExtAuthzServer({ engine: denyFromDocNet, xffNumTrustedHops: -1 })).toThrow(
      /xffNumTrustedHops/,
    );
    expect(() => new ExtAuthzServer({ engine: denyFromDocNet, xffNumTrustedHops: 1.5 })).toThrow(
      /xffNumTrustedHops/,
    );
  });
});

describe("ExtAuthzServer.check", () => {
  it("lets enrich() set the workload that policy scoping uses", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [{ metadata: { name: "allow-nothing", namespace: "payments" }, spec: {} }],
    });
    const enriched = new ExtAuthzServer({
      engine,
      enrich: (a) => ({
        ...a,
        destination: { ...a.destination, namespace: "payments", labels: { app: "ledger" } },
      }),
    });
    const req = create(CheckRequestSchema, { attributes: create(AttributeContextSchema, {}) });
    const denied = await enriched.check(req);
    expect(denied.status?.code).toBe(status.PERMISSION_DENIED);
    expect(denied.dynamicMetadata).toEqual({ reason: "no-matching-allow" });
  });

  it("answers UNAUTHENTICATED with 401 when a JWT is invalid", async () => {
    const engine = new PolicyEngine({
      requestAuthentications: [
        {
          metadata: { name: "jwt", namespace: "foo" },
          spec: { jwtRules: [{ issuer: "https://i", jwks: JSON.stringify({ keys: [] }) }] },
        },
      ],
    });
    const req = request({ ext: workload, headers: { authorization: "Bearer x.y.z" } });
    const res = await new ExtAuthzServer({ engine }).check(req);
    expect(res.status?.code).toBe(status.UNAUTHENTICATED);
    expect(res.httpResponse.case === "deniedResponse" && res.httpResponse.value.status?.code).toBe(401);
  });
});
