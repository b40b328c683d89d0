import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials } from "@grpc/grpc-js";
import {
  CertificateAuthority,
  WorkloadApiServer,
  type WorkloadApiServerOptions,
  type X509Svid,
} from "../src/index.js";

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `meshlet-ca-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The private key of an SVID as a KeyObject. */
export function keyOf(svid: X509Svid): KeyObject {
  return createPrivateKey(svid.privateKey);
}

/** TLS key/cert pair (PEM buffers) for grpc-js credentials; the chain without the root. */
export function tlsPair(svid: X509Svid): { private_key: Buffer; cert_chain: Buffer } {
  return {
    private_key: Buffer.from(svid.privateKey),
    cert_chain: Buffer.from(svid.chain.slice(0, -1).join("")),
  };
}

/** The CA's root bundle as one PEM buffer. */
export function rootsOf(ca: CertificateAuthority): Buffer {
  return Buffer.from(ca.trustBundle.roots.join(""));
}

/** An ES256 JWT issuer for tests: a key pair and a signer. */
export function testJwtIssuer() {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "test-key" };
  return {
    jwk,
    sign(claims: Record<string, unknown>, key: KeyObject = privateKey): string {
      const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "test-key" })).toString(
        "base64url",
      );
      const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
      const signature = sign("sha256", Buffer.from(`${header}.${payload}`), {
        key,
        dsaEncoding: "ieee-p1363",
      });
      return `${header}.${payload}.${signature.toString("base64url")}`;
    },
  };
}

/** A self-signed CA, a WorkloadApiServer on a Unix socket in a temp dir, and a client for it. */
export async function startWorkloadApi(
  trustDomain: string,
  identity: string,
  options: Omit<WorkloadApiServerOptions, "ca" | "identity"> = {},
) {
  const tmp = await tempDir("workload");
  const ca = await CertificateAuthority.selfSigned({ trustDomain });
  const socket = join(tmp.dir, "agent.sock");
  const server = await new WorkloadApiServer({ ca, identity, ...options }).listen({ path: socket });
  const client = new Client(`unix:${socket}`, credentials.createInsecure());
  return {
    ca,
    client,
    dir: tmp.dir,
    async close() {
      client.close();
      await server.close();
      ca.close();
      await tmp.cleanup();
    },
  };
}
