import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { filter, firstValueFrom } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { CertificateAuthority } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { makeIstioCaCerts } from "./openssl.js";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;

/** A self-signed root that expired yesterday, made with @peculiar/x509 (not the CA's own code). */
async function expiredRoot(): Promise<string> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0a",
    name: "O=Istio, CN=Old Root CA",
    notBefore: new Date(Date.now() - 400 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
    keys: keys as webcrypto.CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return cert.toString("pem");
}

describe("fromIstioCaCerts (Istio's plug-in cacerts)", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("loads a root-cert.pem with several roots where one has expired (a rotation's A+B state) and leaves the expired one out", async () => {
    const tmp = await tempDir("cacerts-expired");
    cleanups.push(() => tmp.cleanup());
    await makeIstioCaCerts(tmp.dir);
    const current = await readFile(join(tmp.dir, "root-cert.pem"), "utf8");
    await writeFile(join(tmp.dir, "root-cert.pem"), `${await expiredRoot()}\n${current}`);
    const ca = await CertificateAuthority.fromIstioCaCerts(tmp.dir, { trustDomain: TD });
    cleanups.push(() => ca.close());
    expect(ca.trustBundle.roots.map((r) => new X509Certificate(r).subject)).toEqual(["O=Istio\nCN=Root CA"]);
    const chain = (await ca.mintSvid({ identity: WEB })).chain;
    expect(new X509Certificate(chain[chain.length - 1] as string).subject).toBe("O=Istio\nCN=Root CA");
  });

  it("with watch: a changed directory reaches trustBundle$ and the new key signs", async () => {
    const tmp = await tempDir("cacerts-watch");
    const next = await tempDir("cacerts-next");
    cleanups.push(
      () => tmp.cleanup(),
      () => next.cleanup(),
    );
    await makeIstioCaCerts(tmp.dir, "cluster1");
    await makeIstioCaCerts(next.dir, "cluster1");
    const ca = await CertificateAuthority.fromIstioCaCerts(tmp.dir, { trustDomain: TD, watch: true });
    cleanups.push(() => ca.close());
    const oldRoot = ca.trustBundle.roots[0] as string;
    const updated = firstValueFrom(ca.trustBundle$.pipe(filter((b) => b.roots.length === 2)));
    // Plug in the next CA: its files, with both roots trusted (old + new).
    const read = (file: string) => readFile(join(next.dir, file), "utf8");
    const newRoot = await read("root-cert.pem");
    for (const file of ["ca-key.pem", "ca-cert.pem", "cert-chain.pem"])
      await writeFile(join(tmp.dir, file), await read(file));
    await writeFile(join(tmp.dir, "root-cert.pem"), `${newRoot}${oldRoot}`);
    const bundle = await updated;
    expect(bundle.roots.map((r) => new X509Certificate(r).raw.toString("base64"))).toEqual(
      [newRoot, oldRoot].map((r) => new X509Certificate(r).raw.toString("base64")),
    );
    const leaf = new X509Certificate((await ca.mintSvid({ identity: WEB })).chain[0] as string);
    expect(leaf.verify(new X509Certificate(await read("ca-cert.pem")).publicKey)).toBe(true);
  }, 30_000);
});
