import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { SpiffeId, type TokenVerifier } from "@meshlet/ca";
import { type AuthorizeRequest, GrpcStatus } from "@meshlet/xds";
import { describe, expect, it } from "vitest";
import { authenticateNodes } from "./node-authentication.js";

// The order and the failures follow istiod's xDS authentication (istio/istio
// pilot/pkg/xds/authentication.go): a verified client certificate first, then the bearer token;
// a credential that cannot be verified refuses the stream. The binding itself is the
// MeshController's (stubbed here to record what it was given).

const node = create(NodeSchema, { id: "sidecar~10.0.0.1~a-0.shop~shop.svc.cluster.local" });
const request = (over: Partial<AuthorizeRequest>): AuthorizeRequest => ({
  node,
  peer: "127.0.0.1:5000",
  certificate: undefined,
  spiffeId: undefined,
  metadata: {},
  service: "ads",
  protocol: "sotw",
  ...over,
});
const verifier = (answer: (token: string) => string): TokenVerifier => ({
  verify: async (token) => ({ identities: [SpiffeId.parse(answer(token))] }),
});

describe("authenticateNodes", () => {
  it("binds the node to the identity a token proves, and to a verified certificate before any token", async () => {
    const seen: Array<string | undefined> = [];
    const hook = authenticateNodes({
      tokenVerifier: verifier(() => "spiffe://cluster.local/ns/shop/sa/a"),
      authorize: (r) => {
        seen.push(r.spiffeId);
        return undefined;
      },
    });
    expect(await hook(request({ metadata: { authorization: "Bearer abc.def.ghi" } }))).toBeUndefined();
    expect(
      await hook(
        request({
          spiffeId: "spiffe://cluster.local/ns/shop/sa/b",
          metadata: { authorization: "Bearer abc" },
        }),
      ),
    ).toBeUndefined();
    expect(seen).toEqual(["spiffe://cluster.local/ns/shop/sa/a", "spiffe://cluster.local/ns/shop/sa/b"]);
  });

  it("refuses, UNAUTHENTICATED, without a credential, with a malformed header, and when the verifier fails", async () => {
    const failing: TokenVerifier = {
      verify: async () => {
        throw new Error("TokenReview: API server answered 503");
      },
    };
    const allow = () => undefined;
    const none = await authenticateNodes({ tokenVerifier: failing, authorize: allow })(request({}));
    expect(none).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    expect(none && "message" in none ? none.message : "").toContain("no credential");
    const basic = await authenticateNodes({ tokenVerifier: failing, authorize: allow })(
      request({ metadata: { authorization: "Basic dXNlcjpwYXNz" } }),
    );
    expect(basic).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    const down = await authenticateNodes({ tokenVerifier: failing, authorize: allow })(
      request({ metadata: { authorization: "Bearer abc" } }),
    );
    expect(down).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    expect(down && "message" in down ? down.message : "").toContain("503");
    // Without a verifier a token is no credential at all.
    const noVerifier = await authenticateNodes({ authorize: allow })(
      request({ metadata: { authorization: "Bearer abc" } }),
    );
    expect(noVerifier).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
  });

  it("passes the binding's refusal through", async () => {
    const refusal = { code: GrpcStatus.PERMISSION_DENIED, message: "no peer identity matches" };
    const hook = authenticateNodes({
      tokenVerifier: verifier(() => "spiffe://cluster.local/ns/shop/sa/other"),
      authorize: () => refusal,
    });
    expect(await hook(request({ metadata: { authorization: "Bearer abc" } }))).toEqual(refusal);
  });

  it("reads the Bearer scheme case-insensitively and refuses anything but exactly one token", async () => {
    // RFC 7235 2.1: the auth-scheme is case-insensitive; RFC 6750 2.1: "Bearer" 1*SP b64token.
    const seen: string[] = [];
    const hook = authenticateNodes({
      tokenVerifier: {
        verify: async (token) => {
          seen.push(token);
          return { identities: [SpiffeId.parse("spiffe://cluster.local/ns/shop/sa/a")] };
        },
      },
      authorize: () => undefined,
    });
    for (const header of ["bearer abc.def", "BEARER abc.def", "Bearer  abc.def"])
      expect(await hook(request({ metadata: { authorization: header } })), header).toBeUndefined();
    expect(seen).toEqual(["abc.def", "abc.def", "abc.def"]);
    for (const header of ["Bearer abc def", "Bearer", "Bearer ", "Bearerabc", " Bearer abc", "Bearer abc\n"])
      expect(await hook(request({ metadata: { authorization: header } })), header).toMatchObject({
        code: GrpcStatus.UNAUTHENTICATED,
      });
    expect(seen).toHaveLength(3);
  });

  it("refuses a verified certificate or token identity outside the mesh's trust domain", async () => {
    // A plugged root (Istio's cacerts) may be shared by meshes of other trust domains: TLS then
    // verifies their certificates too. SPIFFE X509-SVID 5: the relying party checks the trust domain.
    let called = false;
    const hook = authenticateNodes({
      trustDomain: "cluster.local",
      tokenVerifier: verifier(() => "spiffe://other.mesh/ns/shop/sa/a"),
      authorize: () => {
        called = true;
        return undefined;
      },
    });
    expect(await hook(request({ spiffeId: "spiffe://other.mesh/ns/shop/sa/a" }))).toMatchObject({
      code: GrpcStatus.PERMISSION_DENIED,
    });
    expect(await hook(request({ metadata: { authorization: "Bearer abc" } }))).toMatchObject({
      code: GrpcStatus.PERMISSION_DENIED,
    });
    expect(called).toBe(false);
  });

  it("refuses a node id whose <pod>.<namespace> or <namespace>.svc.<domain> names another namespace than the identity", async () => {
    // istio-agent and Istio's proxyless bootstrap write sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>
    // (gateways router~…): both namespaces in the id are the pod's own, so they must be the
    // identity's. NAMESPACE and SERVICE_ACCOUNT metadata are then checked by the binding.
    const hook = authenticateNodes({
      trustDomain: "cluster.local",
      tokenVerifier: verifier(() => "spiffe://cluster.local/ns/shop/sa/a"),
      authorize: () => undefined,
    });
    const bearer = { authorization: "Bearer abc" };
    for (const id of [
      "sidecar~10.0.0.1~a-0.payments~shop.svc.cluster.local",
      "sidecar~10.0.0.1~a-0.shop~payments.svc.cluster.local",
      "router~10.0.0.1~gw-0.payments~payments.svc.cluster.local",
    ]) {
      const refused = await hook(request({ node: create(NodeSchema, { id }), metadata: bearer }));
      expect(refused, id).toMatchObject({ code: GrpcStatus.PERMISSION_DENIED });
      expect(refused && "message" in refused ? refused.message : "").toContain("ns/shop");
    }
    for (const id of [
      "sidecar~10.0.0.1~a-0.shop~shop.svc.cluster.local",
      "router~10.0.0.1~gw-0.shop~shop.svc.cluster.local",
      "sidecar~10.0.0.1~a.b.shop~shop.svc.cluster.local",
      // Istio's grpc-simple template: the DNS domain names no namespace.
      "sidecar~10.0.0.1~a-0.shop~cluster.local",
    ])
      expect(await hook(request({ node: create(NodeSchema, { id }), metadata: bearer })), id).toBeUndefined();
  });
});
