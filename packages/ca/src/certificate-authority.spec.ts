import "reflect-metadata";
import { generateKeyPairSync, X509Certificate as NodeX509, type webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { VirtualTimeScheduler } from "rxjs";
import { beforeAll, describe, expect, it } from "vitest";
import { CaError } from "./ca-error.js";
import { CertificateAuthority, type RootRotation } from "./certificate-authority.js";
import { generateKey } from "./key-type.js";
import type { TrustBundle } from "./trust-bundle.js";
import { toSpiffeBundle } from "./trust-bundle.js";
import { createCsr } from "./x509/csr.js";

const WEB = "spiffe://example.org/ns/default/sa/web";
const DB = "spiffe://example.org/ns/default/sa/db";

async function csrFor(uris: string[], keyType: "ecdsa-p256" | "rsa-2048" = "ecdsa-p256") {
  const { privateKey } = await generateKey(keyType);
  return createCsr({ privateKey, uris });
}

function leafOf(chain: string[]): x509.X509Certificate {
  return new x509.X509Certificate(chain[0] as string);
}

async function rejection(promise: Promise<unknown>): Promise<CaError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CaError);
    return error as CaError;
  }
  throw new Error("expected a CaError");
}

describe.each(["ecdsa-p256", "rsa-2048"] as const)("CertificateAuthority with a %s root", (keyType) => {
  let ca: CertificateAuthority;
  let chain: string[];
  let leaf: x509.X509Certificate;

  beforeAll(async () => {
    ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org", keyType });
    chain = await ca.sign({ csr: await csrFor([WEB], keyType), identities: [WEB] });
    leaf = leafOf(chain);
  });

  it("returns the chain leaf first and the root last", () => {
    expect(chain).toHaveLength(2);
    expect(chain[1]).toBe(ca.trustBundle.roots[0]);
    expect(new NodeX509(chain[0] as string).verify(new NodeX509(chain[1] as string).publicKey)).toBe(true);
  });

  it("SVID rule: the leaf has exactly one URI SAN, the SPIFFE ID", () => {
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    const names = san.names.items;
    expect(names.filter((n) => n.type === "url").map((n) => n.value)).toEqual([WEB]);
    expect(names).toHaveLength(1);
  });

  it("SVID rule: the URI SAN is critical because the subject is empty", () => {
    expect(leaf.subject).toBe("");
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)!.critical).toBe(true);
  });

  it("SVID rule: basic constraints say cA=false (critical)", () => {
    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(false);
    expect(bc.critical).toBe(true);
  });

  it("SVID rule: key usage is critical with digitalSignature and never keyCertSign/cRLSign", () => {
    const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages & x509.KeyUsageFlags.digitalSignature).toBeTruthy();
    expect(ku.usages & x509.KeyUsageFlags.keyCertSign).toBe(0);
    expect(ku.usages & x509.KeyUsageFlags.cRLSign).toBe(0);
    const keyEncipherment = (ku.usages & x509.KeyUsageFlags.keyEncipherment) !== 0;
    expect(keyEncipherment).toBe(keyType === "rsa-2048");
  });

  it("SVID rule: extended key usage is serverAuth + clientAuth", () => {
    const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect([...eku.usages].sort()).toEqual(
      [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort(),
    );
  });

  it("SVID rule: the signing certificate has cA=true and keyCertSign", () => {
    const root = new x509.X509Certificate(chain[1] as string);
    expect(root.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(true);
    expect(root.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
    expect(root.subject).toBe("O=example.org");
  });

  it("defaults the lifetime to 24h", () => {
    const lifetime = leaf.notAfter.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(23 * 3_600_000);
    expect(lifetime).toBeLessThanOrEqual(24 * 3_600_000);
  });
});

describe("CertificateAuthority.sign refuses", () => {
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org", maxTtl: "48h" });
  });

  it("a CSR asking for someone else's SPIFFE ID", async () => {
    const error = await rejection(ca.sign({ csr: await csrFor([DB]), identities: [WEB] }));
    expect(error.code).toBe("identity-mismatch");
    expect(error.message).toContain(`asks for ${DB} but the caller is authenticated as ${WEB}`);
  });

  it("a CSR asking for two URI SANs", async () => {
    const error = await rejection(ca.sign({ csr: await csrFor([WEB, DB]), identities: [WEB, DB] }));
    expect(error.code).toBe("identity-mismatch");
  });

  it("a caller without identities", async () => {
    expect((await rejection(ca.sign({ csr: await csrFor([]), identities: [] }))).code).toBe("no-identity");
  });

  it("an identity in another trust domain", async () => {
    const other = "spiffe://other.org/ns/x/sa/y";
    expect((await rejection(ca.sign({ csr: await csrFor([]), identities: [other] }))).code).toBe(
      "foreign-trust-domain",
    );
  });

  it("a TTL above the maximum, naming both", async () => {
    const error = await rejection(ca.sign({ csr: await csrFor([WEB]), identities: [WEB], ttl: "72h" }));
    expect(error.code).toBe("invalid-ttl");
    expect(error.message).toContain("72h exceeds the maximum 48h");
  });

  it("a CSR whose signature does not match its key", async () => {
    const good = await csrFor([WEB]);
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0xff;
    const error = await rejection(ca.sign({ csr: der, identities: [WEB] }));
    expect(error.code).toBe("csr-signature-invalid");
  });

  it("malformed PEM", async () => {
    const error = await rejection(
      ca.sign({
        csr: "-----BEGIN CERTIFICATE REQUEST-----\n@@@\n-----END CERTIFICATE REQUEST-----",
        identities: [WEB],
      }),
    );
    expect(error.code).toBe("malformed-pem");
    expect(error.message).toContain("not valid base64");
  });

  it("truncated DER", async () => {
    const der = Buffer.from((await csrFor([WEB])).replace(/-----[^-]+-----|\s/g, ""), "base64");
    const error = await rejection(ca.sign({ csr: der.subarray(0, 40), identities: [WEB] }));
    expect(error.code).toBe("malformed-csr");
  });

  it("an oversized CSR before parsing it", async () => {
    const error = await rejection(ca.sign({ csr: "A".repeat(20_000), identities: [WEB] }));
    expect(error.code).toBe("csr-too-large");
  });

  it.each([
    ["P-521", () => generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey, "EC curve P-521"],
    ["RSA-1024", () => generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey, "RSA-1024"],
  ])("a CSR with a %s key", async (_name, key, message) => {
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys: await toWebKeys(key()),
      signingAlgorithm:
        key().asymmetricKeyType === "rsa"
          ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
          : { name: "ECDSA", hash: "SHA-512" },
    });
    const error = await rejection(ca.sign({ csr: csr.toString("pem"), identities: [WEB] }));
    expect(error.code).toBe("unsupported-key");
    expect(error.message).toContain(message);
  });
});

