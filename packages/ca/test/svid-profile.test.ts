import { sign } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CaError,
  CertificateAuthority,
  createCsr,
  type ExternalSigner,
  fromPem,
  generateKey,
  toPem,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { openssl, opensslSelfSigned, opensslSignCsr } from "./openssl.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;
const EXT = [
  `subjectAltName=critical,URI:${ID}`,
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature",
  "extendedKeyUsage=serverAuth,clientAuth",
];

/** Test-side DER: a SEQUENCE's children as raw bytes (independent of the CA's reader). */
function children(der: Buffer): Buffer[] {
  const header = (at: number) => {
    const first = der[at + 1] as number;
    if (first < 0x80) return { size: 2, length: first };
    const count = first & 0x7f;
    return { size: 2 + count, length: der.subarray(at + 2, at + 2 + count).reduce((n, b) => n * 256 + b, 0) };
  };
  const outer = header(0);
  const out: Buffer[] = [];
  for (let at = outer.size; at < outer.size + outer.length; ) {
    const { size, length } = header(at);
    out.push(der.subarray(at, at + size + length));
    at += size + length;
  }
  return out;
}
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const length =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}
/** sha256WithRSAEncryption (RFC 4055 5), with its NULL parameters. */
const SHA256_WITH_RSA = Buffer.from("300d06092a864886f70d01010b0500", "hex");

/**
 * An external CA run with openssl (not the CA's own code): it signs each CSR with the extensions
 * and serial a test chooses, the way a misconfigured Vault role or a custom `ExternalSigner` could.
 */
async function opensslCa(dir: string) {
  const { cert: root, key } = await opensslSelfSigned(dir, "ext-ca", { subject: "/O=External CA" });
  const signWith = (csrPem: string, extensions: string[], serial: string, ca = "ext-ca") =>
    opensslSignCsr(dir, { csrPem, ca, extensions, serial });
  const signer = (make: (csrPem: string) => Promise<readonly string[]>): ExternalSigner => ({
    name: "openssl-ca",
    kind: "leaf",
    sign: ({ csrPem }) => make(csrPem),
    roots: async () => [root],
  });
  return { root, key, signWith, signer };
}

