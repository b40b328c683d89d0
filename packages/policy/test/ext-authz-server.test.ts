import { create } from "@bufbuild/protobuf";
import { type ServiceError, status } from "@grpc/grpc-js";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import {
  AttributeContext_HttpRequestSchema,
  AttributeContext_PeerSchema,
  AttributeContext_RequestSchema,
  AttributeContextSchema,
} from "@meshlet/api/envoy/service/auth/v3/attribute_context_pb";
import {
  type CheckRequest,
  CheckRequestSchema,
  CheckResponseSchema,
} from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuthorizationPolicy,
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
  ExtAuthzServer,
  type ListeningServer,
  PolicyEngine,
} from "../src/index.js";
import { TestGrpcClient } from "./grpc-client.js";

// Real gRPC over loopback: the server is what Envoy's ext_authz filter would call.
const CHECK = "/envoy.service.auth.v3.Authorization/Check";

function checkRequest(o: {
  path: string;
  method?: string;
  principal?: string;
  headers?: Record<string, string>;
}): CheckRequest {
  const peer = (principal: string, ip: string, port: number, labels: Record<string, string> = {}) =>
    create(AttributeContext_PeerSchema, {
      principal,
      labels,
      address: create(AddressSchema, {
        address: {
          case: "socketAddress",
          value: create(SocketAddressSchema, {
            address: ip,
            portSpecifier: { case: "portValue", value: port },
          }),
        },
      }),
    });
  return create(CheckRequestSchema, {
    attributes: create(AttributeContextSchema, {
      // What the mesh puts in the ext_authz filter's context_extensions for this workload.
      contextExtensions: {
        [CONTEXT_EXTENSION_NAMESPACE]: "foo",
        [CONTEXT_EXTENSION_LABELS]: JSON.stringify({ app: "httpbin" }),
      },
      source: peer(o.principal ?? "", "10.0.0.7", 43210),
      destination: peer("spiffe://cluster.local/ns/foo/sa/httpbin", "10.1.0.1", 8080, { app: "httpbin" }),
      request: create(AttributeContext_RequestSchema, {
        http: create(AttributeContext_HttpRequestSchema, {
          method: o.method ?? "GET",
          path: o.path,
          host: "httpbin.foo.svc",
          headers: o.headers ?? {},
        }),
      }),
    }),
  });
}

const policies: AuthorizationPolicy[] = [
  {
    metadata: { name: "teapot", namespace: "foo" },
    spec: {
      action: "CUSTOM",
      provider: { name: "teapot" },
      rules: [{ to: [{ operation: { paths: ["/coffee"] } }] }],
    },
  },
  {
    metadata: { name: "ext", namespace: "foo" },
    spec: {
      action: "CUSTOM",
      provider: { name: "header-stamper" },
      rules: [{ to: [{ operation: { paths: ["/stamped"] } }] }],
    },
  },
  {
    metadata: { name: "allow-sleep", namespace: "foo" },
    spec: {
      selector: { matchLabels: { app: "httpbin" } },
      rules: [
        {
          from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }],
          to: [{ operation: { paths: ["/info*", "/stamped"] } }],
        },
      ],
    },
  },
];

