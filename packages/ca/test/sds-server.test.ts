import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Secret } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { TypeUrl } from "@meshlet/xds";
import { AdsClient, type ReceivedResponse } from "@meshlet/xds/testing";
import { VirtualTimeScheduler } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { CertificateAuthority, SdsServer } from "../src/index.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/shop/sa/cart`;

function secrets(response: ReceivedResponse): Map<string, Secret> {
  return new Map(response.resources.map((r) => [r.name, r.message as Secret]));
}

function certOf(secret: Secret): { leaf: X509Certificate; keyPem: string } {
  if (secret.type.case !== "tlsCertificate") throw new Error(`${secret.name} is not a TLS certificate`);
  const chain = secret.type.value.certificateChain?.specifier;
  const key = secret.type.value.privateKey?.specifier;
  if (chain?.case !== "inlineBytes" || key?.case !== "inlineBytes") throw new Error("expected inline bytes");
  return { leaf: new X509Certificate(Buffer.from(chain.value)), keyPem: Buffer.from(key.value).toString() };
}

function rootsOf(secret: Secret): string {
  if (secret.type.case !== "validationContext") throw new Error(`${secret.name} is not a validation context`);
  const ca = secret.type.value.trustedCa?.specifier;
  if (ca?.case !== "inlineBytes") throw new Error("expected inline bytes");
  return Buffer.from(ca.value).toString();
}

/**
 * SDS on @meshlet/xds's server, checked with @meshlet/xds's scriptable client (Envoy cannot run
 * here); the SVID renewal timer runs on a virtual-time scheduler, so rotation is deterministic.
 */
describe("SdsServer (envoy.service.secret.v3)", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(protocol: "sotw" | "delta") {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.now();
    const clock = () => base + scheduler.now();
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, clock, scheduler });
    const sds = new SdsServer({
      ca,
      identity: ID,
      rotation: { ttl: "1h", scheduler, clock, random: () => 0 },
    });
    await sds.ready;
    const server = await sds.listen({ address: "127.0.0.1:0", insecure: true });
    const client = AdsClient.connect({
      address: `127.0.0.1:${server.port}`,
      service: "sds",
      protocol,
      autoAck: true,
    });
    cleanups.push(
      () => ca.close(),
      () => server.close(),
      () => client.close(),
    );
    return { scheduler, ca, sds, client, base };
  }

  it("serves `default` (SVID chain + key) and `ROOTCA` (trust bundle) over SotW", async () => {
    const { ca, client } = await setup("sotw");
    client.request({ typeUrl: TypeUrl.Secret, resourceNames: ["default", "ROOTCA"] });
    const response = await client.next(TypeUrl.Secret);
    const got = secrets(response);
    expect([...got.keys()].sort()).toEqual(["ROOTCA", "default"]);
    const { leaf, keyPem } = certOf(got.get("default")!);
    expect(leaf.subjectAltName).toBe(`URI:${ID}`);
    expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(rootsOf(got.get("ROOTCA")!)).toBe(ca.trustBundle.roots.join(""));
  });

  it("pushes a new `default` at half the SVID lifetime, and only that secret over Delta", async () => {
    const { scheduler, client, base } = await setup("delta");
    client.requestDelta({ typeUrl: TypeUrl.Secret, subscribe: ["default", "ROOTCA"] });
    const first = await client.next(TypeUrl.Secret);
    const before = certOf(secrets(first).get("default")!).leaf;
    expect(secrets(first).size).toBe(2);
    scheduler.flush(); // runs the renewal timer (virtual time: 30 minutes of a 1h SVID, no jitter)
    const second = await client.next(TypeUrl.Secret);
    expect(second.resources.map((r) => r.name)).toEqual(["default"]);
    const after = certOf(secrets(second).get("default")!).leaf;
    expect(after.serialNumber).not.toBe(before.serialNumber);
    // Renewed at half of the first SVID's lifetime (1h plus the 60s backdate), not at expiry; the
    // new SVID's notBefore is that instant minus its own 60s backdate.
    const renewedAt = new Date(after.validFrom).getTime() + 60_000;
    const half = new Date(before.validFrom).getTime() + (3_600_000 + 60_000) / 2;
    expect(Math.abs(renewedAt - half)).toBeLessThanOrEqual(2_000);
    expect(new Date(after.validFrom).getTime()).toBeGreaterThan(base);
  });

  it("pushes `ROOTCA` when the trust bundle changes", async () => {
    const { ca, client } = await setup("sotw");
    client.request({ typeUrl: TypeUrl.Secret, resourceNames: ["default", "ROOTCA"] });
    await client.next(TypeUrl.Secret);
    const rotation = await ca.rotateRoot({ mode: "new-key", overlap: "1h" });
    const next = await client.next(TypeUrl.Secret);
    expect(rootsOf(secrets(next).get("ROOTCA")!)).toBe(rotation.root + rotation.previousRoot);
  });
});
