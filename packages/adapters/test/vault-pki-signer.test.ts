import { randomUUID, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaError, CertificateAuthority, createCsr, generateKey, VaultPkiSigner } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { openssl } from "./openssl.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;
const TOKEN = "s.meshlet-test-token";

/**
 * HashiCorp Vault cannot be installed here, so this is a local HTTP server that speaks the part of
 * Vault's documented PKI secrets engine API the adapter uses — `POST /v1/<mount>/sign/<role>`
 * (X-Vault-Token, `csr`, `uri_sans`, `ttl`, `format`; answers `{ data: { certificate, issuing_ca,
 * ca_chain, serial_number, expiration } }` or `{ errors: [...] }`) and `GET /v1/<mount>/ca/pem` —
 * with openssl as its signing engine and a role with `allowed_uri_sans`.
 */
async function startFakeVault(dir: string) {
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
      "vault-ca-key.pem",
      "-out",
      "vault-ca.pem",
      "-days",
      "30",
      "-subj",
      "/O=Vault/CN=Vault PKI Root",
      "-addext",
      "basicConstraints=critical,CA:true",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  const rootPem = await readFile(join(dir, "vault-ca.pem"), "utf8");
  const roles: Record<string, { allowedUriSans: RegExp; ignoreUriSans?: boolean }> = {
    spiffe: { allowedUriSans: /^spiffe:\/\/example\.org\/ns\/default\/.+$/ },
    broken: { allowedUriSans: /.*/, ignoreUriSans: true },
  };
  const requests: { path: string; token: string | undefined; body: Record<string, unknown> }[] = [];
  const readBody = async (req: IncomingMessage) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
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
      const uri = String(body.uri_sans ?? "");
      if (!role.allowedUriSans.test(uri))
        return reply(400, { errors: [`URI SANs ${uri} not allowed by this role`] });
      const id = randomUUID();
      await writeFile(join(dir, `${id}.csr`), String(body.csr));
      const san = role.ignoreUriSans ? "URI:spiffe://example.org/ns/default/sa/someone-else" : `URI:${uri}`;
      await writeFile(
        join(dir, `${id}.ext`),
        `subjectAltName=critical,${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`,
      );
      await openssl(
        [
          "x509",
          "-req",
          "-in",
          `${id}.csr`,
          "-CA",
          "vault-ca.pem",
          "-CAkey",
          "vault-ca-key.pem",
          "-CAcreateserial",
          "-days",
          "1",
          "-extfile",
          `${id}.ext`,
          "-out",
          `${id}.pem`,
        ],
        dir,
      );
      const certificate = (await readFile(join(dir, `${id}.pem`), "utf8")).trim();
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

  async function csr(uris: string[] = [ID]) {
    const { privateKey } = await generateKey("rsa-2048");
    return createCsr({ privateKey, uris });
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
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: TOKEN, role: "broken" }),
      { trustDomain: TD },
    );
    const error = (await ca.sign({ csr: await csr(), identities: [ID] }).catch((e: unknown) => e)) as CaError;
    expect(error.code).toBe("external-signer");
    expect(error.message).toContain("not a valid X509-SVID");
    expect(error.message).toContain(`expected exactly ${ID}`);
  });
});
