import { X509Certificate } from "node:crypto";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { of } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CertificateServiceEvent } from "../src/index.js";
import {
  CertificateAuthority,
  createCsr,
  createSpiffeServerCredentials,
  generateKey,
  IstioCertificateClient,
  IstioCertificateService,
  JwtAuthenticator,
  JwtVerifier,
  KubernetesTokenReviewVerifier,
  MtlsAuthenticator,
  type X509Svid,
} from "../src/index.js";
import { rootsOf, testJwtIssuer, tlsPair } from "./helpers.js";

const TD = "example.org";
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const DB = `spiffe://${TD}/ns/default/sa/db`;
const ISTIOD = `spiffe://${TD}/ns/istio-system/sa/istiod`;
const now = () => Math.floor(Date.now() / 1000);

async function csrFor(uris: string[]): Promise<string> {
  const { privateKey } = await generateKey("ecdsa-p256");
  return createCsr({ privateKey, uris });
}

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe("IstioCertificateService over gRPC (TLS on loopback)", () => {
  let ca: CertificateAuthority;
  let server: { port: number; close(): Promise<void> };
  let tls: ReturnType<typeof createSpiffeServerCredentials>;
  let webSvid: X509Svid;
  const issuer = testJwtIssuer();
  const events: CertificateServiceEvent[] = [];
  let tokenReview: HttpServer;
  const reviews: unknown[] = [];
  const clients: IstioCertificateClient[] = [];

  function client(options: { svid?: X509Svid } = {}): IstioCertificateClient {
    const pair = options.svid ? tlsPair(options.svid) : undefined;
    const creds = credentials.createSsl(rootsOf(ca), pair?.private_key ?? null, pair?.cert_chain ?? null, {
      // SPIFFE: authenticate the server by its SPIFFE ID, not a DNS name.
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname === `URI:${ISTIOD}`
          ? undefined
          : new Error(`unexpected server ${cert.subjectaltname}`),
    });
    const c = new IstioCertificateClient(`127.0.0.1:${server.port}`, creds);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    webSvid = await ca.mintSvid({ identity: WEB });
    const istiod = await ca.mintSvid({ identity: ISTIOD });
    // A local server speaking the Kubernetes TokenReview API (authentication.k8s.io/v1): a real
    // API server cannot run here. It accepts the token "k8s-db-token" as system:serviceaccount:default:db.
    tokenReview = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        const review = JSON.parse(body) as { spec: { token: string } };
        reviews.push({ path: req.url, auth: req.headers.authorization, review });
        const ok = review.spec.token === "k8s-db-token";
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenReview",
            status: ok
              ? {
                  authenticated: true,
                  user: {
                    username: "system:serviceaccount:default:db",
                    groups: [
                      "system:serviceaccounts",
                      "system:serviceaccounts:default",
                      "system:authenticated",
                    ],
                  },
                  audiences: ["istio-ca"],
                }
              : { authenticated: false, error: "invalid bearer token" },
          }),
        );
      });
    });
    await new Promise<void>((r) => tokenReview.listen(0, "127.0.0.1", r));
    const service = new IstioCertificateService({
      ca,
      authenticators: [
        new MtlsAuthenticator({ trustDomains: [TD] }),
        new JwtAuthenticator({
          async verify(token) {
            // Two verifiers behind the one TokenVerifier interface: JWTs first, TokenReview otherwise.
            if (token.split(".").length === 3) {
              return new JwtVerifier({
                keys: [issuer.jwk],
                issuer: "https://issuer.test",
                audiences: ["istio-ca"],
                trustDomain: TD,
              }).verify(token);
            }
            return new KubernetesTokenReviewVerifier({
              apiServer: `http://127.0.0.1:${(tokenReview.address() as AddressInfo).port}`,
              bearerToken: "ca-reviewer-token",
              audiences: ["istio-ca"],
              trustDomain: TD,
            }).verify(token);
          },
        }),
      ],
      authorize: (caller) => !caller.identities.some((id) => id.istio?.namespace === "quarantine"),
    });
    service.events$.subscribe((e) => events.push(e));
    // Client certificates are optional on this port (bearer-token callers have none), as on istiod's.
    tls = createSpiffeServerCredentials({ trustBundle$: ca.trustBundle$, svid$: of(istiod) });
    server = await service.listen({ address: "127.0.0.1:0", credentials: tls.credentials });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    tls?.close();
    await new Promise((r) => tokenReview?.close(r));
    ca?.close();
  });

  it("issues a certificate to a caller authenticated by its client certificate", async () => {
    const chain = await client({ svid: webSvid }).createCertificate({
      csr: await csrFor([WEB]),
      validitySeconds: 3600,
    });
    expect(chain).toHaveLength(2);
    const leaf = new X509Certificate(chain[0] as string);
    expect(leaf.subjectAltName).toBe(`URI:${WEB}`);
    expect(leaf.verify(new X509Certificate(chain[1] as string).publicKey)).toBe(true);
    expect(chain[chain.length - 1]).toBe(ca.trustBundle.roots[0]);
    expect(new Date(leaf.validTo).getTime() - Date.now()).toBeLessThanOrEqual(3600_000);
    expect(events.at(-1)).toMatchObject({ type: "issued", spiffeId: WEB, authenticator: "mtls" });
  });

  it("issues a certificate to a caller with a valid bearer JWT", async () => {
    const token = issuer.sign({
      iss: "https://issuer.test",
      aud: ["istio-ca"],
      sub: "system:serviceaccount:default:web",
      exp: now() + 600,
    });
    const chain = await client().createCertificate({ csr: await csrFor([]), bearerToken: token });
    expect(new X509Certificate(chain[0] as string).subjectAltName).toBe(`URI:${WEB}`);
  });

  it("issues a certificate to a caller whose token the Kubernetes TokenReview API accepts", async () => {
    const chain = await client().createCertificate({ csr: await csrFor([DB]), bearerToken: "k8s-db-token" });
    expect(new X509Certificate(chain[0] as string).subjectAltName).toBe(`URI:${DB}`);
    expect(reviews.at(-1)).toMatchObject({
      path: "/apis/authentication.k8s.io/v1/tokenreviews",
      auth: "Bearer ca-reviewer-token",
      review: { kind: "TokenReview", spec: { token: "k8s-db-token", audiences: ["istio-ca"] } },
    });
  });

  it("refuses a CSR with a forged SAN with PERMISSION_DENIED", async () => {
    const error = await failure(client({ svid: webSvid }).createCertificate({ csr: await csrFor([DB]) }));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(error.details).toContain(`asks for ${DB} but the caller is authenticated as ${WEB}`);
  });

  it("answers UNAUTHENTICATED to a caller without credentials", async () => {
    const error = await failure(client().createCertificate({ csr: await csrFor([WEB]) }));
    expect(error.code).toBe(status.UNAUTHENTICATED);
  });

  it("answers UNAUTHENTICATED to a JWT signed by an unknown key, an expired JWT and a rejected token", async () => {
    const other = testJwtIssuer();
    const claims = { iss: "https://issuer.test", aud: "istio-ca", sub: "system:serviceaccount:default:web" };
    const forged = other.sign({ ...claims, exp: now() + 600 });
    const expired = issuer.sign({ ...claims, exp: now() - 3600 });
    for (const token of [forged, expired, "not-a-known-token"]) {
      const error = await failure(client().createCertificate({ csr: await csrFor([]), bearerToken: token }));
      expect(error.code).toBe(status.UNAUTHENTICATED);
    }
  });

  it("answers PERMISSION_DENIED to an authenticated caller the authorizer refuses", async () => {
    const token = issuer.sign({
      iss: "https://issuer.test",
      aud: "istio-ca",
      sub: "system:serviceaccount:quarantine:x",
      exp: now() + 600,
    });
    const error = await failure(client().createCertificate({ csr: await csrFor([]), bearerToken: token }));
    expect(error.code).toBe(status.PERMISSION_DENIED);
  });

  it("answers INVALID_ARGUMENT to a malformed CSR and keeps serving", async () => {
    const error = await failure(client({ svid: webSvid }).createCertificate({ csr: "garbage" }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain("malformed-pem");
    const tooLong = await failure(
      client({ svid: webSvid }).createCertificate({ csr: await csrFor([WEB]), validitySeconds: 365 * 86400 }),
    );
    expect(tooLong.code).toBe(status.INVALID_ARGUMENT);
    const chain = await client({ svid: webSvid }).createCertificate({ csr: await csrFor([WEB]) });
    expect(chain).toHaveLength(2);
  });

  it("answers a request that is not protobuf with an error status and keeps serving", async () => {
    const raw = new Client(
      `127.0.0.1:${server.port}`,
      credentials.createSsl(rootsOf(ca), null, null, {
        checkServerIdentity: () => undefined,
      }),
    );
    const error = await new Promise<ServiceError>((resolve, reject) =>
      raw.makeUnaryRequest(
        "/istio.v1.auth.IstioCertificateService/CreateCertificate",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        (e) => (e ? resolve(e) : reject(new Error("garbage was accepted"))),
      ),
    );
    raw.close();
    expect([status.INTERNAL, status.INVALID_ARGUMENT]).toContain(error.code);
    const chain = await client({ svid: webSvid }).createCertificate({ csr: await csrFor([WEB]) });
    expect(new X509Certificate(chain[0] as string).subjectAltName).toBe(`URI:${WEB}`);
  });
});
