import { rename, stat, writeFile } from "node:fs/promises";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { VirtualTimeScheduler } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CaError,
  CertificateAuthority,
  createCsr,
  generateKey,
  IstioCertificateService,
  inClusterConnection,
  JwtAuthenticator,
  KubernetesTokenReviewVerifier,
  SdsServer,
  WorkloadApiServer,
} from "../src/index.js";
import { tempDir } from "./helpers.js";

const TD = "example.org";
const WEB = `spiffe://${TD}/ns/default/sa/web`;

async function caError(promise: Promise<unknown>): Promise<CaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CaError);
  return error as CaError;
}

/** The body of an authentication.k8s.io/v1 TokenReview the API server authenticated. */
const tokenReviewAnswer = (
  user: Record<string, unknown>,
  audiences: string[],
  status: Record<string, unknown> = {},
) =>
  JSON.stringify({
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenReview",
    status: { authenticated: true, user, audiences, ...status },
  });

async function csr(uris: string[] = [WEB]) {
  const { privateKey } = await generateKey();
  return createCsr({ privateKey, uris });
}

describe("the CA refuses what must never be issued", () => {
  it("refuses to sign once the issuer has expired (no leaf with notAfter before notBefore)", async () => {
    const scheduler = new VirtualTimeScheduler();
    const base = Date.now();
    const clock = () => base + scheduler.now();
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, rootTtl: "2h", clock, scheduler });
    scheduler.schedule(() => {}, 3 * 3_600_000);
    scheduler.flush();
    const error = await caError(ca.sign({ csr: await csr(), identities: [WEB] }));
    expect(error.code).toBe("ca-expired");
    expect(error.message).toContain("expired");
    ca.close();
  });

  it("refuses a leaf for the trust domain's own ID (X509-SVID 3.1: a leaf's ID has a path)", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const bare = `spiffe://${TD}`;
    // One attempt at a time: a rejected promise left waiting while another is awaited is an
    // unhandled rejection.
    const attempts = [
      async () => ca.sign({ csr: await csr([]), identities: [bare] }),
      async () => ca.sign({ csr: await csr([bare]), identities: [bare] }),
      () => ca.mintSvid({ identity: bare }),
    ];
    for (const attempt of attempts) {
      const error = await caError(attempt());
      expect(error.code).toBe("invalid-spiffe-id");
      expect(error.message).toContain("X509-SVID 3.1");
    }
    ca.close();
  });
});

describe("KubernetesTokenReviewVerifier", () => {
  let server: HttpServer;
  const reviews: { audiences?: string[] }[] = [];
  let answerAudiences: string[] = ["istio-ca"];
  // What a real API server answers for a service-account token (Kubernetes "Authenticating":
  // service accounts are in the groups system:serviceaccounts and system:serviceaccounts:<ns>;
  // the same example is in istio/istio security/pkg/k8s/tokenreview/k8sauthn.go).
  const serviceAccountUser = {
    username: "system:serviceaccount:default:web",
    groups: ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
  };
  let answerUser: Record<string, unknown> = serviceAccountUser;
  let answerStatus: Record<string, unknown> = {};
  beforeAll(async () => {
    // A local server speaking authentication.k8s.io/v1 TokenReview (no API server can run here): it
    // records the requested audiences and answers with `answerAudiences`, as the API server echoes
    // the audiences the token is valid for.
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        const review = JSON.parse(body) as { spec: { token: string; audiences?: string[] } };
        reviews.push({ ...(review.spec.audiences ? { audiences: review.spec.audiences } : {}) });
        res.setHeader("content-type", "application/json");
        res.end(tokenReviewAnswer(answerUser, answerAudiences, answerStatus));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });
  afterAll(() => new Promise((r) => server.close(r)));
  const reviewer = () =>
    new KubernetesTokenReviewVerifier({
      apiServer: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      bearerToken: "reviewer",
      trustDomain: TD,
    });

  it("asks for audience istio-ca by default, as istio-agent's tokens carry, and refuses tokens for another audience", async () => {
    const verifier = reviewer();
    answerAudiences = ["istio-ca"];
    const verified = await verifier.verify("token");
    expect(verified.identities.map(String)).toEqual([WEB]);
    expect(reviews.at(-1)).toEqual({ audiences: ["istio-ca"] });
    answerAudiences = ["https://kubernetes.default.svc"];
    await expect(verifier.verify("token")).rejects.toThrow(/audience/);
  });

  it("refuses a user named like a service account who is not in the system:serviceaccounts group (as istiod does)", async () => {
    // An authentication webhook or OIDC issuer without a username prefix can name a user
    // "system:serviceaccount:…"; only the API server's service-account authenticator puts the
    // user in system:serviceaccounts. istio/istio security/pkg/k8s/tokenreview/k8sauthn.go
    // refuses such a review ("the token is not a service account").
    const verifier = reviewer();
    answerAudiences = ["istio-ca"];
    try {
      answerUser = { username: "system:serviceaccount:default:web", groups: ["system:authenticated"] };
      await expect(verifier.verify("token")).rejects.toThrow(/not a service account/);
      answerUser = { username: "system:serviceaccount:default:web" };
      await expect(verifier.verify("token")).rejects.toThrow(/not a service account/);
    } finally {
      answerUser = serviceAccountUser;
    }
    await expect(verifier.verify("token")).resolves.toMatchObject({
      attributes: { username: "system:serviceaccount:default:web" },
    });
  });
  it("fails closed on a review that is not plainly authenticated, carries an error, or names no valid service account", async () => {
    // authentication.k8s.io/v1 TokenReviewStatus: `authenticated` is a boolean, `error` says why
    // the review failed; istio/istio security/pkg/k8s/tokenreview/k8sauthn.go refuses a review
    // with a non-empty error before it looks at `authenticated`, and reads the username as exactly
    // four ":"-separated parts. Namespaces are DNS-1123 labels and service-account names DNS-1123
    // subdomains (Kubernetes "Object Names and IDs"), so anything else is not an API server's answer.
    const verifier = reviewer();
    answerAudiences = ["istio-ca"];
    try {
      for (const status of [{ authenticated: "true" }, { authenticated: 1 }, { error: "token expired" }]) {
        answerStatus = status;
        await expect(verifier.verify("token")).rejects.toThrow(/not authenticated|error|token expired/);
      }
      answerStatus = {};
      for (const username of [
        "system:serviceaccount:default:web:extra",
        "system:serviceaccount::web",
        "system:serviceaccount:default:",
        "system:serviceaccount:Default:web",
        "system:serviceaccount:def_ault:web",
        "system:serviceaccount:a/b:web",
        "system:serviceaccount:default:-web",
        `system:serviceaccount:${"n".repeat(64)}:web`,
        "system:serviceaccount:default:web%2F..",
      ]) {
        answerUser = { ...serviceAccountUser, username };
        await expect(verifier.verify("token"), username).rejects.toThrow(/not a service account/);
      }
      // A DNS-1123 subdomain (dots) is a valid service-account name.
      answerUser = { ...serviceAccountUser, username: "system:serviceaccount:default:web.v1" };
      await expect(verifier.verify("token")).resolves.toMatchObject({
        attributes: { username: "system:serviceaccount:default:web.v1" },
      });
    } finally {
      answerStatus = {};
      answerUser = serviceAccountUser;
    }
  });
});

