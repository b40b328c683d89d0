import { X509Certificate } from "node:crypto";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaError, CertificateAuthority, createCsr, generateKey } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { makeIstioCaCerts, openssl } from "./openssl.js";

const TD = "cluster.local";
const ID = `spiffe://${TD}/ns/default/sa/web`;

async function signWith(ca: CertificateAuthority, keyType: "ecdsa-p256" | "rsa-2048" = "ecdsa-p256") {
  const { privateKey } = await generateKey(keyType);
  return ca.sign({ csr: await createCsr({ privateKey, uris: [ID] }), identities: [ID] });
}

describe("chains verify with openssl (RFC 5280 path validation)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir("openssl");
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it.each(["ecdsa-p256", "rsa-2048"] as const)(
    "openssl verify -x509_strict accepts a %s self-signed CA's leaf for TLS client and server",
    async (keyType) => {
      const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, keyType });
      const chain = await signWith(ca, keyType);
      await writeFile(join(tmp.dir, `${keyType}-leaf.pem`), chain[0] as string);
      await writeFile(join(tmp.dir, `${keyType}-root.pem`), ca.trustBundle.roots.join(""));
      for (const purpose of ["sslserver", "sslclient"]) {
        const out = await openssl(
          [
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            `${keyType}-root.pem`,
            `${keyType}-leaf.pem`,
          ],
          tmp.dir,
        );
        expect(out).toContain(`${keyType}-leaf.pem: OK`);
      }
    },
  );

  it("a serving certificate with extra DNS SANs (istiod's) passes openssl's hostname check", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const istiod = await ca.mintSvid({
      identity: `spiffe://${TD}/ns/istio-system/sa/istiod`,
      dnsNames: ["istiod.istio-system.svc"],
    });
    expect(new X509Certificate(istiod.chain[0] as string).subjectAltName).toBe(
      `URI:spiffe://${TD}/ns/istio-system/sa/istiod, DNS:istiod.istio-system.svc`,
    );
    await writeFile(join(tmp.dir, "istiod.pem"), istiod.chain[0] as string);
    await writeFile(join(tmp.dir, "istiod-root.pem"), ca.trustBundle.roots.join(""));
    const ok = await openssl(
      [
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "istiod.istio-system.svc",
        "-CAfile",
        "istiod-root.pem",
        "istiod.pem",
      ],
      tmp.dir,
    );
    expect(ok).toContain("istiod.pem: OK");
    await expect(
      openssl(
        ["verify", "-verify_hostname", "other.svc", "-CAfile", "istiod-root.pem", "istiod.pem"],
        tmp.dir,
      ),
    ).rejects.toThrow(/hostname mismatch/);
    await expect(ca.mintSvid({ identity: `spiffe://${TD}/x`, dnsNames: ["bad name"] })).rejects.toThrow(
      /not a valid DNS name/,
    );
  });

  it("openssl rejects the leaf against an unrelated root (the check can fail)", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const other = await CertificateAuthority.selfSigned({ trustDomain: TD });
    await writeFile(join(tmp.dir, "leaf-x.pem"), (await signWith(ca))[0] as string);
    await writeFile(join(tmp.dir, "root-x.pem"), other.trustBundle.roots.join(""));
    await expect(openssl(["verify", "-CAfile", "root-x.pem", "leaf-x.pem"], tmp.dir)).rejects.toThrow(
      /unable to get local issuer/,
    );
  });
});

