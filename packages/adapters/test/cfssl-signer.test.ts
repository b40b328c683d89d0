import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { CaError, CertificateAuthority, createCsr, generateKey } from "@meshlet/ca";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../../ca/test/helpers.js";
import { openssl } from "../../ca/test/openssl.js";
import { CfsslSigner } from "../src/cfssl.js";
import { listeningPort, type Started, start } from "./listening-port.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;
const AUTH_KEY = "0123456789abcdef0123456789abcdef";

/**
 * CloudFlare's cfssl (Debian `golang-cfssl`), started here as `cfssl serve` on 127.0.0.1 port 0,
 * acting as the upstream authority that signs meshlet's intermediate.
 */
describe("CfsslSigner against a real cfssl serve", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let cfssl: Started | undefined;
  let url: string;

  beforeAll(async () => {
    tmp = await tempDir("cfssl");
    await writeFile(
      join(tmp.dir, "csr.json"),
      JSON.stringify({ CN: "cfssl test root", key: { algo: "ecdsa", size: 256 }, names: [{ O: TD }] }),
    );
    const { stdout } = await promisify(execFile)("cfssl", ["gencert", "-initca", "csr.json"], {
      cwd: tmp.dir,
    });
    const root = JSON.parse(stdout) as { cert: string; key: string };
    await writeFile(join(tmp.dir, "ca.pem"), root.cert);
    await writeFile(join(tmp.dir, "ca-key.pem"), root.key);
    const intermediate = {
      expiry: "48h",
      usages: ["cert sign", "crl sign", "digital signature"],
      ca_constraint: { is_ca: true, max_path_len: 0, max_path_len_zero: true },
    };
    await writeFile(
      join(tmp.dir, "config.json"),
      JSON.stringify({
        signing: {
          default: { expiry: "24h" },
          profiles: { intermediate, "intermediate-auth": { ...intermediate, auth_key: "meshlet" } },
        },
        auth_keys: { meshlet: { type: "standard", key: AUTH_KEY } },
      }),
    );
    cfssl = await start(
      "cfssl",
      [
        "serve",
        "-address",
        "127.0.0.1",
        "-port",
        "0",
        "-ca",
        "ca.pem",
        "-ca-key",
        "ca-key.pem",
        "-config",
        "config.json",
      ],
      { cwd: tmp.dir, ready: /Now listening/ },
    );
    url = `http://127.0.0.1:${await listeningPort(cfssl.child.pid as number)}`;
  });

  afterAll(async () => {
    await cfssl?.stop();
    await tmp?.cleanup();
  });

  async function signLeaf(ca: CertificateAuthority) {
    const { privateKey } = await generateKey();
    return ca.sign({ csr: await createCsr({ privateKey, uris: [ID] }), identities: [ID] });
  }

  it("gets meshlet's intermediate signed by cfssl and issues SVIDs that openssl verifies up to cfssl's root", async () => {
    const ca = await CertificateAuthority.fromSigner(new CfsslSigner({ url, profile: "intermediate" }), {
      trustDomain: TD,
    });
    expect(ca.trustBundle.roots).toHaveLength(1);
    expect(new X509Certificate(ca.trustBundle.roots[0]!).subject).toContain("CN=cfssl test root");
    const chain = await signLeaf(ca);
    expect(chain).toHaveLength(3);
    const [leaf, intermediate, root] = chain.map((pem) => new X509Certificate(pem));
    expect(leaf!.subjectAltName).toBe(`URI:${ID}`);
    expect(intermediate!.ca).toBe(true);
    expect(intermediate!.subject).toContain("CN=meshlet intermediate CA");
    expect(root!.raw.equals(new X509Certificate(ca.trustBundle.roots[0]!).raw)).toBe(true);
    await writeFile(join(tmp.dir, "leaf.pem"), chain[0]!);
    await writeFile(join(tmp.dir, "intermediate.pem"), chain[1]!);
    const out = await openssl(
      [
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        "ca.pem",
        "-untrusted",
        "intermediate.pem",
        "leaf.pem",
      ],
      tmp.dir,
    );
    expect(out).toContain("leaf.pem: OK");
    ca.close();
  });

  it("authenticates to an auth_key profile with cfssl's HMAC token (authsign)", async () => {
    const ca = await CertificateAuthority.fromSigner(
      new CfsslSigner({ url, profile: "intermediate-auth", authKey: AUTH_KEY }),
      { trustDomain: TD },
    );
    expect(await signLeaf(ca)).toHaveLength(3);
    ca.close();
  });

  it("reports cfssl's refusal with the signer name when the HMAC key is wrong", async () => {
    const signer = new CfsslSigner({ url, profile: "intermediate-auth", authKey: "ff".repeat(16) });
    const error = await CertificateAuthority.fromSigner(signer, { trustDomain: TD }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe("external-signer");
    expect((error as CaError).message).toMatch(/cfssl authsign answered 400/);
  });
});