describe("the SVID check refuses certificates peers would reject, whoever signed them", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ext: Awaited<ReturnType<typeof opensslCa>>;
  beforeAll(async () => {
    tmp = await tempDir("svid-profile");
    ext = await opensslCa(tmp.dir);
  });
  afterAll(() => tmp?.cleanup());

  async function outcome(signer: ExternalSigner): Promise<CaError | string[]> {
    const ca = await CertificateAuthority.fromSigner(signer, { trustDomain: TD });
    try {
      const { privateKey } = await generateKey();
      return await ca.sign({ csr: await createCsr({ privateKey, uris: [ID] }), identities: [ID] });
    } catch (error) {
      expect(error).toBeInstanceOf(CaError);
      return error as CaError;
    } finally {
      ca.close();
    }
  }
  const refusal = async (signer: ExternalSigner) => {
    const result = await outcome(signer);
    expect(result).toBeInstanceOf(CaError);
    expect((result as CaError).code).toBe("external-signer");
    return (result as CaError).message;
  };

  it("issues what a well-configured external CA signs (control)", async () => {
    const chain = await outcome(
      ext.signer(async (csr) => [await ext.signWith(csr, EXT, "0x1f2e3d4c5b6a7988")]),
    );
    expect(Array.isArray(chain)).toBe(true);
  });

  it("mints a serving SVID through an external leaf signer: the DNS names go into the CSR and must come back exactly", async () => {
    const dns = "web.default.svc";
    const csrs: string[] = [];
    const sans = (list: string) => [`subjectAltName=critical,${list}`, ...EXT.slice(1)];
    const minted = async (granted: string) => {
      const ca = await CertificateAuthority.fromSigner(
        ext.signer(async (csr) => {
          await writeFile(join(tmp.dir, "mint.csr"), csr);
          csrs.push(await openssl(["req", "-in", "mint.csr", "-noout", "-text"], tmp.dir));
          return [await ext.signWith(csr, sans(granted), "0x2a2b2c2d")];
        }),
        { trustDomain: TD },
      );
      try {
        return await ca.mintSvid({ identity: ID, dnsNames: [dns] });
      } finally {
        ca.close();
      }
    };
    const svid = await minted(`URI:${ID},DNS:${dns}`);
    expect(csrs.at(-1)).toContain(`DNS:${dns}`);
    expect(csrs.at(-1)).toContain(`URI:${ID}`);
    expect(svid.chain.length).toBeGreaterThan(0);
    const refused = (await minted(`URI:${ID},DNS:other.default.svc`).catch((e: unknown) => e)) as CaError;
    expect(refused).toBeInstanceOf(CaError);
    expect(refused.code).toBe("external-signer");
  });

  // RFC 5280 4.1.2.2: the serial number is a positive integer of at most 20 octets; Go's x509
  // (Istio, SPIRE peers) refuses negative serials since Go 1.23.
  it.each([
    ["negative", "-5"],
    ["zero", "0"],
    ["21 octets long", "0x0102030405060708090a0b0c0d0e0f101112131415"],
  ])("refuses a leaf whose serial number is %s", async (_name, serial) => {
    expect(await refusal(ext.signer(async (csr) => [await ext.signWith(csr, EXT, serial)]))).toMatch(
      /serial/,
    );
  });

  it("refuses a leaf with a critical extension it does not know (RFC 5280 4.2: peers must reject it)", async () => {
    const withUnknown = [...EXT, "1.3.6.1.4.1.99999.1=critical,DER:05:00"];
    expect(await refusal(ext.signer(async (csr) => [await ext.signWith(csr, withUnknown, "0x0a")]))).toMatch(
      /critical extension 1\.3\.6\.1\.4\.1\.99999\.1/,
    );
  });

  it("refuses a chain whose signing certificate has a SPIFFE ID with a path (X509-SVID 3.2)", async () => {
    // An intermediate the external CA signed, carrying a workload-like SPIFFE ID.
    await openssl(
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "int-key.pem",
      ].concat(["-out", "int.csr", "-subj", "/O=Intermediate"]),
      tmp.dir,
    );
    const intermediate = await ext.signWith(
      await readFile(join(tmp.dir, "int.csr"), "utf8"),
      [
        "basicConstraints=critical,CA:true",
        "keyUsage=critical,keyCertSign",
        `subjectAltName=URI:spiffe://${TD}/ns/x/sa/ca`,
      ],
      "0x0b",
    );
    await writeFile(join(tmp.dir, "int.pem"), intermediate);
    const message = await refusal(
      ext.signer(async (csr) => [await ext.signWith(csr, EXT, "0x0c", "int"), intermediate]),
    );
    expect(message).toMatch(/signing certificate .*path/);
  });

  it("refuses a leaf whose signature algorithm names RSA while its EC issuer signed it with ECDSA", async () => {
    // Re-sign the openssl leaf's TBSCertificate with the external CA's EC key, claiming
    // sha256WithRSAEncryption inside and outside: node:crypto would check it as ECDSA, Go's x509
    // refuses it ("signature algorithm specifies an RSA public key").
    const key = ext.key;
    const confused = ext.signer(async (csr) => {
      const der = (fromPem(await ext.signWith(csr, EXT, "0x0d"), "leaf")[0] as { der: Buffer }).der;
      const [tbs] = children(der) as [Buffer];
      const parts = children(tbs);
      parts[2] = SHA256_WITH_RSA;
      const newTbs = tlv(0x30, Buffer.concat(parts));
      const signature = sign("sha256", newTbs, key);
      const cert = tlv(
        0x30,
        Buffer.concat([newTbs, SHA256_WITH_RSA, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]),
      );
      return [toPem("CERTIFICATE", cert)];
    });
    expect(await refusal(confused)).toMatch(/signature algorithm/);
  });
});
