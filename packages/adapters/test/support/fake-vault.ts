import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { openssl, opensslSelfSigned, opensslSignCsr } from "../../../ca/test/openssl.js";

/**
 * HashiCorp Vault cannot run here, so this is a local HTTP server speaking the part of Vault's
 * documented HTTP API that meshletd uses, with openssl as its PKI engine:
 *
 * - Kubernetes auth (developer.hashicorp.com/vault/api-docs/auth/kubernetes, "Login"):
 *   `POST /v1/auth/<mount>/login` with `{ role, jwt }` → `{ auth: { client_token, policies,
 *   lease_duration, renewable } }`; a wrong role or JWT → 400/403 with `{ errors: [...] }`.
 * - Token auth (developer.hashicorp.com/vault/api-docs/auth/token, "Renew a token (self)"):
 *   `POST /v1/auth/token/renew-self` with `X-Vault-Token` → the same `auth` block, lease extended.
 * - PKI (developer.hashicorp.com/vault/api-docs/secret/pki, "Sign certificate", "Read issuer
 *   certificate"): `POST /v1/<mount>/sign/<role>` and `GET /v1/<mount>/ca/pem`. A role either copies
 *   the CSR's SANs (`use_csr_sans=true`, Vault's default) and checks them against `allowed_domains`
 *   (exact names) and `allowed_uri_sans`, or ignores them (`use_csr_sans=false`) and puts the
 *   request's `uri_sans` in, checked likewise.
 *
 * Tokens expire on the fake's own clock (`now`, settable), which is how tests make Vault refuse a
 * token; `down` makes every request fail at the socket, as an unreachable Vault.
 */
export interface FakeVaultRole {
  readonly useCsrSans: boolean;
  readonly allowedUriSans: RegExp;
  /** Exact DNS names allowed (`allowed_domains` with `allow_bare_domains`); none by default. */
  readonly allowedDomains?: readonly string[];
}

export interface FakeVault {
  readonly address: string;
  readonly rootPem: string;
  readonly requests: {
    method: string;
    path: string;
    token: string | undefined;
    body: Record<string, unknown>;
  }[];
  /** The fake's clock in ms (tokens expire against it). */
  now: number;
  /** Refuse connections (closes sockets at once). */
  down: boolean;
  close(): Promise<void>;
}

export async function startFakeVault(
  dir: string,
  options: {
    /** The JWT the Kubernetes auth role accepts now (a function: the test rotates it). */
    readonly jwt: () => string;
    readonly authMount?: string;
    readonly authRole: string;
    readonly pkiMount?: string;
    readonly roles: Record<string, FakeVaultRole>;
    /** `token_ttl` in seconds (default 3600). */
    readonly tokenTtlSeconds?: number;
    readonly renewable?: boolean;
  },
): Promise<FakeVault> {
  const { cert: rootPem } = await opensslSelfSigned(dir, "vault-ca", {
    subject: "/O=Vault/CN=Vault PKI Root",
  });
  const authMount = options.authMount ?? "kubernetes";
  const pkiMount = options.pkiMount ?? "pki";
  const ttl = options.tokenTtlSeconds ?? 3600;
  const tokens = new Map<string, number>();
  const readBody = async (req: IncomingMessage) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  const csrSans = async (csrPem: string) => {
    const file = `${randomUUID()}.csr`;
    await writeFile(join(dir, file), csrPem);
    const text = await openssl(["req", "-in", file, "-noout", "-text"], dir);
    const line = /X509v3 Subject Alternative Name:[^\n]*\n\s*([^\n]+)/.exec(text)?.[1]?.trim();
    return line ? line.split(", ") : [];
  };
  const fake: FakeVault = {
    address: "",
    rootPem,
    requests: [],
    now: 0,
    down: false,
    close: async () => undefined,
  };
  const auth = () => {
    const token = `hvs.${randomUUID()}`;
    tokens.set(token, fake.now + ttl * 1000);
    return {
      client_token: token,
      policies: ["meshletd-pki"],
      lease_duration: ttl,
      renewable: options.renewable ?? true,
    };
  };
  const valid = (token: string | undefined) => token !== undefined && (tokens.get(token) ?? -1) > fake.now;
  const server: Server = createServer(async (req, res) => {
    if (fake.down) {
      req.socket.destroy();
      return;
    }
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      const path = req.url ?? "";
      const token = req.headers["x-vault-token"] as string | undefined;
      const body = req.method === "POST" ? await readBody(req) : {};
      fake.requests.push({ method: req.method ?? "", path, token, body });
      if (req.method === "POST" && path === `/v1/auth/${authMount}/login`) {
        if (body.role !== options.authRole)
          return reply(400, { errors: [`invalid role name "${String(body.role)}"`] });
        if (body.jwt !== options.jwt()) return reply(403, { errors: ["permission denied"] });
        return reply(200, { auth: auth() });
      }
      if (req.method === "POST" && path === "/v1/auth/token/renew-self") {
        if (!valid(token)) return reply(403, { errors: ["permission denied"] });
        tokens.set(token as string, fake.now + ttl * 1000);
        return reply(200, {
          auth: { client_token: token, policies: ["meshletd-pki"], lease_duration: ttl, renewable: true },
        });
      }
      if (req.method === "GET" && path === `/v1/${pkiMount}/ca/pem`) {
        res.writeHead(200, { "content-type": "application/pem-certificate-chain" });
        res.end(rootPem);
        return;
      }
      const sign = new RegExp(`^/v1/${pkiMount}/sign/([^/]+)$`).exec(path);
      if (req.method !== "POST" || !sign) return reply(404, { errors: [] });
      if (!valid(token)) return reply(403, { errors: ["permission denied"] });
      const role = options.roles[sign[1] as string];
      if (!role) return reply(400, { errors: [`unknown role: ${sign[1]}`] });
      const sans = role.useCsrSans ? await csrSans(String(body.csr)) : [`URI:${String(body.uri_sans)}`];
      for (const san of sans) {
        const ok = san.startsWith("URI:")
          ? role.allowedUriSans.test(san.slice(4))
          : san.startsWith("DNS:") && (role.allowedDomains ?? []).includes(san.slice(4));
        if (!ok) return reply(400, { errors: [`${san} not allowed by this role`] });
      }
      const certificate = (
        await opensslSignCsr(dir, {
          csrPem: String(body.csr),
          ca: "vault-ca",
          extensions: [
            `subjectAltName=critical,${sans.join(",")}`,
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth,clientAuth",
          ],
        })
      ).trim();
      reply(200, { data: { certificate, issuing_ca: rootPem.trim(), ca_chain: [rootPem.trim()] } });
    } catch (error) {
      reply(500, { errors: [String(error)] });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  Object.assign(fake, {
    address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return fake;
}
