import { createPublicKey, verify } from "node:crypto";
import { copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { type Client, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  JWTBundlesRequestSchema,
  type JWTBundlesResponse,
  JWTSVIDRequestSchema,
  type JWTSVIDResponse,
  SpiffeWorkloadAPI,
  ValidateJWTSVIDRequestSchema,
  type ValidateJWTSVIDResponse,
} from "@meshlet/api/spiffe/workload/workload_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaError, CertificateAuthority } from "../src/index.js";
import { startWorkloadApi, tempDir } from "./helpers.js";
import { opensslSelfSigned } from "./openssl.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/shop/sa/cart`;

interface Jwks {
  keys: { kid: string; use: string; kty: string; alg: string; [k: string]: unknown }[];
  spiffe_sequence: number;
}

/**
 * The Workload API's JWT-SVID profile (SPIFFE Workload API spec, JWT-SVID spec) over a Unix socket.
 * Tokens are checked here with node:crypto against the keys FetchJWTBundles sent (not with the
 * library the CA signs with).
 */
describe("Workload API JWT-SVID methods", () => {
  let ca: CertificateAuthority;
  let client: Client;
  let fixture: Awaited<ReturnType<typeof startWorkloadApi>>;

  beforeAll(async () => {
    fixture = await startWorkloadApi(TD, ID);
    ({ ca, client } = fixture);
  });

  afterAll(() => fixture?.close());

  function unary<I extends DescMessage, O extends DescMessage>(
    method: { name: string; input: I; output: O },
    request: MessageShape<I>,
    header = true,
  ): Promise<MessageShape<O>> {
    const metadata = new Metadata();
    if (header) metadata.set("workload.spiffe.io", "true");
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        `/${SpiffeWorkloadAPI.typeName}/${method.name}`,
        (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
        (b: Buffer) => fromBinary(method.output, b),
        request,
        metadata,
        (error: ServiceError | null, response?: MessageShape<O>) =>
          error ? reject(error) : resolve(response as MessageShape<O>),
      ),
    );
  }

  const fetchJwt = (audience: string[], spiffeId = "", header = true) =>
    unary(
      SpiffeWorkloadAPI.method.fetchJWTSVID,
      create(JWTSVIDRequestSchema, { audience, spiffeId }),
      header,
    ) as Promise<JWTSVIDResponse>;
  const validate = (svid: string, audience: string) =>
    unary(
      SpiffeWorkloadAPI.method.validateJWTSVID,
      create(ValidateJWTSVIDRequestSchema, { svid, audience }),
    ) as Promise<ValidateJWTSVIDResponse>;

  function firstJwtBundle(): Promise<JWTBundlesResponse> {
    const metadata = new Metadata();
    metadata.set("workload.spiffe.io", "true");
    const desc = SpiffeWorkloadAPI.method.fetchJWTBundles;
    const stream = client.makeServerStreamRequest(
      `/${SpiffeWorkloadAPI.typeName}/${desc.name}`,
      (m: MessageShape<typeof JWTBundlesRequestSchema>) => Buffer.from(toBinary(JWTBundlesRequestSchema, m)),
      (b: Buffer) => fromBinary(desc.output, b),
      create(JWTBundlesRequestSchema),
      metadata,
    );
    return new Promise((resolve, reject) => {
      stream.once("data", (m: JWTBundlesResponse) => {
        resolve(m);
        stream.cancel();
      });
      stream.once("error", (e: ServiceError) => (e.code === status.CANCELLED ? undefined : reject(e)));
    });
  }

  const failure = async (p: Promise<unknown>) =>
    (await p.then(
      () => undefined,
      (e: ServiceError) => e,
    )) as ServiceError;

  it("FetchJWTSVID returns a JWT-SVID (sub, aud, exp; ES256 with kid) that verifies with a key from FetchJWTBundles", async () => {
    const response = await fetchJwt(["spiffe://example.org/ns/shop/sa/payments"]);
    expect(response.svids).toHaveLength(1);
    const { spiffeId, svid } = response.svids[0]!;
    expect(spiffeId).toBe(ID);
    const [h, p, s] = svid.split(".") as [string, string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    expect(header).toMatchObject({ alg: "ES256", typ: "JWT" });
    expect(Object.keys(header).sort()).toEqual(["alg", "kid", "typ"]);
    expect(claims.sub).toBe(ID);
    expect(claims.aud).toEqual(["spiffe://example.org/ns/shop/sa/payments"]);
    expect(claims.exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(200);
    expect(claims.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(300);

    const bundles = (await firstJwtBundle()).bundles;
    expect(Object.keys(bundles)).toEqual([`spiffe://${TD}`]);
    const jwks = JSON.parse(Buffer.from(bundles[`spiffe://${TD}`]!).toString()) as Jwks;
    const key = jwks.keys.find((k) => k.kid === header.kid);
    expect(key).toMatchObject({ use: "jwt-svid", kty: "EC", crv: "P-256" });
    const publicKey = createPublicKey({ key: key as never, format: "jwk" });
    const ok = verify(
      "sha256",
      Buffer.from(`${h}.${p}`),
      { key: publicKey, dsaEncoding: "ieee-p1363" },
      Buffer.from(s, "base64url"),
    );
    expect(ok).toBe(true);
  });

  it("ValidateJWTSVID accepts a token for its audience and returns the SPIFFE ID and claims", async () => {
    const { svid } = (await fetchJwt(["reports"])).svids[0]!;
    const result = await validate(svid, "reports");
    expect(result.spiffeId).toBe(ID);
    expect(result.claims?.sub).toBe(ID);
    expect(result.claims?.aud).toEqual(["reports"]);
  });

  it("ValidateJWTSVID refuses another audience, a tampered token and a token from another CA with INVALID_ARGUMENT", async () => {
    const { svid } = (await fetchJwt(["reports"])).svids[0]!;
    const [h, , s] = svid.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: `spiffe://${TD}/ns/kube-system/sa/admin`, aud: ["reports"], exp: 4_000_000_000 })).toString("base64url")}.${s}`;
    const other = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const foreign = (await other.mintJwtSvid({ identity: ID, audience: ["reports"] })).token;
    other.close();
    for (const [token, audience, reason] of [
      [svid, "billing", /aud/],
      [forged, "reports", /signature/],
      [foreign, "reports", /no applicable key|key/i],
    ] as const) {
      const error = await failure(validate(token, audience));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(reason);
    }
  });

  it("FetchJWTSVID refuses a missing audience, another identity and a call without the security header", async () => {
    expect((await failure(fetchJwt([]))).code).toBe(status.INVALID_ARGUMENT);
    expect((await failure(fetchJwt(["reports"], `spiffe://${TD}/ns/shop/sa/other`))).code).toBe(
      status.PERMISSION_DENIED,
    );
    const missing = await failure(fetchJwt(["reports"], "", false));
    expect(missing.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.details).toContain("security header");
  });

  it("a JWT-SVID signed before a root rotation still validates after it (the old key stays in the JWT bundle)", async () => {
    const { svid } = (await fetchJwt(["reports"])).svids[0]!;
    await ca.rotateRoot({ mode: "keep-key" });
    const rotation = await ca.rotateRoot({ mode: "new-key", activateAfter: 0 });
    expect(rotation.phase).toBe("prepared");
    expect((await validate(svid, "reports")).spiffeId).toBe(ID);
    const jwks = JSON.parse(
      Buffer.from((await firstJwtBundle()).bundles[`spiffe://${TD}`]!).toString(),
    ) as Jwks;
    expect(jwks.keys.length).toBe(2);
  });
});