async function toWebKeys(privateKey: import("node:crypto").KeyObject): Promise<webcrypto.CryptoKeyPair> {
  const { createPublicKey, webcrypto } = await import("node:crypto");
  const isRsa = privateKey.asymmetricKeyType === "rsa";
  const alg = isRsa
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : {
        name: "ECDSA",
        namedCurve: privateKey.asymmetricKeyDetails?.namedCurve === "secp521r1" ? "P-521" : "P-256",
      };
  return {
    privateKey: await webcrypto.subtle.importKey(
      "pkcs8",
      privateKey.export({ format: "der", type: "pkcs8" }),
      alg,
      true,
      ["sign"],
    ),
    publicKey: await webcrypto.subtle.importKey(
      "spki",
      createPublicKey(privateKey).export({ format: "der", type: "spki" }),
      alg,
      true,
      ["verify"],
    ),
  } as webcrypto.CryptoKeyPair;
}

describe("CertificateAuthority identities", () => {
  it("takes the SAN from the caller's identity when the CSR names none", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const chain = await ca.sign({ csr: await csrFor([]), identities: [WEB] });
    expect(new NodeX509(chain[0] as string).subjectAltName).toBe(`URI:${WEB}`);
  });

  it("lets a caller with several identities pick one through the CSR", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const chain = await ca.sign({ csr: await csrFor([DB]), identities: [WEB, DB] });
    expect(new NodeX509(chain[0] as string).subjectAltName).toBe(`URI:${DB}`);
  });

  it("accepts a CSR built by another library (@peculiar/x509) and ignores its subject", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const keys = await toWebKeys(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=mallory",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: WEB }])],
    });
    const leaf = new x509.X509Certificate(
      (await ca.sign({ csr: csr.toString("pem"), identities: [WEB] }))[0] as string,
    );
    expect(leaf.subject).toBe("");
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items[0]!.value).toBe(WEB);
  });

  it("mints an SVID with its private key for server-side key generation", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const svid = await ca.mintSvid({ identity: WEB, ttl: "1h" });
    const leaf = new NodeX509(svid.chain[0] as string);
    expect(leaf.checkPrivateKey((await import("node:crypto")).createPrivateKey(svid.privateKey))).toBe(true);
    expect(svid.notAfter.getTime() - svid.notBefore.getTime()).toBe(3_600_000 + 60_000);
  });
});