describe("CertificateAuthority.fromIstioCaCerts (offline root, per-cluster intermediate built with openssl)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir("cacerts");
    await makeIstioCaCerts(tmp.dir);
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  async function variant(name: string, change: (dir: string) => Promise<void>): Promise<string> {
    const dir = join(tmp.dir, name);
    await mkdir(dir);
    for (const f of ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"])
      await copyFile(join(tmp.dir, f), join(dir, f));
    await change(dir);
    return dir;
  }

  async function loadError(dir: string, options = {}): Promise<CaError> {
    try {
      await CertificateAuthority.fromIstioCaCerts(dir, { trustDomain: TD, ...options });
    } catch (error) {
      expect(error).toBeInstanceOf(CaError);
      return error as CaError;
    }
    throw new Error("expected fromIstioCaCerts to fail");
  }

  it("signs leaves whose chain (leaf, intermediate, root) passes openssl verify", async () => {
    const ca = await CertificateAuthority.fromIstioCaCerts(tmp.dir, { trustDomain: TD });
    const chain = await signWith(ca);
    expect(chain).toHaveLength(3);
    expect(new X509Certificate(chain[1] as string).subject).toContain("Intermediate CA");
    expect(chain[2]).toBe(ca.trustBundle.roots[0]);
    await writeFile(join(tmp.dir, "leaf.pem"), chain[0] as string);
    await writeFile(join(tmp.dir, "untrusted.pem"), chain[1] as string);
    const out = await openssl(
      [
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        "root-cert.pem",
        "-untrusted",
        "untrusted.pem",
        "leaf.pem",
      ],
      tmp.dir,
    );
    expect(out).toContain("leaf.pem: OK");
  });

  it("works without cert-chain.pem, appending the root from root-cert.pem", async () => {
    const dir = await variant("no-chain", async (d) => {
      await rm(join(d, "cert-chain.pem"));
    });
    const chain = await signWith(await CertificateAuthority.fromIstioCaCerts(dir, { trustDomain: TD }));
    expect(chain).toHaveLength(3);
  });

  it("refuses a key that does not match ca-cert.pem", async () => {
    const dir = await variant("mismatch", (d) =>
      copyFile(join(tmp.dir, "root-key.pem"), join(d, "ca-key.pem")),
    );
    const error = await loadError(dir);
    expect(error.code).toBe("key-mismatch");
    expect(error.message).toContain("ca-cert.pem");
  });

  it("refuses an expired plugged-in certificate, naming the file and the date", async () => {
    const error = await loadError(tmp.dir, { clock: () => Date.now() + 5 * 365 * 86_400_000 });
    expect(error.code).toBe("ca-expired");
    expect(error.message).toMatch(/ca-cert\.pem: certificate expired at \d{4}-/);
  });

  it("refuses malformed PEM with the file name", async () => {
    const dir = await variant("malformed", (d) =>
      writeFile(join(d, "ca-cert.pem"), "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"),
    );
    const error = await loadError(dir);
    expect(error.code).toBe("malformed-pem");
    expect(error.message).toContain(join(dir, "ca-cert.pem"));
  });

  it("refuses a chain that does not lead to root-cert.pem", async () => {
    const other = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const dir = await variant("wrong-root", async (d) => {
      await writeFile(join(d, "root-cert.pem"), other.trustBundle.roots[0] as string);
      await writeFile(join(d, "cert-chain.pem"), await readFile(join(d, "ca-cert.pem"), "utf8"));
    });
    const error = await loadError(dir);
    expect(error.code).toBe("ca-material");
    expect(error.message).toContain("does not lead to a root");
  });

  it("refuses a missing ca-key.pem", async () => {
    const dir = await variant("missing", (d) => rm(join(d, "ca-key.pem")));
    const error = await loadError(dir);
    expect(error.code).toBe("ca-material");
    expect(error.message).toContain("ca-key.pem");
  });

  it("refuses a leaf certificate plugged in as the CA certificate", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const svid = await ca.mintSvid({ identity: ID });
    const dir = await variant("leaf-as-ca", async (d) => {
      await writeFile(join(d, "ca-cert.pem"), svid.chain[0] as string);
      await writeFile(join(d, "ca-key.pem"), svid.privateKey);
      await writeFile(join(d, "root-cert.pem"), ca.trustBundle.roots[0] as string);
      await writeFile(join(d, "cert-chain.pem"), svid.chain.join(""));
    });
    const error = await loadError(dir);
    expect(error.code).toBe("ca-material");
    expect(error.message).toContain("cannot sign certificates");
  });
});