describe("servers that hand out private keys", () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup() {
    const tmp = await tempDir("sockets");
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    cleanups.push(
      () => tmp.cleanup(),
      () => ca.close(),
    );
    return { tmp, ca };
  }

  it("the Workload API socket is created with mode 0600, or the mode the caller sets", async () => {
    const { tmp, ca } = await setup();
    const api = new WorkloadApiServer({ ca, identity: WEB });
    const path = join(tmp.dir, "agent.sock");
    const server = await api.listen({ path });
    cleanups.push(() => server.close());
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const shared = join(tmp.dir, "shared.sock");
    const second = await new WorkloadApiServer({ ca, identity: WEB }).listen({ path: shared, mode: 0o660 });
    cleanups.push(() => second.close());
    expect((await stat(shared)).mode & 0o777).toBe(0o660);
  });

  it("the SDS Unix socket is created with mode 0600", async () => {
    const { tmp, ca } = await setup();
    const sds = new SdsServer({ ca, identity: WEB });
    const path = join(tmp.dir, "sds.sock");
    const server = await sds.listen({ address: `unix:${path}` });
    cleanups.push(() => server.close());
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("listening on TCP without TLS needs an explicit insecure: true", async () => {
    const { ca } = await setup();
    const sds = new SdsServer({ ca, identity: WEB });
    cleanups.push(() => sds.close());
    const service = new IstioCertificateService({
      ca,
      authenticators: [new JwtAuthenticator({ verify: async () => ({ identities: [] }) })],
    });
    for (const attempt of [
      sds.listen({ address: "127.0.0.1:0" }),
      new WorkloadApiServer({ ca, identity: WEB }).listen({ address: "127.0.0.1:0" }),
      service.listen({ address: "127.0.0.1:0" }),
    ]) {
      const error = await caError(attempt);
      expect(error.code).toBe("invalid-argument");
      expect(error.message).toContain("insecure: true");
    }
    const open = await service.listen({ address: "127.0.0.1:0", insecure: true });
    cleanups.push(() => open.close());
    expect(open.port).toBeGreaterThan(0);
  });
});

describe("the CA's own service-account token", () => {
  it("is read again from the mounted file, so a token the kubelet rotated keeps working (as client-go re-reads it)", async () => {
    // Projected service-account tokens expire (1h by default, kubelet refreshes them at 80% of their
    // life): a token read once at start stops working. Kubernetes "Managing Service Accounts":
    // bound tokens; client-go's rest.InClusterConfig re-reads BearerTokenFile.
    const tmp = await tempDir("sa");
    let accepted = "token-1";
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.headers.authorization !== `Bearer ${accepted}`) {
          res.writeHead(401, { "content-type": "application/json" });
          res.end(JSON.stringify({ kind: "Status", status: "Failure", code: 401, reason: "Unauthorized" }));
          return;
        }
        res.setHeader("content-type", "application/json");
        res.end(
          tokenReviewAnswer(
            {
              username: "system:serviceaccount:default:web",
              groups: ["system:serviceaccounts", "system:serviceaccounts:default"],
            },
            ["istio-ca"],
          ),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      await writeFile(join(tmp.dir, "token"), "token-1\n");
      await writeFile(join(tmp.dir, "ca.crt"), "");
      await writeFile(join(tmp.dir, "namespace"), "istio-system");
      const connection = await inClusterConnection(tmp.dir);
      const verifier = new KubernetesTokenReviewVerifier({
        ...connection,
        apiServer: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        trustDomain: TD,
      });
      await expect(verifier.verify("workload-token")).resolves.toBeDefined();
      // The kubelet rotates the file (atomically); the API server now accepts only the new token.
      await writeFile(join(tmp.dir, "token.new"), "token-2\n");
      await rename(join(tmp.dir, "token.new"), join(tmp.dir, "token"));
      accepted = "token-2";
      const verified = await verifier.verify("workload-token");
      expect(verified.identities.map(String)).toEqual([WEB]);
    } finally {
      await new Promise((r) => server.close(r));
      await tmp.cleanup();
    }
  });
});