describe("ExtAuthzServer over gRPC", () => {
  let engine: PolicyEngine;
  let server: ListeningServer;
  let client: TestGrpcClient;

  beforeAll(async () => {
    engine = new PolicyEngine({ authorizationPolicies: policies });
    await engine.registerAdapter({
      name: "header-stamper",
      kind: "check",
      check: async () => ({
        allowed: true,
        requestHeaders: { "x-stamped": "yes" },
        responseHeaders: { "x-trace": "1" },
      }),
    });
    await engine.registerAdapter({
      name: "teapot",
      kind: "check",
      check: async () => ({
        allowed: false,
        status: 418,
        body: "I'm a teapot",
        responseHeaders: { "x-brew": "tea" },
      }),
    });
    server = await new ExtAuthzServer({ engine }).listen({ address: "127.0.0.1:0" });
    client = new TestGrpcClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await engine?.close();
  });

  it("answers OK with header mutations when a policy allows", async () => {
    const res = await client.call(
      CHECK,
      CheckRequestSchema,
      CheckResponseSchema,
      checkRequest({ path: "/stamped", principal: "spiffe://cluster.local/ns/default/sa/sleep" }),
    );
    expect(res.status?.code).toBe(status.OK);
    expect(res.httpResponse.case).toBe("okResponse");
    const ok = res.httpResponse.case === "okResponse" ? res.httpResponse.value : undefined;
    expect(ok?.headers.map((h) => [h.header?.key, h.header?.value])).toEqual([["x-stamped", "yes"]]);
    expect(ok?.responseHeadersToAdd.map((h) => h.header?.key)).toEqual(["x-trace"]);
    expect(res.dynamicMetadata).toMatchObject({ reason: "allow-policy", policy: "foo/allow-sleep", rule: 0 });
  });

  it("answers Denied with status 403 and a body when no ALLOW rule matches", async () => {
    const res = await client.call(
      CHECK,
      CheckRequestSchema,
      CheckResponseSchema,
      checkRequest({ path: "/admin", principal: "spiffe://cluster.local/ns/default/sa/sleep" }),
    );
    expect(res.status?.code).toBe(status.PERMISSION_DENIED);
    expect(res.httpResponse.case).toBe("deniedResponse");
    const denied = res.httpResponse.case === "deniedResponse" ? res.httpResponse.value : undefined;
    expect(denied?.status?.code).toBe(403);
    expect(denied?.body).toBe("RBAC: access denied");
  });

  it("answers Denied with the CUSTOM provider's status, headers and body", async () => {
    const res = await client.call(
      CHECK,
      CheckRequestSchema,
      CheckResponseSchema,
      checkRequest({ path: "/coffee" }),
    );
    expect(res.status?.code).toBe(status.PERMISSION_DENIED);
    const denied = res.httpResponse.case === "deniedResponse" ? res.httpResponse.value : undefined;
    expect(denied?.status?.code).toBe(418);
    expect(denied?.body).toBe("I'm a teapot");
    expect(denied?.headers.map((h) => [h.header?.key, h.header?.value])).toEqual([["x-brew", "tea"]]);
    expect(res.dynamicMetadata).toMatchObject({ reason: "custom-denied", policy: "foo/teapot" });
  });

  it("answers INVALID_ARGUMENT for a request without attributes and keeps serving", async () => {
    const err = (await client
      .call(CHECK, CheckRequestSchema, CheckResponseSchema, create(CheckRequestSchema, {}))
      .catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("CheckRequest.attributes is missing");
    const after = await client.call(
      CHECK,
      CheckRequestSchema,
      CheckResponseSchema,
      checkRequest({ path: "/info", principal: "spiffe://cluster.local/ns/default/sa/sleep" }),
    );
    expect(after.status?.code).toBe(status.OK);
  });

  it("rejects undecodable bytes with a gRPC error, not a crash", async () => {
    const err = (await client
      .raw(CHECK, Buffer.from([0x0a, 0xff, 0xff, 0xff]), CheckResponseSchema)
      .catch((e: unknown) => e)) as ServiceError;
    expect(err.code).not.toBe(status.OK);
    expect(typeof err.code).toBe("number");
    const after = await client.call(
      CHECK,
      CheckRequestSchema,
      CheckResponseSchema,
      checkRequest({ path: "/info", principal: "spiffe://cluster.local/ns/default/sa/sleep" }),
    );
    expect(after.status?.code).toBe(status.OK);
  });
});

describe("ExtAuthzServer shutdown", () => {
  it("lets an in-flight Check finish on close()", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        {
          metadata: { name: "slow", namespace: "foo" },
          spec: { action: "CUSTOM", provider: { name: "slow" }, rules: [{}] },
        },
      ],
    });
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    await engine.registerAdapter(
      {
        name: "slow",
        kind: "check",
        check: () =>
          new Promise((resolve) => {
            entered();
            release = () => resolve({ allowed: true });
          }),
      },
      { timeoutMs: 30_000 },
    );
    const server = await new ExtAuthzServer({ engine }).listen();
    const client = new TestGrpcClient(server.port);
    try {
      const pending = client.call(
        CHECK,
        CheckRequestSchema,
        CheckResponseSchema,
        checkRequest({ path: "/x" }),
      );
      await inside;
      const closing = server.close(30_000);
      release();
      expect((await pending).status?.code).toBe(status.OK);
      await closing;
    } finally {
      client.close();
      await server.close(0);
      await engine.close();
    }
  });
});