describe("trust bundles and root rotation", () => {
  function virtualClock() {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.now();
    return { scheduler, clock: () => base + scheduler.now(), base };
  }

  it("exports the trust bundle as a SPIFFE JWK Set: use x509-svid, no kid, one x5c each", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const jwks = toSpiffeBundle(ca.trustBundle);
    expect(jwks.spiffe_sequence).toBe(1);
    expect(jwks.keys).toHaveLength(1);
    const key = jwks.keys[0]!;
    expect(key.use).toBe("x509-svid");
    expect(key).not.toHaveProperty("kid");
    expect(key.x5c).toHaveLength(1);
    expect(key.kty).toBe("EC");
    expect(key.crv).toBe("P-256");
    expect(new NodeX509(Buffer.from(key.x5c[0], "base64")).toString()).toBe(
      new NodeX509(ca.trustBundle.roots[0]!).toString(),
    );
  });

  it("keep-key rotation re-issues the root with the same key; old leaves still verify", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const bundles: TrustBundle[] = [];
    ca.trustBundle$.subscribe((b) => bundles.push(b));
    const before = await ca.sign({ csr: await csrFor([WEB]), identities: [WEB] });
    const rotation = await ca.rotateRoot({ mode: "keep-key" });
    expect(rotation.root).not.toBe(rotation.previousRoot);
    expect(bundles.map((b) => b.sequence)).toEqual([1, 2]);
    // SPIFFE bundle: spiffe_sequence increases with every change.
    expect(bundles.map((b) => toSpiffeBundle(b).spiffe_sequence)).toEqual([1, 2]);
    expect(ca.trustBundle.roots).toEqual([rotation.root]);
    const newRoot = new NodeX509(rotation.root);
    expect(new NodeX509(before[0]!).verify(newRoot.publicKey)).toBe(true);
    ca.close();
  });

  it("new-key rotation runs in two phases: publish the new root, switch signing after activateAfter, retire the old root when its last leaf expires", async () => {
    const { scheduler, clock, base } = virtualClock();
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org", scheduler, clock });
    const phases: string[] = [];
    ca.rootRotation$.subscribe((r) => phases.push(r.phase));
    const rotation = await ca.rotateRoot({ mode: "new-key", activateAfter: "2h" });
    const oldKey = new NodeX509(rotation.previousRoot).publicKey;
    const newKey = new NodeX509(rotation.root).publicKey;
    expect(rotation.phase).toBe("prepared");
    // Phase 1: both roots are trusted, the old one still signs.
    expect(ca.trustBundle.roots).toEqual([rotation.root, rotation.previousRoot]);
    const during = await ca.sign({ csr: await csrFor([WEB]), identities: [WEB], ttl: "1h" });
    expect(new NodeX509(during[0]!).verify(oldKey)).toBe(true);
    // Virtual time only advances to scheduled actions: one at 2h − 1ms moves the clock there.
    scheduler.schedule(() => {}, 2 * 3_600_000 - 1);
    scheduler.maxFrames = 2 * 3_600_000 - 1;
    scheduler.flush();
    // The last leaf the old root signs, one virtual millisecond before the switch, lives 1h.
    const last = await ca.sign({ csr: await csrFor([WEB]), identities: [WEB], ttl: "1h" });
    expect(new NodeX509(last[0]!).verify(oldKey)).toBe(true);
    expect(phases).toEqual(["prepared"]);
    // Phase 2: the new root signs; the old one stays trusted while its leaves live.
    scheduler.maxFrames = 2 * 3_600_000;
    scheduler.flush();
    expect(phases).toEqual(["prepared", "activated"]);
    const after = await ca.sign({ csr: await csrFor([WEB]), identities: [WEB] });
    expect(new NodeX509(after[0]!).verify(newKey)).toBe(true);
    expect(new NodeX509(after[0]!).verify(oldKey)).toBe(false);
    expect(ca.trustBundle.roots).toHaveLength(2);
    const lastExpiry = new Date(new NodeX509(last[0]!).validTo).getTime() - base;
    scheduler.maxFrames = lastExpiry - 2000;
    scheduler.flush();
    expect(ca.trustBundle.roots).toHaveLength(2);
    // Phase 3: once the old root's last leaf has expired, the old root leaves the bundle.
    scheduler.maxFrames = Number.POSITIVE_INFINITY;
    scheduler.flush();
    expect(phases).toEqual(["prepared", "activated", "retired"]);
    expect(ca.trustBundle.roots).toEqual([rotation.root]);
    expect(ca.trustBundle.sequence).toBe(3);
    ca.close();
  });

  it("the rotator rotates at the first check with less than the grace period of the root's lifetime left", async () => {
    const { scheduler, clock, base } = virtualClock();
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: "example.org",
      scheduler,
      clock,
      rootTtl: "100h",
    });
    const rotations: RootRotation[] = [];
    const first = new Promise<RootRotation>((resolve) =>
      ca.rootRotation$.subscribe((r) => {
        rotations.push(r);
        resolve(r);
      }),
    );
    ca.startRootRotation({ checkInterval: "1h", gracePeriodRatio: 0.2 });
    scheduler.maxFrames = 100 * 3_600_000;
    scheduler.flush();
    const rotation = await first;
    // 100h root (+60s backdate): at 79h 21h remain (> 20%), at 80h 20h remain (< 20%).
    expect(rotation.at.getTime()).toBe(base + 80 * 3_600_000);
    expect(rotation.mode).toBe("keep-key");
    expect(rotations).toHaveLength(1);
    ca.close();
  });
});
