import { describe, expect, it } from "vitest";
import { CaError } from "./ca-error.js";
import { CertificateAuthority } from "./certificate-authority.js";
import { generateKey } from "./key-type.js";
import { createCsr } from "./x509/csr.js";

const ID = "spiffe://example.org/ns/default/sa/web";

describe("CSR verification on worker threads (verifyThreads)", () => {
  it("signs valid CSRs of every key type and refuses a tampered one, then shuts its workers down", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org", verifyThreads: 2 });
    const csrs = await Promise.all(
      (["ecdsa-p256", "rsa-2048", "ecdsa-p256", "ecdsa-p256"] as const).map(async (t) =>
        createCsr({ privateKey: (await generateKey(t)).privateKey, uris: [ID] }),
      ),
    );
    const chains = await Promise.all(csrs.map((csr) => ca.sign({ csr, identities: [ID] })));
    expect(chains.every((c) => c.length === 2)).toBe(true);

    const der = Buffer.from((csrs[0] as string).replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 3] = (der[der.length - 3] as number) ^ 0x55;
    const error = await ca.sign({ csr: der, identities: [ID] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe("csr-signature-invalid");
    ca.close();
  });

  it("rejects a pool size that is not a positive integer", async () => {
    await expect(
      CertificateAuthority.selfSigned({ trustDomain: "example.org", verifyThreads: -1 }),
    ).rejects.toThrow(/verifyThreads must be a positive integer/);
  });
});
