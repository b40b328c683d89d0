import { create } from "@bufbuild/protobuf";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { HeaderMapSchema, HeaderValueSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  AttributeContext_HttpRequestSchema,
  AttributeContext_PeerSchema,
  AttributeContext_RequestSchema,
  AttributeContext_TLSSessionSchema,
  AttributeContextSchema,
} from "@meshlet/api/envoy/service/auth/v3/attribute_context_pb";
import { CheckRequestSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { describe, expect, it } from "vitest";
import {
  attributesFromCheckRequest,
  attributeValues,
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
} from "./attributes.js";
import { PolicyError } from "./policy-error.js";

const address = (ip: string, port: number) =>
  create(AddressSchema, {
    address: {
      case: "socketAddress",
      value: create(SocketAddressSchema, { address: ip, portSpecifier: { case: "portValue", value: port } }),
    },
  });

describe("attributesFromCheckRequest", () => {
  it("maps an Envoy CheckRequest to Istio attributes", () => {
    const req = create(CheckRequestSchema, {
      attributes: create(AttributeContextSchema, {
        source: create(AttributeContext_PeerSchema, {
          principal: "spiffe://cluster.local/ns/default/sa/sleep",
          address: address("10.0.0.7", 5555),
        }),
        destination: create(AttributeContext_PeerSchema, {
          principal: "spiffe://cluster.local/ns/foo/sa/httpbin",
          address: address("10.1.0.1", 8080),
        }),
        contextExtensions: {
          [CONTEXT_EXTENSION_NAMESPACE]: "foo",
          [CONTEXT_EXTENSION_LABELS]: '{"app":"httpbin"}',
        },
        request: create(AttributeContext_RequestSchema, {
          http: create(AttributeContext_HttpRequestSchema, {
            method: "POST",
            path: "/data?x=1",
            host: "httpbin.foo:8000",
            scheme: "https",
            protocol: "HTTP/2",
            id: "req-1",
            headers: { "X-Env": "prod", "x-envoy-external-address": "203.0.113.9" },
            headerMap: create(HeaderMapSchema, {
              headers: [
                create(HeaderValueSchema, { key: "x-raw", rawValue: new TextEncoder().encode("bytes") }),
              ],
            }),
          }),
        }),
        tlsSession: create(AttributeContext_TLSSessionSchema, { sni: "httpbin.foo.svc" }),
      }),
    });
    const a = attributesFromCheckRequest(req);
    expect(a).toEqual({
      source: {
        principal: "cluster.local/ns/default/sa/sleep",
        namespace: "default",
        ip: "10.0.0.7",
        port: 5555,
      },
      destination: {
        principal: "cluster.local/ns/foo/sa/httpbin",
        namespace: "foo",
        ip: "10.1.0.1",
        port: 8080,
        labels: { app: "httpbin" },
      },
      // x-envoy-external-address is a client header unless Envoy set it: not trusted.
      remote: { ip: "10.0.0.7" },
      request: {
        method: "POST",
        path: "/data",
        query: "x=1",
        host: "httpbin.foo:8000",
        scheme: "https",
        protocol: "HTTP/2",
        id: "req-1",
        headers: { "x-env": "prod", "x-envoy-external-address": "203.0.113.9", "x-raw": "bytes" },
      },
      connection: { sni: "httpbin.foo.svc" },
    });
    expect(attributeValues(a, "request.headers[X-Env]")).toEqual(["prod"]);
    expect(attributeValues(a, "source.namespace")).toEqual(["default"]);
    expect(attributeValues(a, "destination.port")).toEqual(["8080"]);
  });

  it("takes the workload from the context extensions only, never from the principal or a default", () => {
    const req = (contextExtensions: Record<string, string>) =>
      create(CheckRequestSchema, {
        attributes: create(AttributeContextSchema, {
          destination: create(AttributeContext_PeerSchema, {
            principal: "spiffe://cluster.local/ns/foo/sa/httpbin",
            address: address("10.1.0.1", 80),
          }),
          contextExtensions,
        }),
      });
    expect(
      attributesFromCheckRequest(req({ [CONTEXT_EXTENSION_NAMESPACE]: "shop" })).destination,
    ).toMatchObject({
      namespace: "shop",
    });
    const none = attributesFromCheckRequest(req({})).destination;
    expect(none?.namespace).toBeUndefined();
    expect(none?.labels).toBeUndefined();
    // The key an earlier version read, `namespace`, is not one the mesh sets.
    expect(attributesFromCheckRequest(req({ namespace: "shop" })).destination?.namespace).toBeUndefined();
  });

  it("rejects a request without attributes with invalid-attributes", () => {
    expect(() => attributesFromCheckRequest(create(CheckRequestSchema, {}))).toThrow(PolicyError);
  });
});
