import { randomUUID, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CaError, CertificateAuthority, createCsr, generateKey } from "@meshlet/ca";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../../ca/test/helpers.js";
import { openssl, opensslSignCsr } from "../../ca/test/openssl.js";
import { VaultPkiSigner } from "../src/vault.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;
const TOKEN = "s.meshlet-test-token";

/**
 * HashiCorp Vault cannot be installed here, so this is a local HTTP server that speaks the part of
 * Vault's documented PKI secrets engine API the adapter uses — `POST /v1/<mount>/sign/<role>`
 * (X-Vault-Token, `csr`, `uri_sans`, `ttl`, `format`, `exclude_cn_from_sans`; answers `{ data: {
 * certificate, issuing_ca, ca_chain, serial_number, expiration } }` or `{ errors: [...] }`) and
 * `GET /v1/<mount>/ca/pem` — with openssl as its signing engine.
 *
 * Its roles behave as Vault's do by default (Vault PKI API, role parameters `use_csr_sans` and
 * `use_csr_common_name`, both true by default): the CSR's SANs and common name are copied into the
 * certificate, and the request's `uri_sans` is used only when the CSR has no SANs. So the tests see
 * what production would: whatever a workload puts in its CSR reaches Vault's certificate.
 */
async function startFakeVault(dir: string) {
  const makeCa = async (name: string, subject: string) => {
    await openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${name}-key.pem`,
        "-out",
        `${name}.pem`,
        "-days",
        "400",
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    );
    return readFile(join(dir, `${name}.pem`), "utf8");
  };
  const rootPem = await makeCa("vault-ca", "/O=Vault/CN=Vault PKI Root");
  await makeCa("rogue-ca", "/O=Elsewhere/CN=Unrelated Root");
  interface Role {
    allowedUriSans: RegExp;
    /** Vault's `use_csr_sans` (default true). */
    useCsrSans?: boolean;
    /** Signs another identity than asked (a misconfigured role). */
    ignoreUriSans?: boolean;
    /** Signs with an unrelated CA, for a year, adding a DNS SAN (a misrouted mount). */
    rogue?: boolean;
  }
  const roles: Record<string, Role> = {
    spiffe: { allowedUriSans: /^spiffe:\/\/example\.org\/ns\/default\/.+$/ },
    broken: { allowedUriSans: /.*/, ignoreUriSans: true },
    rogue: { allowedUriSans: /.*/, rogue: true },
  };
  const requests: { path: string; token: string | undefined; body: Record<string, unknown> }[] = [];
  const readBody = async (req: IncomingMessage) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  /** The CSR's SANs as openssl reads them (the fake's "Vault" parses the CSR with openssl). */
  const csrContents = async (file: string) => {
    const text = await openssl(["req", "-in", file, "-noout", "-text", "-nameopt", "multiline"], dir);
    const sans = /X509v3 Subject Alternative Name:[^\n]*\n\s*([^\n]+)/.exec(text)?.[1]?.trim();
    return { sans: sans ? sans.split(", ") : [] };
  };
  const server: Server = createServer(async (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === "GET" && req.url === "/v1/pki/ca/pem") {
        res.writeHead(200, { "content-type": "application/pem-certificate-chain" });
        res.end(rootPem);
        return;
      }
      const match = /^\/v1\/pki\/sign\/([^/]+)$/.exec(req.url ?? "");
      if (req.method !== "POST" || !match) return reply(404, { errors: [] });
      const body = await readBody(req);
      const token = req.headers["x-vault-token"] as string | undefined;
      requests.push({ path: req.url as string, token, body });
      if (token !== TOKEN) return reply(403, { errors: ["permission denied"] });
      const role = roles[match[1] as string];
      if (!role) return reply(400, { errors: [`unknown role: ${match[1]}`] });
      const id = randomUUID();
      await writeFile(join(dir, `${id}.csr`), String(body.csr));
      const csr = await csrContents(`${id}.csr`);
      const requested = String(body.uri_sans ?? "");
      let sans = role.useCsrSans !== false && csr.sans.length > 0 ? csr.sans : [`URI:${requested}`];
      for (const uri of sans.filter((s) => s.startsWith("URI:"))) {
        if (!role.allowedUriSans.test(uri.slice(4))) {
          return reply(400, { errors: [`URI SANs ${uri.slice(4)} not allowed by this role`] });
        }
      }
      if (role.ignoreUriSans) sans = ["URI:spiffe://example.org/ns/default/sa/someone-else"];
      if (role.rogue) sans = [...sans, "DNS:web.example.org"];
      // use_csr_common_name: the CSR's CN becomes the certificate's (openssl copies the CSR's
      // subject, which carries at most a CN here); exclude_cn_from_sans: true keeps it out of the
      // DNS SANs.
      const ca = role.rogue ? "rogue-ca" : "vault-ca";
      const extensions = [
        `subjectAltName=critical,${sans.join(",")}`,
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
      ];
      const certificate = (
        await opensslSignCsr(dir, { csrPem: String(body.csr), ca, extensions, days: role.rogue ? 365 : 1 })
      ).trim();
      const cert = new X509Certificate(certificate);
      reply(200, {
        request_id: id,
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data: {
          certificate,
          issuing_ca: rootPem.trim(),
          ca_chain: [rootPem.trim()],
          serial_number: cert.serialNumber.match(/../g)?.join(":").toLowerCase(),
          expiration: Math.floor(new Date(cert.validTo).getTime() / 1000),
        },
        wrap_info: null,
        warnings: null,
        auth: null,
      });
    } catch (error) {
      reply(500, { errors: [String(error)] });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, requests, rootPem, address: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("VaultPkiSigner against a local server speaking Vault's PKI HTTP API", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let vault: Awaited<ReturnType<typeof startFakeVault>>;

  beforeAll(async () => {
    tmp = await tempDir("vault");
    vault = await startFakeVault(tmp.dir);
  });

  afterAll(async () => {
    await new Promise((resolve) => vault?.server.close(resolve));
    await tmp?.cleanup();
  });

  async function csr(uris: string[] = [ID], extra: { dnsNames?: string[]; commonName?: string } = {}) {
    const { privateKey } = await generateKey("rsa-2048");
    return createCsr({
      privateKey,
      uris,
      ...(extra.dnsNames ? { dnsNames: extra.dnsNames } : {}),
      ...(extra.commonName ? { subject: { commonName: extra.commonName } } : {}),
    });
  }

  async function refusal(role: string, request: Promise<string>) {
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: TOKEN, role }),
      { trustDomain: TD },
    );
    const error = (await ca
      .sign({ csr: await request, identities: [ID] })
      .catch((e: unknown) => e)) as CaError;
    ca.close();
    expect(error).toBeInstanceOf(CaError);
    expect(error.code).toBe("external-signer");
    expect(error.message).toContain("not a valid X509-SVID");
    return error.message;
  }

  it("signs an SVID through /v1/pki/sign/<role> with uri_sans and ttl, chaining to the Vault root", async () => {
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: TOKEN, role: "spiffe" }),
      { trustDomain: TD },
    );
    expect(ca.trustBundle.roots.map((r) => r.trim())).toEqual([vault.rootPem.trim()]);
    const chain = await ca.sign({ csr: await csr(), identities: [ID], ttl: "1h" });
    expect(chain).toHaveLength(2);
    const leaf = new X509Certificate(chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${ID}`);
    expect(leaf.verify(new X509Certificate(chain[1]!).publicKey)).toBe(true);
    expect(vault.requests.at(-1)).toMatchObject({
      path: "/v1/pki/sign/spiffe",
      token: TOKEN,
      body: { uri_sans: ID, ttl: "3600s", format: "pem", exclude_cn_from_sans: true },
    });
  });

  it("surfaces Vault's refusal (role does not allow the URI SAN) as an external-signer error", async () => {
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: TOKEN, role: "spiffe" }),
      { trustDomain: TD },
    );
    const other = `spiffe://${TD}/ns/kube-system/sa/admin`;
    const error = (await ca
      .sign({ csr: await csr([other]), identities: [other] })
      .catch((e: unknown) => e)) as CaError;
    expect(error).toBeInstanceOf(CaError);
    expect(error.code).toBe("external-signer");
    expect(error.message).toContain("not allowed by this role");
  });

  it("reports a bad token with Vault's 403", async () => {
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: "wrong", role: "spiffe" }),
      { trustDomain: TD },
    );
    const error = (await ca.sign({ csr: await csr(), identities: [ID] }).catch((e: unknown) => e)) as CaError;
    expect(error.code).toBe("external-signer");
    expect(error.message).toMatch(/answered 403: permission denied/);
  });

  it("refuses a certificate from a misconfigured role that carries another SPIFFE ID", async () => {
    expect(await refusal("broken", csr())).toContain(`expected exactly ${ID}`);
  });

  it("refuses what Vault's default role copies from a CSR that smuggles a DNS SAN and a CN", async () => {
    const message = await refusal(
      "spiffe",
      csr([ID], { dnsNames: ["evil.example.com"], commonName: "admin" }),
    );
    expect(message).toContain("DNS SANs [evil.example.com]");
    expect(message).toContain("common name");
  });

  it("refuses a leaf from an unrelated CA, valid for a year, carrying a DNS SAN", async () => {
    const message = await refusal("rogue", csr());
    expect(message).toContain("does not verify to a root in the current trust bundle");
    expect(message).toContain("beyond the maximum TTL");
    expect(message).toContain("DNS SANs [web.example.org]");
  });
});
