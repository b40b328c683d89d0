import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CaError, CertificateAuthority, createCsr, generateKey } from "@meshlet/ca";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { tempDir } from "../../ca/test/helpers.js";
import { VaultKubernetesAuth, VaultPkiSigner } from "../src/vault.js";
import { type FakeVault, startFakeVault } from "./support/fake-vault.js";

// Vault cannot run here: ./support/fake-vault.ts speaks Vault's documented HTTP API. The shapes
// asserted come from Vault's API docs: Kubernetes auth "Login" (POST /v1/auth/<mount>/login, body
// { role, jwt }, answer auth.client_token / lease_duration / renewable —
// developer.hashicorp.com/vault/api-docs/auth/kubernetes) and token auth "Renew a token (self)"
// (POST /v1/auth/token/renew-self — developer.hashicorp.com/vault/api-docs/auth/token).

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;

describe("VaultKubernetesAuth against a fake Vault speaking Vault's auth API", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let vault: FakeVault;
  let jwt = "jwt-1";
  let tokenPath: string;

  beforeAll(async () => {
    tmp = await tempDir("vault-auth");
    tokenPath = join(tmp.dir, "token");
    vault = await startFakeVault(tmp.dir, {
      jwt: () => jwt,
      authRole: "meshletd",
      tokenTtlSeconds: 3600,
      roles: { spiffe: { useCsrSans: false, allowedUriSans: /^spiffe:\/\/example\.org\/ns\/default\/.+$/ } },
    });
  });
  afterAll(async () => {
    await vault?.close();
    await tmp?.cleanup();
  });
  beforeEach(async () => {
    jwt = "jwt-1";
    await writeFile(tokenPath, `${jwt}\n`);
    vault.requests.length = 0;
    vault.now = 0;
    vault.down = false;
  });

  const authAt = (clock: () => number, extra: { role?: string } = {}) =>
    new VaultKubernetesAuth({ address: vault.address, role: extra.role ?? "meshletd", tokenPath, clock });

  it("logs in with the projected token and the role, and reuses the token within its lease", async () => {
    let now = 0;
    const auth = authAt(() => now);
    const first = await auth.token();
    expect(first).toMatch(/^hvs\./);
    expect(vault.requests).toEqual([
      {
        method: "POST",
        path: "/v1/auth/kubernetes/login",
        token: undefined,
        body: { role: "meshletd", jwt: "jwt-1" },
      },
    ]);
    now = 30 * 60_000;
    expect(await auth.token()).toBe(first);
    expect(vault.requests).toHaveLength(1);
  });

  it("renews with renew-self after two thirds of the lease, and logs in again once it has expired", async () => {
    let now = 0;
    const auth = authAt(() => now);
    const first = await auth.token();
    now = vault.now = 41 * 60_000; // past 2/3 of 1h
    expect(await auth.token()).toBe(first);
    expect(vault.requests.at(-1)).toMatchObject({ path: "/v1/auth/token/renew-self", token: first });
    // The renewed lease runs from the renewal; past its end the token is dead: a new login, with
    // the JWT the kubelet rotated in the meantime.
    jwt = "jwt-2";
    await writeFile(tokenPath, jwt);
    now = vault.now = now + 2 * 3600_000;
    const second = await auth.token();
    expect(second).not.toBe(first);
    expect(vault.requests.at(-1)).toMatchObject({
      path: "/v1/auth/kubernetes/login",
      body: { jwt: "jwt-2" },
    });
  });

  it("logs in again when renewal is refused", async () => {
    let now = 0;
    const auth = authAt(() => now);
    const first = await auth.token();
    now = 50 * 60_000;
    vault.now = 2 * 3600_000; // Vault considers it expired (revoked early)
    const second = await auth.token();
    expect(second).not.toBe(first);
    expect(vault.requests.map((r) => r.path)).toEqual([
      "/v1/auth/kubernetes/login",
      "/v1/auth/token/renew-self",
      "/v1/auth/kubernetes/login",
    ]);
  });

  it("fails closed with Vault's reason for a wrong role, a missing token file or Vault down", async () => {
    const wrongRole = (await authAt(() => 0, { role: "other" })
      .token()
      .catch((e: unknown) => e)) as CaError;
    expect(wrongRole).toBeInstanceOf(CaError);
    expect(wrongRole.code).toBe("external-signer");
    expect(wrongRole.message).toContain('invalid role name "other"');
    const noFile = (await new VaultKubernetesAuth({
      address: vault.address,
      role: "meshletd",
      tokenPath: join(tmp.dir, "missing"),
    })
      .token()
      .catch((e: unknown) => e)) as CaError;
    expect(noFile.message).toContain("cannot read the service-account token");
    vault.down = true;
    const down = (await authAt(() => 0)
      .token()
      .catch((e: unknown) => e)) as CaError;
    expect(down.code).toBe("external-signer");
  });

  it("lets VaultPkiSigner sign with the current token, and log in again once on a 403", async () => {
    let now = 0;
    const auth = authAt(() => now);
    const ca = await CertificateAuthority.fromSigner(
      new VaultPkiSigner({ address: vault.address, token: (o) => auth.token(o), role: "spiffe" }),
      { trustDomain: TD },
    );
    const { privateKey } = await generateKey("ecdsa-p256");
    const csr = await createCsr({ privateKey, uris: [ID] });
    expect((await ca.sign({ csr, identities: [ID] })).length).toBe(2);
    // Vault revokes the token while meshlet still believes it good: 403, one new login, success.
    vault.now = 2 * 3600_000;
    now = 60_000;
    vault.requests.length = 0;
    expect((await ca.sign({ csr, identities: [ID] })).length).toBe(2);
    expect(vault.requests.map((r) => `${r.path} ${r.token === undefined ? "" : "token"}`)).toEqual([
      "/v1/pki/sign/spiffe token",
      "/v1/auth/kubernetes/login ",
      "/v1/pki/sign/spiffe token",
    ]);
    ca.close();
  });
});