describe("JWT-SVIDs from a CA whose key JWT-SVID does not allow", () => {
  it("an Ed25519 CA mints no JWT-SVIDs (JWT-SVID 2.1: RS, ES and PS algorithms only) and publishes no JWT authority", async () => {
    const tmp = await tempDir("ed25519-ca");
    try {
      // An Ed25519 plugged-in CA, made with openssl: it signs X509-SVIDs, but an EdDSA JWT-SVID is
      // one every JWT-SVID validator must reject (the CA's own ValidateJWTSVID included).
      const { cert, key } = await opensslSelfSigned(tmp.dir, "ed-ca", {
        subject: "/O=example.org",
        keyType: "ed25519",
      });
      await writeFile(join(tmp.dir, "ca-cert.pem"), cert);
      await writeFile(join(tmp.dir, "ca-key.pem"), key);
      await copyFile(join(tmp.dir, "ca-cert.pem"), join(tmp.dir, "root-cert.pem"));
      const ca = await CertificateAuthority.fromIstioCaCerts(tmp.dir, { trustDomain: TD });
      try {
        await expect(ca.mintSvid({ identity: ID })).resolves.toBeDefined();
        expect(ca.jwtBundle.keys).toEqual([]);
        const error = await ca.mintJwtSvid({ identity: ID, audience: ["db"] }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CaError);
        expect((error as CaError).code).toBe("unsupported-key");
        expect((error as CaError).message).toMatch(/JWT-SVID/);
      } finally {
        ca.close();
      }
    } finally {
      await tmp.cleanup();
    }
  });
});
