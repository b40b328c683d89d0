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
});
