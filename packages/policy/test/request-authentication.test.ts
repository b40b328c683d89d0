import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type Attributes,
  type AuthorizationPolicy,
  PolicyEngine,
  PolicyError,
  type RequestAuthentication,
} from "../src/index.js";

// Real tokens signed with real keys; the JWKS is served by an HTTP server on loopback.
const ISSUER = "https://issuer.test";

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function key(kid: string, alg: "RS256" | "ES256"): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

function sign(
  k: Key,
  claims: Record<string, unknown>,
  o: { iss?: string; aud?: string; expSecondsFromNow?: number; now?: number } = {},
) {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: k.jwk.alg as string, kid: k.jwk.kid as string })
    .setIssuer(o.iss ?? ISSUER)
    .setSubject("alice")
    .setAudience(o.aud ?? "api")
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expSecondsFromNow ?? 3600))
    .sign(k.privateKey);
}

describe("RequestAuthentication (JWT) with a JWKS served on loopback", () => {
  let server: Server;
  let jwksUri: string;
  let served: JWK[] = [];
  let failWith: number | undefined;
  let fetches = 0;
  let onFetch: (() => void) | undefined;
  let rsa: Key;
  let ec: Key;
  let stranger: Key;
  let now = Date.now();
  const clock = { now: () => now };

  beforeAll(async () => {
    [rsa, ec, stranger] = await Promise.all([
      key("rsa-1", "RS256"),
      key("ec-1", "ES256"),
      key("rsa-1", "RS256"),
    ]);
    server = createServer((_req, res) => {
      fetches++;
      onFetch?.();
      if (failWith) {
        res.writeHead(failWith).end("down");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: served }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });
  beforeEach(() => {
    served = [rsa.jwk];
    failWith = undefined;
    fetches = 0;
    now = Date.now();
  });

  const ra = (
    rules: Partial<
      RequestAuthentication["spec"]["jwtRules"] extends (infer R)[] | undefined ? R : never
    > = {},
  ): RequestAuthentication => ({
    metadata: { name: "jwt", namespace: "foo" },
    spec: { jwtRules: [{ issuer: ISSUER, jwksUri, audiences: ["api"], ...rules }] },
  });
  const requireJwt: AuthorizationPolicy = {
    metadata: { name: "require-jwt", namespace: "foo" },
    spec: {
      rules: [
        {
          from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }],
          when: [{ key: "request.auth.claims[groups]", values: ["admin"] }],
        },
      ],
    },
  };
  const engineWith = (r: RequestAuthentication = ra(), options: { refresh?: number } = {}) =>
    new PolicyEngine({
      clock,
      requestAuthentications: [r],
      authorizationPolicies: [requireJwt],
      ...(options.refresh !== undefined && { jwksRefreshIntervalMs: options.refresh }),
    });
  const request = (headers: Record<string, string>, query?: string): Attributes => ({
    destination: { namespace: "foo" },
    request: { method: "GET", path: "/", headers, ...(query && { query }) },
  });

  it("verifies a bearer token, fills request.auth.* from its claims and strips the header", async () => {
    const engine = engineWith();
    const token = await sign(rsa, { groups: ["admin"], azp: "cli" });
    const d = await engine.check(request({ authorization: `Bearer ${token}` }));
    expect(d).toMatchObject({ allowed: true, reason: "allow-policy", jwt: { status: "valid" } });
    expect(d.attributes.request?.auth).toMatchObject({
      principal: `${ISSUER}/alice`,
      audiences: ["api"],
      presenter: "cli",
    });
    expect(d.attributes.request?.auth?.claims.groups).toEqual(["admin"]);
    expect(d.removeRequestHeaders).toEqual(["authorization"]);
  });

  it("gives no identity when there is no token: the request is not rejected by authentication", async () => {
    const d = await engineWith().check(request({}));
    expect(d).toMatchObject({ allowed: false, reason: "no-matching-allow", jwt: { status: "none" } });
    expect(d.attributes.request?.auth).toBeUndefined();
  });

  it("ignores request.auth supplied by the caller when RequestAuthentication applies", async () => {
    const forged: Attributes = {
      destination: { namespace: "foo" },
      request: {
        headers: {},
        auth: { principal: `${ISSUER}/mallory`, audiences: [], claims: { groups: ["admin"] } },
      },
    };
    expect((await engineWith().check(forged)).allowed).toBe(false);
  });

  it.each([
    ["a token signed by an unknown key", async () => sign(stranger, {}), "signature verification failed"],
    [
      "an expired token",
      async () => sign(rsa, {}, { now: Date.now() - 7200_000, expSecondsFromNow: 60 }),
      '"exp" claim',
    ],
    ["a token for another audience", async () => sign(rsa, {}, { aud: "other" }), '"aud" claim'],
    [
      "a token from an issuer with no rule",
      async () => sign(rsa, {}, { iss: "https://evil.test" }),
      "is not accepted here",
    ],
    ["something that is not a JWT", async () => "not-a-jwt", "not a JWT"],
  ])("denies with 401 for %s", async (_name, token, reason) => {
    const d = await engineWith().check(request({ authorization: `Bearer ${await token()}` }));
    expect(d).toMatchObject({ allowed: false, reason: "jwt-invalid", status: 401 });
    expect(d.jwt.reason).toContain(reason);
  });

  it("reads tokens from a custom header with prefix, a query parameter and a cookie", async () => {
    const token = await sign(rsa, { groups: ["admin"] });
    const custom = engineWith(
      ra({
        fromHeaders: [{ name: "x-jwt", prefix: "Token " }],
        fromParams: ["jwt"],
        fromCookies: ["session"],
      }),
    );
    expect((await custom.check(request({ "x-jwt": `Token ${token}` }))).allowed).toBe(true);
    expect((await custom.check(request({}, `a=1&jwt=${token}`))).allowed).toBe(true);
    expect((await custom.check(request({ cookie: `theme=dark; session=${token}` }))).allowed).toBe(true);
    // The default location is not used once locations are configured.
    expect((await custom.check(request({ authorization: `Bearer ${token}` }))).jwt.status).toBe("none");
    // Default locations: Authorization: Bearer and access_token.
    expect((await engineWith().check(request({}, `access_token=${token}`))).allowed).toBe(true);
  });

  it("accepts an inline JWKS", async () => {
    const inline = engineWith(ra({ jwksUri: undefined, jwks: JSON.stringify({ keys: [ec.jwk] }) }));
    const d = await inline.check(
      request({ authorization: `Bearer ${await sign(ec, { groups: ["admin"] })}` }),
    );
    expect(d.allowed).toBe(true);
    expect(fetches).toBe(0);
  });

  it("accepts an inline single JSON Web Key, as Istio's jwk.Parse does", async () => {
    const inline = engineWith(ra({ jwksUri: undefined, jwks: JSON.stringify(ec.jwk) }));
    expect(inline.diagnostics).toEqual([]);
    const d = await inline.check(
      request({ authorization: `Bearer ${await sign(ec, { groups: ["admin"] })}` }),
    );
    expect(d.allowed).toBe(true);
  });

  it("copies claims to headers with outputClaimToHeaders and keeps the token with forwardOriginalToken", async () => {
    const engine = engineWith(
      ra({ forwardOriginalToken: true, outputClaimToHeaders: [{ header: "x-groups", claim: "groups" }] }),
    );
    const d = await engine.check(
      request({ authorization: `Bearer ${await sign(rsa, { groups: ["admin", "dev"] })}` }),
    );
    expect(d.requestHeaders).toEqual({ "x-groups": "admin,dev" });
    expect(d.removeRequestHeaders).toEqual([]);
  });

  // Envoy's jwt_authn extractor (envoyproxy/envoy source/extensions/filters/http/jwt_authn/
  // extractor.cc, sanitizeHeaders): the headers a provider fills (claim_to_headers,
  // forward_payload_header) are removed from every request first, so a client cannot send its own.
  it("removes client-sent copies of the outputClaimToHeaders and outputPayloadToHeader headers", async () => {
    const engine = engineWith(
      ra({ outputClaimToHeaders: [{ header: "x-groups", claim: "groups" }], outputPayloadToHeader: "x-jwt" }),
    );
    const forged = await engine.check(request({ "x-groups": "admin", "x-jwt": "e30" }));
    expect(forged.jwt.status).toBe("none");
    expect([...forged.removeRequestHeaders].sort()).toEqual(["x-groups", "x-jwt"]);
    const token = await sign(rsa, { groups: ["admin"] });
    const real = await engine.check(request({ authorization: `Bearer ${token}`, "x-groups": "forged" }));
    expect(real.requestHeaders["x-groups"]).toBe("admin");
  });

  // Envoy's JwtProvider.forward_payload_header, which Istio sets from outputPayloadToHeader: the
  // token's payload segment, base64url without padding (pad_forward_payload_header unset).
  it("forwards the verified payload in outputPayloadToHeader", async () => {
    const engine = engineWith(ra({ outputPayloadToHeader: "x-jwt-payload" }));
    const token = await sign(rsa, { groups: ["admin"] });
    const d = await engine.check(request({ authorization: `Bearer ${token}` }));
    expect(d.jwt.status).toBe("valid");
    expect(d.requestHeaders["x-jwt-payload"]).toBe(token.split(".")[1]);
    expect(
      JSON.parse(Buffer.from(d.requestHeaders["x-jwt-payload"] as string, "base64url").toString()),
    ).toMatchObject({
      iss: ISSUER,
      groups: ["admin"],
    });
  });

  // Istio accepts a jwtRule with a jwksUri and no issuer (validation.go validateJwtRule: "issuer or
  // jwksUri"); Envoy's provider with an empty issuer allows every issuer (extractor.cc
  // JwtIssuerChecker: "If a specified issuer is empty, it means to allow all issuers").
  it("verifies tokens of any issuer against a rule with a jwksUri and no issuer", async () => {
    const engine = new PolicyEngine({
      clock,
      requestAuthentications: [
        { metadata: { name: "jwt", namespace: "foo" }, spec: { jwtRules: [{ jwksUri }] } },
      ],
    });
    expect(engine.diagnostics).toEqual([]);
    const token = await sign(rsa, {}, { iss: "https://other.test" });
    const d = await engine.check(request({ authorization: `Bearer ${token}` }));
    expect(d).toMatchObject({ jwt: { status: "valid" } });
    expect(d.attributes.request?.auth?.principal).toBe("https://other.test/alice");
    const forged = await engine.check(request({ authorization: `Bearer ${await sign(stranger, {})}` }));
    expect(forged).toMatchObject({ allowed: false, reason: "jwt-invalid" });
  });

  // extractor.cc addProvider: the default locations apply when from_headers, from_params and
  // from_cookies are all empty (an empty list is no list in protobuf).
  it("uses the default locations when the location lists are empty", async () => {
    const engine = engineWith(ra({ fromHeaders: [], fromParams: [], fromCookies: [] }));
    const token = await sign(rsa, { groups: ["admin"] });
    expect((await engine.check(request({ authorization: `Bearer ${token}` }))).allowed).toBe(true);
  });

  // extractor.cc extract: the value prefix is found case-sensitively anywhere in the header value,
  // then the JWT starts at the next base64url character.
  it("finds the header prefix as Envoy does (case-sensitive)", async () => {
    const token = await sign(rsa, { groups: ["admin"] });
    const engine = engineWith();
    expect((await engine.check(request({ authorization: `bearer ${token}` }))).jwt.status).toBe("none");
    expect((await engine.check(request({ authorization: `Bearer  ${token}` }))).allowed).toBe(true);
  });

  it("caches the JWKS and refreshes it after the refresh interval", async () => {
    const engine = engineWith(ra(), { refresh: 60_000 });
    const token = await sign(rsa, { groups: ["admin"] });
    for (let i = 0; i < 3; i++)
      expect((await engine.check(request({ authorization: `Bearer ${token}` }))).allowed).toBe(true);
    expect(fetches).toBe(1);
    now += 61_000;
    // The refresh runs behind the request that noticed the keys were old.
    const refreshed = new Promise<void>((resolve) => {
      onFetch = resolve;
    });
    expect((await engine.check(request({ authorization: `Bearer ${token}` }))).allowed).toBe(true);
    await refreshed;
    onFetch = undefined;
    expect(fetches).toBe(2);
  });

  it("fetches again when a token names a key id it has not seen (key rotation)", async () => {
    const engine = engineWith();
    expect(
      (await engine.check(request({ authorization: `Bearer ${await sign(rsa, { groups: ["admin"] })}` })))
        .allowed,
    ).toBe(true);
    served = [rsa.jwk, ec.jwk];
    now += 31_000; // past the cooldown between forced fetches
    const d = await engine.check(
      request({ authorization: `Bearer ${await sign(ec, { groups: ["admin"] })}` }),
    );
    expect(d.allowed).toBe(true);
    expect(fetches).toBe(2);
  });

  it("survives a JWKS outage: tokens are rejected, the engine keeps deciding, and it recovers", async () => {
    const engine = engineWith();
    failWith = 503;
    const token = await sign(rsa, { groups: ["admin"] });
    const during = await engine.check(request({ authorization: `Bearer ${token}` }));
    expect(during).toMatchObject({ allowed: false, reason: "jwt-invalid" });
    expect(during.jwt.reason).toContain("no keys for JWKS");
    // Within the cooldown the endpoint is not hit again.
    await engine.check(request({ authorization: `Bearer ${token}` }));
    expect(fetches).toBe(1);
    failWith = undefined;
    now += 31_000;
    expect((await engine.check(request({ authorization: `Bearer ${token}` }))).allowed).toBe(true);
  });

  it("applies only to the workloads it selects", async () => {
    const selective: RequestAuthentication = {
      metadata: { name: "jwt", namespace: "foo" },
      spec: { selector: { matchLabels: { app: "api" } }, jwtRules: [{ issuer: ISSUER, jwksUri }] },
    };
    const engine = new PolicyEngine({ clock, requestAuthentications: [selective] });
    const bad = { authorization: "Bearer not-a-jwt" };
    const api = await engine.check({
      destination: { namespace: "foo", labels: { app: "api" } },
      request: { headers: bad },
    });
    expect(api.reason).toBe("jwt-invalid");
    const web = await engine.check({
      destination: { namespace: "foo", labels: { app: "web" } },
      request: { headers: bad },
    });
    expect(web).toMatchObject({ allowed: true, jwt: { status: "none" } });
    const other = await engine.check({
      destination: { namespace: "bar", labels: { app: "api" } },
      request: { headers: bad },
    });
    expect(other.jwt.status).toBe("none");
  });

  it("refuses RequestAuthentications it cannot use, and then rejects every token of their workloads", async () => {
    const engine = new PolicyEngine();
    const refused = (spec: RequestAuthentication["spec"]) =>
      engine.setRequestAuthentications([{ metadata: { name: "r", namespace: "foo" }, spec }]);
    expect(refused({ jwtRules: [{ issuer: ISSUER }] })[0]?.message).toMatch(
      /needs jwks \(inline JSON\) or jwksUri/,
    );
    expect(refused({ jwtRules: [{ issuer: ISSUER, jwks: "{" }] })[0]?.message).toMatch(
      /jwtRules\[0\]\.jwks: jwks parse error/,
    );
    const d = refused({ jwtRules: [{ issuer: ISSUER, jwksUri: "ftp://x" }] })[0];
    expect(d?.error).toBeInstanceOf(PolicyError);
    expect(d).toMatchObject({ kind: "RequestAuthentication", policy: "foo/r", effect: "reject-tokens" });
    // Fail closed: a token cannot be verified, so it is rejected rather than ignored.
    const withToken = await engine.check({
      destination: { namespace: "foo" },
      request: { headers: { authorization: "Bearer a.b.c" } },
    });
    expect(withToken).toMatchObject({ allowed: false, reason: "jwt-invalid", status: 401 });
    const without = await engine.check({ destination: { namespace: "foo" }, request: { headers: {} } });
    expect(without.allowed).toBe(true);
  });
});
