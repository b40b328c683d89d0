import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SpiffeId } from "../spiffe-id.js";
import { JwtVerifier } from "./jwt-verifier.js";

const NOW = Date.UTC(2030, 0, 1);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

function jwt(alg: string, key: KeyObject, claims: Record<string, unknown>, kid?: string): string {
  const body = `${b64({ alg, typ: "JWT", ...(kid ? { kid } : {}) })}.${b64(claims)}`;
  const digest = alg === "EdDSA" ? null : "sha256";
  const sig = sign(digest, Buffer.from(body), alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key);
  return `${body}.${sig.toString("base64url")}`;
}

const claims = {
  iss: "https://issuer.test",
  aud: ["istio-ca"],
  sub: "system:serviceaccount:shop:cart",
  exp: NOW / 1000 + 600,
};

describe("JwtVerifier", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ed = generateKeyPairSync("ed25519");
  const verifier = new JwtVerifier({
    keys: [{ ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-1" }, ed.publicKey],
    issuer: "https://issuer.test",
    audiences: ["istio-ca"],
    trustDomain: "example.org",
    clock: () => NOW,
  });

  it.each([
    ["RS256", rsa.privateKey],
    ["EdDSA", ed.privateKey],
  ] as const)("accepts a valid %s token and maps the service account to its SPIFFE ID", async (alg, key) => {
    const verified = await verifier.verify(jwt(alg, key, claims, alg === "RS256" ? "rsa-1" : undefined));
    expect(verified.identities.map(String)).toEqual([
      SpiffeId.istio("example.org", "shop", "cart").toString(),
    ]);
  });

  it.each([
    ["a wrong audience", { ...claims, aud: "other" }, /audience/],
    ["a wrong issuer", { ...claims, iss: "https://evil.test" }, /issuer/],
    ["an expired token", { ...claims, exp: NOW / 1000 - 120 }, /expired/],
    ["a token not valid yet", { ...claims, nbf: NOW / 1000 + 600 }, /not valid yet/],
  ])("rejects %s", async (_name, bad, message) => {
    await expect(verifier.verify(jwt("RS256", rsa.privateKey, bad, "rsa-1"))).rejects.toThrow(message);
  });

  it("rejects alg none, a tampered payload and a token signed by another key", async () => {
    const good = jwt("RS256", rsa.privateKey, claims, "rsa-1");
    const [h, , s] = good.split(".");
    await expect(verifier.verify(`${b64({ alg: "none" })}.${b64(claims)}.`)).rejects.toThrow(/not accepted/);
    await expect(
      verifier.verify(`${h}.${b64({ ...claims, sub: "system:serviceaccount:kube-system:admin" })}.${s}`),
    ).rejects.toThrow(/signature/);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await expect(verifier.verify(jwt("RS256", other.privateKey, claims, "rsa-1"))).rejects.toThrow(
      /signature/,
    );
  });

  describe("binds alg to the key type (RFC 8725 3.1; RFC 7518 3.1: ES256 is P-256 + SHA-256, ES384 P-384 + SHA-384)", () => {
    const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ecVerifier = new JwtVerifier({
      keys: [p256.publicKey],
      issuer: "https://issuer.test",
      audiences: ["istio-ca"],
      clock: () => NOW,
    });
    /** Signs `body` with the P-256 key using `digest` and `encoding`, under header `alg`. */
    function confused(alg: string, digest: string | null, encoding: "der" | "ieee-p1363"): string {
      const body = `${b64({ alg, typ: "JWT" })}.${b64(claims)}`;
      const sig = sign(digest, Buffer.from(body), { key: p256.privateKey, dsaEncoding: encoding });
      return `${body}.${sig.toString("base64url")}`;
    }

    it("accepts ES256 from a P-256 key", async () => {
      await expect(ecVerifier.verify(confused("ES256", "sha256", "ieee-p1363"))).resolves.toBeDefined();
    });

    it.each([
      ["EdDSA over an ECDSA signature", "EdDSA", null, "der"],
      ["RS256 over an ECDSA signature", "RS256", "sha256", "der"],
      ["ES384 from a P-256 key", "ES384", "sha384", "ieee-p1363"],
    ] as const)("refuses %s", async (_name, alg, digest, encoding) => {
      await expect(ecVerifier.verify(confused(alg, digest, encoding))).rejects.toThrow(/alg/);
    });

    it("refuses a token whose alg differs from the JWK's alg", async () => {
      const pinned = new JwtVerifier({
        keys: [{ ...rsa.publicKey.export({ format: "jwk" }), alg: "RS384" }],
        issuer: "https://issuer.test",
        audiences: ["istio-ca"],
        clock: () => NOW,
      });
      await expect(pinned.verify(jwt("RS256", rsa.privateKey, claims))).rejects.toThrow(/alg/);
    });
  });
});
