import { X509Certificate } from "node:crypto";
import { filter, firstValueFrom, VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import { CertificateAuthority } from "./certificate-authority.js";
import type { ExternalSigner, ExternalSignRequest } from "./external-signer.js";
import { generateKey, signatureSchemeFor } from "./key-type.js";
import { silentLogger } from "./logger.js";
import { toPem } from "./pem.js";
import { createSelfSignedRoot } from "./signing-material.js";
import { parseCertificate } from "./x509/certificate.js";
import { encodeTbsCertificate, randomSerial, signCertificate } from "./x509/certificate-builder.js";
import { parseCsr } from "./x509/csr.js";
import { basicConstraintsValue, extension, KeyUsage, keyUsageValue } from "./x509/extensions.js";
import { name } from "./x509/name.js";
import { Oid } from "./x509/oids.js";

/** An in-process upstream authority that signs intermediates, like cfssl's `ca_constraint` profile. */
async function fakeUpstream(clock: () => number) {
  const { privateKey } = await generateKey("ecdsa-p256");
  const root = await createSelfSignedRoot({
    key: privateKey,
    trustDomain: "upstream.test",
    ttl: "3650d",
    now: clock(),
  });
  const rootCert = parseCertificate(root.der);
  const requests: ExternalSignRequest[] = [];
  const published = [root.pem];
  const signer: ExternalSigner = {
    name: "fake-upstream",
    kind: "intermediate",
    async roots() {
      return [...published];
    },
    async sign(request) {
      requests.push(request);
      const csr = parseCsr(request.csrPem);
      await csr.verifySignature();
      const now = clock();
      const tbs = encodeTbsCertificate(
        {
          serialNumber: randomSerial(),
          issuerRaw: rootCert.subjectRaw,
          notBefore: new Date(now),
          notAfter: new Date(now + request.ttlMs),
          subjectRaw: name({ organization: "example.org", commonName: "meshlet intermediate CA" }),
          spkiRaw: csr.spkiRaw,
          extensions: [
            extension(Oid.basicConstraints, true, basicConstraintsValue(true, 0)),
            extension(Oid.keyUsage, true, keyUsageValue([KeyUsage.keyCertSign, KeyUsage.cRLSign])),
          ],
        },
        signatureSchemeFor(privateKey, "upstream"),
      );
      return [
        toPem(
          "CERTIFICATE",
          await signCertificate(tbs, privateKey, signatureSchemeFor(privateKey, "upstream")),
        ),
      ];
    },
  };
  return { signer, requests, root, published };
}

/** A CA over the fake upstream, in virtual time, fetching the upstream's roots every hour. */
async function refreshingCa() {
  const scheduler = new VirtualTimeScheduler();
  const base = Date.now();
  const clock = () => base + scheduler.now();
  const upstream = await fakeUpstream(clock);
  const ca = await CertificateAuthority.fromSigner(upstream.signer, {
    trustDomain: "example.org",
    intermediateTtl: "100h",
    rootRefreshInterval: "1h",
    clock,
    scheduler,
  });
  return { scheduler, clock, upstream, ca };
}

/** The upstream's next root (a rotation upstream). */
async function nextUpstreamRoot(clock: () => number) {
  const { privateKey } = await generateKey("ecdsa-p256");
  return createSelfSignedRoot({ key: privateKey, trustDomain: "upstream.test", ttl: "3650d", now: clock() });
}

describe("intermediate signers (upstream authority)", () => {
  it("renews meshlet's intermediate at half its lifetime; new leaves chain to the new intermediate", async () => {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.now();
    const clock = () => base + scheduler.now();
    const upstream = await fakeUpstream(clock);
    // The CA logs each renewal: that log line is the event the test waits for.
    let onRenewed: () => void = () => {};
    const renewed = new Promise<void>((resolve) => {
      onRenewed = resolve;
    });
    const logger = { ...silentLogger, info: (message: string) => message.includes("renewed") && onRenewed() };
    const ca = await CertificateAuthority.fromSigner(upstream.signer, {
      logger,
      trustDomain: "example.org",
      intermediateTtl: "10h",
      clock,
      scheduler,
    });
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]!.spiffeId.toString()).toBe("spiffe://example.org");
    expect(upstream.requests[0]!.ttlMs).toBe(10 * 3_600_000);
    const first = (await ca.mintSvid({ identity: "spiffe://example.org/w" })).chain;
    expect(first).toHaveLength(3);
    expect(first[2]).toBe(upstream.root.pem);

    scheduler.maxFrames = 5 * 3_600_000 - 1000;
    scheduler.flush();
    expect(upstream.requests).toHaveLength(1);
    scheduler.maxFrames = 5 * 3_600_000 + 1000;
    scheduler.flush();
    await renewed;
    expect(upstream.requests).toHaveLength(2);
    const second = (await ca.mintSvid({ identity: "spiffe://example.org/w" })).chain;
    expect(second[1]).not.toBe(first[1]);
    const intermediate = new X509Certificate(second[1]!);
    expect(new X509Certificate(second[0]!).verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.verify(new X509Certificate(upstream.root.pem).publicKey)).toBe(true);
    ca.close();
  });

  it("fetches the upstream's roots again every rootRefreshInterval, so an upstream root rotation reaches the trust bundle", async () => {
    const { scheduler, clock, upstream, ca } = await refreshingCa();
    const next = await nextUpstreamRoot(clock);
    upstream.published.unshift(next.pem);
    const refreshed = firstValueFrom(ca.trustBundle$.pipe(filter((b) => b.roots.length === 2)));
    scheduler.maxFrames = 3_600_000;
    scheduler.flush();
    expect((await refreshed).roots).toEqual([next.pem, upstream.root.pem]);
    ca.close();
  });

  it("keeps a root the upstream stopped publishing until it expires: the intermediate and the leaves it signed still chain to it", async () => {
    // SPIRE appends upstream roots to the bundle and prunes only expired ones
    // (spiffe/spire pkg/server/ca/manager: appendBundle, PruneBundle): a root that vanishes from
    // the upstream's answer (Vault's ca/pem returns only the current issuer) may still anchor the
    // intermediate meshlet signs with and every leaf in use.
    const { scheduler, clock, upstream, ca } = await refreshingCa();
    const before = (await ca.mintSvid({ identity: "spiffe://example.org/w" })).chain;
    const next = await nextUpstreamRoot(clock);
    upstream.published.splice(0, upstream.published.length, next.pem);
    const refreshed = firstValueFrom(ca.trustBundle$.pipe(filter((b) => b.roots.includes(next.pem))));
    scheduler.maxFrames = 3_600_000;
    scheduler.flush();
    expect((await refreshed).roots).toEqual([next.pem, upstream.root.pem]);
    const after = (await ca.mintSvid({ identity: "spiffe://example.org/w" })).chain;
    expect(after.at(-1)).toBe(upstream.root.pem);
    expect(ca.trustBundle.roots).toContain(before.at(-1));
    ca.close();
  });
});
