import { execFileSync } from "node:child_process";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  DiscoveryRequestSchema,
  type DiscoveryResponse,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import {
  IstioCertificateRequestSchema,
  IstioCertificateResponseSchema,
} from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import { defaultValues, renderManifests } from "@meshlet/kube";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeVault, startFakeVault } from "../../adapters/test/support/fake-vault.js";
import { command as serve } from "../src/commands/serve.js";
import { FakeKubeCluster } from "./support/fake-kube-cluster.js";

// `meshlet serve --kubernetes` (meshletd) in-process against a FAKE Kubernetes API server over HTTPS
// (test/support/fake-kube-cluster.ts): no real API server can run here, so TokenReview, the CA
// Secret, ConfigMaps, namespaces and the webhook configurations are answered in their documented
// wire shapes by that fake. The clients are real @grpc/grpc-js channels behaving as Istio's agent
// does (istio/istio security/pkg/nodeagent/caclient/providers/citadel and pkg/istio-agent/xds_proxy.go):
// TLS to 15012 trusting the root from the published ConfigMap istio-ca-root-cert and verifying the
// Service name the injector writes as discovery address and CA_ADDR (meshletd.meshlet-system.svc),
// the service-account token (audience istio-ca) in `authorization: Bearer`, a CSR whose only SAN is
// the workload's SPIFFE ID, then ADS with the node Istio's agent sends: id
// `sidecar~<pod ip>~<pod>.<ns>~<ns>.svc.cluster.local` and metadata NAMESPACE, SERVICE_ACCOUNT,
// LABELS, ISTIO_VERSION, CLUSTER_ID (pilot/pkg/model/context.go, NodeMetadata's JSON names).

const NS = "meshlet-system";
const HOST = "meshletd.meshlet-system.svc";
const CATALOG_TOKEN = "token-shop-catalog";
const RATINGS_TOKEN = "token-shop-ratings";
const API_AUDIENCE_TOKEN = "token-shop-catalog-for-the-api-server";
const CATALOG_ID = "spiffe://cluster.local/ns/shop/sa/catalog";
const CATALOG_NODE = "sidecar~10.244.1.10~catalog-v1-5d9f.shop~shop.svc.cluster.local";
const MUTATING = "meshlet-sidecar-injector";
const VALIDATING = "meshlet-validator-meshlet-system";

interface Replica {
  readonly out: string[];
  readonly err: string[];
  /** `host:port` of xDS + CA over TLS, plaintext xDS; URLs of /ready and the webhooks. */
  readonly tls: string;
  readonly plaintext: string;
  readonly health: string;
  readonly webhook: string;
  /** The monitoring URL (`http://…/metrics`). */
  readonly metrics: string;
  stop(): Promise<number>;
}

async function until<T>(
  what: string,
  attempt: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let cluster: FakeKubeCluster;
let dir: string;
let replica: Replica;
const replicas: Replica[] = [];

async function startReplica(
  name: string,
  extra: {
    cluster?: FakeKubeCluster;
    kubeconfig?: string;
    args?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<Replica> {
  const api = extra.cluster ?? cluster;
  const out: string[] = [];
  const err: string[] = [];
  const abort = new AbortController();
  const exited = serve.run(
    [
      "--kubernetes",
      "--kubeconfig",
      extra.kubeconfig ?? join(dir, "kubeconfig"),
      "--namespace",
      NS,
      "--listen",
      "127.0.0.1:0",
      "--xds-plaintext",
      "127.0.0.1:0",
      "--metrics",
      "127.0.0.1:0",
      "--webhook",
      "127.0.0.1:0",
      "--health",
      "127.0.0.1:0",
      "--admin",
      "off",
      "--state-dir",
      join(dir, name),
      "--config-dir",
      join(dir, "no-such-dir"),
      "--ca-bundle-resync",
      "0.2",
      ...(extra.args ?? []),
    ],
    {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      env: {
        MESHLET_MUTATING_WEBHOOK: MUTATING,
        MESHLET_VALIDATING_WEBHOOK: VALIDATING,
        SERVICE_ACCOUNT: "meshletd",
        ...extra.env,
      },
      signal: abort.signal,
    },
  );
  let code: number | undefined;
  void exited.then((c) => {
    code = c;
  });
  await until(
    `${name} to start`,
    () => {
      if (code !== undefined) throw new Error(`${name} exited ${code}: ${err.join("\n")}`);
      return out.includes("Ready. Ctrl-C stops.") ? true : undefined;
    },
    20_000,
  ).catch((error: Error) => {
    const requests = api.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    throw new Error(`${error.message}\nstderr:\n${err.join("\n")}\nAPI requests:\n${requests}`);
  });
  const find = (re: RegExp) => {
    const m = out.map((l) => re.exec(l)).find((x) => x !== null);
    if (!m) throw new Error(`no ${re} in ${out.join("\n")}`);
    return m[1] as string;
  };
  const r: Replica = {
    out,
    err,
    tls: find(/^ {2}xDS \(ADS, SotW, Delta\) +(\S+)$/),
    plaintext: find(/^ {2}xDS \(ADS, SotW, Delta\), plaintext +(\S+)$/),
    health: find(/^ {2}health \(\/ready, \/healthz\) +(\S+)$/),
    webhook: find(/^ {2}admission webhooks \(\/inject, \/validate\) +(\S+)$/),
    metrics: find(/^ {2}metrics \(Prometheus\) +(\S+)$/),
    async stop() {
      abort.abort();
      return exited;
    },
  };
  replicas.push(r);
  return r;
}

const publishedRoot = (namespace: string) =>
  cluster.configMap(namespace, "istio-ca-root-cert")?.data as Record<string, string> | undefined;

/** A channel as Istio's agent opens it: TLS trusting `root`, verifying meshletd's Service name. */
function agentChannel(
  address: string,
  root: string,
  clientCert?: { cert: string; key: string },
): grpc.Client {
  return new grpc.Client(
    address,
    grpc.credentials.createSsl(
      Buffer.from(root),
      clientCert ? Buffer.from(clientCert.key) : null,
      clientCert ? Buffer.from(clientCert.cert) : null,
    ),
    { "grpc.ssl_target_name_override": HOST, "grpc.default_authority": HOST },
  );
}

/** The gRPC error a call or stream ended with; undefined when it succeeded. */
const refusal = (p: Promise<unknown>): Promise<grpc.ServiceError | undefined> =>
  p.then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );

const bearer = (token: string | undefined) => {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
};

/** A CSR made by the real openssl: EC P-256, no subject, one URI SAN (what the agent sends). */
function csrFor(spiffeId: string): { csr: string; key: string } {
  const work = mkdtempSync(join(tmpdir(), "meshletd-csr-"));
  try {
    const csr = execFileSync(
      "openssl",
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        join(work, "key.pem"),
        "-subj",
        "/",
        "-addext",
        `subjectAltName=URI:${spiffeId}`,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    return { csr, key: readFileSync(join(work, "key.pem"), "utf8") };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function createCertificate(client: grpc.Client, csr: string, token: string | undefined): Promise<string[]> {
  const request = create(IstioCertificateRequestSchema, { csr, validityDuration: 3600n });
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/istio.v1.auth.IstioCertificateService/CreateCertificate",
      (m: typeof request) => Buffer.from(toBinary(IstioCertificateRequestSchema, m)),
      (b: Buffer) => fromBinary(IstioCertificateResponseSchema, b),
      request,
      bearer(token),
      (error, response) => (error ? reject(error) : resolve(response?.certChain ?? [])),
    ),
  );
}

/** Opens ADS, asks for clusters, resolves with the first response or rejects with the stream's status. */
function firstClusters(
  client: grpc.Client,
  token: string | undefined,
  node: { id: string; namespace: string; serviceAccount: string },
): Promise<DiscoveryResponse> {
  const call = client.makeBidiStreamRequest(
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => b,
    bearer(token),
  );
  return new Promise((resolve, reject) => {
    call.on("data", (bytes: Buffer) => {
      resolve(fromBinary(DiscoveryResponseSchema, bytes));
      call.cancel();
    });
    call.on("error", reject);
    call.write(
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, {
          typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
          node: create(NodeSchema, {
            id: node.id,
            metadata: {
              NAMESPACE: node.namespace,
              SERVICE_ACCOUNT: node.serviceAccount,
              LABELS: { app: "catalog", version: "v1" },
              ISTIO_VERSION: "1.27.9",
              CLUSTER_ID: "Kubernetes",
            },
          }),
        }),
      ),
    );
  });
}

/** An ADS stream kept open: send requests for any node, read the first response, see how it ends. */
function adsStream(client: grpc.Client, token: string) {
  const call = client.makeBidiStreamRequest(
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => b,
    bearer(token),
  );
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
  const first = new Promise<DiscoveryResponse>((resolve) =>
    call.once("data", (bytes: Buffer) => resolve(fromBinary(DiscoveryResponseSchema, bytes))),
  );
  const send = (id: string, labels: Record<string, string>, responseNonce = "") =>
    call.write(
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, {
          typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
          responseNonce,
          node: create(NodeSchema, {
            id,
            metadata: { NAMESPACE: "shop", SERVICE_ACCOUNT: "catalog", LABELS: labels },
          }),
        }),
      ),
    );
  return { call, send, first, ended };
}

function httpsGet(
  url: string,
  root: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${url}${path}`,
      {
        method: body === undefined ? "GET" : "POST",
        ca: root,
        servername: HOST,
        checkServerIdentity: (_host, cert) =>
          cert.subjectaltname?.includes(`DNS:${HOST}`) ? undefined : new Error(`certificate not for ${HOST}`),
        headers: body === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** An AdmissionReview v1 as the API server sends it for a CREATE in namespace shop. */
function admissionReview(
  group: string,
  kind: string,
  resource: string,
  object: {
    readonly metadata: { readonly name: string; readonly namespace?: string };
    readonly [field: string]: unknown;
  },
) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "7f0b2891-916f-4ed6-b7cd-27bff1815a8c",
      kind: { group, version: "v1", kind },
      resource: { group, version: "v1", resource },
      operation: "CREATE",
      namespace: "shop",
      name: object.metadata.name,
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object,
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshletd-test-"));
  cluster = await new FakeKubeCluster().start();
  writeFileSync(join(dir, "kubeconfig"), cluster.kubeconfig());
  for (const ns of [NS, "shop", "default", "kube-public"]) cluster.putNamespace(ns);
  cluster.put("v1", "Service", {
    metadata: { name: "catalog", namespace: "shop" },
    spec: { clusterIP: "10.96.0.30", selector: { app: "catalog" }, ports: [{ name: "http", port: 8080 }] },
  });
  cluster.put("v1", "Pod", {
    metadata: { name: "catalog-v1-5d9f", namespace: "shop", labels: { app: "catalog", version: "v1" } },
    spec: { serviceAccountName: "catalog", containers: [{ name: "app", ports: [{ containerPort: 8080 }] }] },
    status: { podIP: "10.244.1.10", phase: "Running" },
  });
  cluster.tokens.set(CATALOG_TOKEN, {
    namespace: "shop",
    serviceAccount: "catalog",
    audiences: ["istio-ca"],
  });
  cluster.tokens.set(RATINGS_TOKEN, {
    namespace: "shop",
    serviceAccount: "ratings",
    audiences: ["istio-ca"],
  });
  cluster.tokens.set(API_AUDIENCE_TOKEN, {
    namespace: "shop",
    serviceAccount: "catalog",
    audiences: ["https://kubernetes.default.svc.cluster.local"],
  });
  // The webhook configurations as `meshlet manifest generate` renders them (caBundle empty).
  for (const o of renderManifests(defaultValues()))
    if (o.kind === "MutatingWebhookConfiguration" || o.kind === "ValidatingWebhookConfiguration")
      cluster.putWebhookConfiguration(
        o as unknown as Parameters<FakeKubeCluster["putWebhookConfiguration"]>[0],
      );
  replica = await startReplica("replica-a");
}, 90_000);

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await cluster?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("meshlet serve --kubernetes against a fake API server", () => {
  it("creates istio-ca-secret with Istio's keys and publishes its root to every namespace but the ignored ones", async () => {
    // istio/istio security/pkg/pki/ca/ca.go: CACertFile ca-cert.pem, CAPrivateKeyFile ca-key.pem,
    // CertChainFile cert-chain.pem, RootCertFile root-cert.pem; Secret type istio.io/ca-root.
    const secret = cluster.secret(NS, "istio-ca-secret");
    expect(secret?.type).toBe("istio.io/ca-root");
    const data = secret?.data as Record<string, string>;
    expect(Object.keys(data)).toEqual(
      expect.arrayContaining(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]),
    );
    const root = Buffer.from(data["root-cert.pem"] as string, "base64").toString("utf8");
    for (const ns of [NS, "shop", "default"]) {
      const published = await until(`istio-ca-root-cert in ${ns}`, () => publishedRoot(ns));
      expect(new X509Certificate(published["root-cert.pem"] as string).fingerprint256).toBe(
        new X509Certificate(root).fingerprint256,
      );
    }
    expect(publishedRoot("kube-public")).toBeUndefined();
  });

  it("answers /ready and /healthz on the health port", async () => {
    expect((await fetch(`${replica.health}/ready`)).status).toBe(200);
    expect((await fetch(`${replica.health}/healthz`)).status).toBe(200);
  });

  it("an agent with its service-account token gets its certificate, then its config, over TLS to meshletd's Service name", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const client = agentChannel(replica.tls, root);
    try {
      const { csr } = csrFor(CATALOG_ID);
      const chain = await createCertificate(client, csr, CATALOG_TOKEN);
      const leaf = new X509Certificate(chain[0] as string);
      expect(leaf.subjectAltName).toBe(`URI:${CATALOG_ID}`);
      expect(leaf.verify(new X509Certificate(chain.at(-1) as string).publicKey)).toBe(true);
      expect(new X509Certificate(chain.at(-1) as string).fingerprint256).toBe(
        new X509Certificate(root).fingerprint256,
      );

      const cds = await firstClusters(client, CATALOG_TOKEN, {
        id: CATALOG_NODE,
        namespace: "shop",
        serviceAccount: "catalog",
      });
      expect(cds.typeUrl).toBe("type.googleapis.com/envoy.config.cluster.v3.Cluster");
      expect(cds.resources.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it("the serving certificate on 15012 names meshletd's Service and istiod.istio-system.svc and chains to the root", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const { port } = new URL(`tls://${replica.tls}`);
    const cert = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tlsConnect(
        {
          host: "127.0.0.1",
          port: Number(port),
          ca: root,
          servername: HOST,
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        },
        () => {
          resolve(new X509Certificate(socket.getPeerCertificate(true).raw));
          socket.end();
        },
      );
      socket.on("error", reject);
    });
    expect(cert.subjectAltName).toContain(`DNS:${HOST}`);
    expect(cert.subjectAltName).toContain("DNS:istiod.istio-system.svc");
    expect(cert.subjectAltName).toContain("URI:spiffe://cluster.local/ns/meshlet-system/sa/meshletd");
    expect(cert.checkHost(HOST)).toBe(HOST);
  });

  it("a token for another service account obtains neither that identity nor that node's stream", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const client = agentChannel(replica.tls, root);
    try {
      const { csr } = csrFor(CATALOG_ID);
      const refused = await refusal(createCertificate(client, csr, RATINGS_TOKEN));
      expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);

      const stream = await refusal(
        firstClusters(client, RATINGS_TOKEN, {
          id: CATALOG_NODE,
          namespace: "shop",
          serviceAccount: "catalog",
        }),
      );
      expect(stream?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(stream?.details).toContain("spiffe://cluster.local/ns/shop/sa/ratings");
      expect(stream?.details).toContain("sa/catalog");

      // Another namespace claimed in the node id and metadata.
      const other = await refusal(
        firstClusters(client, CATALOG_TOKEN, {
          id: "sidecar~10.244.2.7~billing-0.payments~payments.svc.cluster.local",
          namespace: "payments",
          serviceAccount: "catalog",
        }),
      );
      expect(other?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(other?.details).toContain("ns/payments");
    } finally {
      client.close();
    }
  });

  it("refuses streams and CSRs without a token, with a token for another audience, and while TokenReview fails", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const client = agentChannel(replica.tls, root);
    const node = { id: CATALOG_NODE, namespace: "shop", serviceAccount: "catalog" };
    try {
      const none = await refusal(firstClusters(client, undefined, node));
      expect(none?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(none?.details).toContain("no credential");
      const wrongAudience = await refusal(firstClusters(client, API_AUDIENCE_TOKEN, node));
      expect(wrongAudience?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(
        (await refusal(createCertificate(client, csrFor(CATALOG_ID).csr, API_AUDIENCE_TOKEN)))?.code,
      ).toBe(grpc.status.UNAUTHENTICATED);
      // The plaintext port authenticates the same way.
      const plain = new grpc.Client(replica.plaintext, grpc.credentials.createInsecure());
      try {
        expect((await refusal(firstClusters(plain, undefined, node)))?.code).toBe(
          grpc.status.UNAUTHENTICATED,
        );
        expect((await firstClusters(plain, CATALOG_TOKEN, node)).resources.length).toBeGreaterThan(0);
        // istiod serves the CA only on its TLS port (15012), never on plaintext 15010: a valid
        // token over plaintext still gets no certificate (the service is not there at all).
        const plainCsr = await refusal(createCertificate(plain, csrFor(CATALOG_ID).csr, CATALOG_TOKEN));
        expect(plainCsr?.code).toBe(grpc.status.UNIMPLEMENTED);
      } finally {
        plain.close();
      }
      cluster.tokenReviewDown = true;
      try {
        const down = await refusal(firstClusters(client, CATALOG_TOKEN, node));
        expect(down?.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(down?.details).toContain("500");
        expect((await refusal(createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN)))?.code).toBe(
          grpc.status.UNAUTHENTICATED,
        );
      } finally {
        cluster.tokenReviewDown = false;
      }
    } finally {
      client.close();
    }
  });

  it("a stream cannot change its node once authorized, nor a second stream take a connected node's id with other labels", async () => {
    // xDS "Basic Protocol Overview": the node identifier stays identical on a stream; istiod builds
    // its proxy from the first request of each connection (pilot/pkg/xds/ads.go initConnection).
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const client = agentChannel(replica.tls, root);
    const labels = { app: "catalog", version: "v1" };
    const held = adsStream(client, CATALOG_TOKEN);
    try {
      held.send(CATALOG_NODE, labels);
      const response = await held.first;
      // Same token, same namespace and service account, but another pod's id on the same stream.
      held.send("sidecar~10.244.1.12~catalog-v1-other.shop~shop.svc.cluster.local", labels, response.nonce);
      const changed = await held.ended;
      expect(changed.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(changed.details).toContain("cannot change");

      const first = adsStream(client, CATALOG_TOKEN);
      first.send(CATALOG_NODE, labels);
      await first.first;
      const second = adsStream(client, CATALOG_TOKEN);
      second.send(CATALOG_NODE, { app: "ratings", version: "v1" });
      const refused = await second.ended;
      expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(refused.details).toContain("already connected with other metadata");
      first.call.cancel();
    } finally {
      client.close();
    }
  });

  it("accepts a client certificate from the mesh's CA instead of a token, for its own node only", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const issuing = agentChannel(replica.tls, root);
    const { csr, key } = csrFor(CATALOG_ID);
    const chain = await createCertificate(issuing, csr, CATALOG_TOKEN).finally(() => issuing.close());
    const client = agentChannel(replica.tls, root, { cert: chain.slice(0, -1).join(""), key });
    try {
      const cds = await firstClusters(client, undefined, {
        id: CATALOG_NODE,
        namespace: "shop",
        serviceAccount: "catalog",
      });
      expect(cds.resources.length).toBeGreaterThan(0);
      const other = await refusal(
        firstClusters(client, undefined, {
          id: "sidecar~10.244.1.11~ratings-v1-0.shop~shop.svc.cluster.local",
          namespace: "shop",
          serviceAccount: "ratings",
        }),
      );
      expect(other?.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it("writes the CA root into both webhook configurations' caBundle and serves the webhooks with a certificate it verifies", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    for (const [kind, name] of [
      ["MutatingWebhookConfiguration", MUTATING],
      ["ValidatingWebhookConfiguration", VALIDATING],
    ] as const) {
      const bundles = await until(`${name} caBundle`, () => {
        const hooks = (cluster.webhookConfiguration(kind, name)?.webhooks ?? []) as Array<{
          clientConfig: { caBundle?: string };
        }>;
        return hooks.length > 0 && hooks.every((h) => h.clientConfig.caBundle)
          ? hooks.map((h) => h.clientConfig.caBundle as string)
          : undefined;
      });
      for (const b of bundles)
        expect(new X509Certificate(Buffer.from(b, "base64").toString("utf8")).fingerprint256).toBe(
          new X509Certificate(root).fingerprint256,
        );
    }
    // `kubectl apply` of the rendered manifests writes caBundle empty again: the next check repairs it.
    for (const o of renderManifests(defaultValues()))
      if (o.kind === "MutatingWebhookConfiguration")
        cluster.putWebhookConfiguration(
          o as unknown as Parameters<FakeKubeCluster["putWebhookConfiguration"]>[0],
        );
    await until("caBundle repaired", () => {
      const hooks = (cluster.webhookConfiguration("MutatingWebhookConfiguration", MUTATING)?.webhooks ??
        []) as Array<{
        clientConfig: { caBundle?: string };
      }>;
      return hooks.length > 0 && hooks.every((h) => h.clientConfig.caBundle) ? true : undefined;
    });
    // What the API server does: call the webhook trusting caBundle, verifying the Service name.
    const answer = await httpsGet(
      replica.webhook,
      root,
      "/validate",
      admissionReview("networking.istio.io", "VirtualService", "virtualservices", {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "catalog", namespace: "shop" },
        spec: {
          hosts: ["catalog"],
          http: [{ route: [{ destination: { host: "catalog" }, weight: "ninety" }] }],
        },
      }),
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).response.allowed).toBe(false);
  });

  it("re-creates istio-ca-root-cert when it is deleted and restores it when it is edited", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    cluster.deleteConfigMap("shop", "istio-ca-root-cert");
    await until("re-created ConfigMap", () => publishedRoot("shop"));
    expect(publishedRoot("shop")?.["root-cert.pem"]).toBe(root);
    cluster.editConfigMap("shop", "istio-ca-root-cert", { "root-cert.pem": "tampered" });
    await until("restored ConfigMap", () =>
      publishedRoot("shop")?.["root-cert.pem"] === root ? true : undefined,
    );
  });

  it("a second replica against the same API uses the same root and leaves the Secret alone", async () => {
    const before = cluster.secret(NS, "istio-ca-secret");
    const second = await startReplica("replica-b");
    expect(cluster.secret(NS, "istio-ca-secret")?.metadata.resourceVersion).toBe(
      before?.metadata.resourceVersion,
    );
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    // An agent trusting the published root gets a certificate from the second replica, chained to it.
    const client = agentChannel(second.tls, root);
    try {
      const chain = await createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN);
      expect(new X509Certificate(chain.at(-1) as string).fingerprint256).toBe(
        new X509Certificate(root).fingerprint256,
      );
    } finally {
      client.close();
    }
    expect(await second.stop()).toBe(0);
  });

  it("refuses to start on a malformed istio-ca-secret (keys missing, key not the certificate's) and leaves it alone", async () => {
    // istiod (security/pkg/pki/ca: NewSelfSignedIstioCAOptions) loads an existing istio-ca-secret
    // and fails when it cannot use it; generating a new root instead would split the mesh.
    const good = cluster.secret(NS, "istio-ca-secret")?.data as Record<string, string>;
    expect(good["ca-cert.pem"]).toBeDefined();
    const otherKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
      .privateKey.export({ format: "pem", type: "pkcs8" })
      .toString();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ "root-cert.pem": good["root-cert.pem"] as string }, /needs ca-cert\.pem and ca-key\.pem/],
      [{ ...good, "ca-key.pem": Buffer.from(otherKey).toString("base64") }, /does not match/],
    ];
    for (const [data, reason] of cases) {
      const other = await new FakeKubeCluster().start();
      try {
        other.putNamespace(NS);
        other.putSecret(NS, {
          apiVersion: "v1",
          kind: "Secret",
          type: "istio.io/ca-root",
          metadata: { name: "istio-ca-secret" },
          data,
        });
        const kubeconfig = join(dir, "malformed-kubeconfig");
        writeFileSync(kubeconfig, other.kubeconfig());
        const err: string[] = [];
        const code = await serve.run(
          ["--kubernetes", "--kubeconfig", kubeconfig, "--namespace", NS, "--listen", "127.0.0.1:0"]
            .concat(["--xds-plaintext", "off", "--metrics", "off", "--webhook", "off", "--health", "off"])
            .concat(["--admin", "off", "--state-dir", join(dir, "malformed")]),
          { out: () => undefined, err: (l) => err.push(l), env: {}, signal: new AbortController().signal },
        );
        expect(code).not.toBe(0);
        expect(err.join("\n")).toContain("istio-ca-secret");
        expect(err.join("\n")).toMatch(reason);
        expect(other.secret(NS, "istio-ca-secret")?.data).toEqual(data);
        // Read, never replaced or re-created.
        expect(other.requests.filter((q) => q.path.includes("/secrets")).map((q) => q.method)).toEqual([
          "GET",
        ]);
      } finally {
        await other.close();
      }
    }
  });

  it("refuses cluster flags without --kubernetes, and a CA mode it does not serve", async () => {
    const err: string[] = [];
    const io = {
      out: () => undefined,
      err: (l: string) => err.push(l),
      env: {},
      signal: new AbortController().signal,
    };
    expect(await serve.run(["--config", dir, "--webhook", "127.0.0.1:0"], io)).toBe(2);
    expect(err.join("\n")).toContain("--webhook only apply with --kubernetes");
    expect(
      await serve.run(["--kubernetes", "--ca-mode", "cfssl", "--kubeconfig", join(dir, "kubeconfig")], io),
    ).toBe(1);
    expect(err.join("\n")).toContain('CA mode "cfssl" is not one meshlet serve knows');
  });

  it("injects pods pointing at a discovery address and CA_ADDR its serving certificate names", async () => {
    const root = (await until("root", () => publishedRoot("shop")))["root-cert.pem"] as string;
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "catalog-v2-0", namespace: "shop", labels: { app: "catalog", version: "v2" } },
      spec: { serviceAccountName: "catalog", containers: [{ name: "app", image: "catalog:2" }] },
    };
    const answer = await httpsGet(replica.webhook, root, "/inject", admissionReview("", "Pod", "pods", pod));
    const response = JSON.parse(answer.text).response as { allowed: boolean; patch: string };
    expect(response.allowed).toBe(true);
    const patch = Buffer.from(response.patch, "base64").toString("utf8");
    const caAddr = /"name":"CA_ADDR","value":"([^"]+)"/.exec(patch)?.[1] as string;
    expect(caAddr).toBe(`${HOST}:15012`);
    expect(patch).toContain(`discoveryAddress\\":\\"${HOST}:15012`);
    // Counted on meshletd's /metrics under istiod's name (istio/istio pkg/kube/inject/monitoring.go).
    const exposition = await (await fetch(replica.metrics)).text();
    expect(exposition).toMatch(/^sidecar_injection_success_total(\{[^}]*\})? [1-9]\d*$/m);
  });

  it("agrees with the Deployment `meshlet manifest generate` renders: image command, ports, environment", () => {
    const deployment = renderManifests(defaultValues()).find(
      (o) => o.kind === "Deployment" && o.metadata?.name === "meshletd",
    ) as unknown as {
      spec: {
        template: {
          spec: {
            containers: Array<{
              ports: Array<{ containerPort: number }>;
              env: Array<{ name: string }>;
              readinessProbe: { httpGet: { path: string; port: number } };
            }>;
          };
        };
      };
    };
    const container = deployment.spec.template.spec.containers[0];
    expect(container?.ports.map((p) => p.containerPort).sort((a, b) => a - b)).toEqual([
      8080, 15010, 15012, 15014, 15017,
    ]);
    expect(container?.readinessProbe.httpGet).toEqual({ path: "/ready", port: 8080 });
    const env = new Set(container?.env.map((e) => e.name));
    for (const read of [
      "POD_NAMESPACE",
      "SERVICE_ACCOUNT",
      "TRUST_DOMAIN",
      "MESHLET_SERVICE_HOST",
      "MESHLET_CONFIG_DIR",
      "MESHLET_CA_MODE",
      "MESHLET_MUTATING_WEBHOOK",
      "MESHLET_VALIDATING_WEBHOOK",
    ])
      expect(env.has(read), read).toBe(true);
    // The serve defaults with --kubernetes are those ports.
    expect(serve.usage).toMatch(/0\.0\.0\.0:15012/);
    expect(serve.usage).toMatch(
      /--xds-plaintext <host:port>\|off +Plaintext xDS \(default 0\.0\.0\.0:15010\)/,
    );
    expect(serve.usage).toMatch(
      /--webhook <host:port>\|off +Admission webhooks \(default 0\.0\.0\.0:15017\)/,
    );
    expect(serve.usage).toMatch(
      /--health <host:port>\|off +Readiness \/ready and liveness \/healthz \(default 0\.0\.0\.0:8080\)/,
    );
    const dockerfile = readFileSync(
      new URL("../../../examples/reference-mesh/aks/Dockerfile.meshletd", import.meta.url),
      "utf8",
    );
    expect(dockerfile).toContain('CMD ["serve", "--kubernetes"]');
  });
});

// `--ca-mode vault`: Vault cannot run here, so meshletd talks to a FAKE Vault
// (packages/adapters/test/support/fake-vault.ts) answering Vault's documented Kubernetes-auth login,
// token renew-self and PKI sign / ca/pem endpoints, with roles set up as vault-setup.sh writes them.
// Its own fake API server, so its Vault root does not fight replica-a's over the published ConfigMaps.
describe("meshlet serve --kubernetes --ca-mode vault against a fake Vault", () => {
  const VAULT_JWT = "projected-token-audience-vault";
  let api: FakeKubeCluster;
  let vault: FakeVault;
  let node: Replica;

  beforeAll(async () => {
    api = await new FakeKubeCluster().start();
    const kubeconfig = join(dir, "vault-kubeconfig");
    writeFileSync(kubeconfig, api.kubeconfig());
    for (const ns of [NS, "shop"]) api.putNamespace(ns);
    api.tokens.set(CATALOG_TOKEN, { namespace: "shop", serviceAccount: "catalog", audiences: ["istio-ca"] });
    const vaultDir = mkdtempSync(join(dir, "vault-"));
    writeFileSync(join(vaultDir, "token"), `${VAULT_JWT}\n`);
    vault = await startFakeVault(vaultDir, {
      jwt: () => VAULT_JWT,
      authRole: "meshletd",
      pkiMount: "pki_int",
      roles: {
        "meshlet-workloads": {
          useCsrSans: false,
          allowedUriSans: /^spiffe:\/\/cluster\.local\/ns\/[^/]+\/sa\/[^/]+$/,
        },
        "meshletd-serving": {
          useCsrSans: true,
          allowedUriSans: /^spiffe:\/\/cluster\.local\/ns\/meshlet-system\/sa\/meshletd$/,
          allowedDomains: [HOST, "istiod.istio-system.svc"],
        },
      },
    });
    node = await startReplica("replica-vault", {
      cluster: api,
      kubeconfig,
      args: ["--ca-mode", "vault"],
      env: {
        VAULT_ADDR: vault.address,
        MESHLET_VAULT_TOKEN_PATH: join(vaultDir, "token"),
        MESHLET_MUTATING_WEBHOOK: "",
        MESHLET_VALIDATING_WEBHOOK: "",
      },
    });
  }, 90_000);

  afterAll(async () => {
    await vault?.close();
    await api?.close();
  });

  const root = async () =>
    (await until("root", () => api.configMap("shop", "istio-ca-root-cert")?.data as Record<string, string>))[
      "root-cert.pem"
    ] as string;

  it("publishes Vault's CA and signs the agent's CSR through the workload role, after logging in with the projected token", async () => {
    expect(new X509Certificate(await root()).fingerprint256).toBe(
      new X509Certificate(vault.rootPem).fingerprint256,
    );
    const client = agentChannel(node.tls, await root());
    try {
      const chain = await createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN);
      const leaf = new X509Certificate(chain[0] as string);
      expect(leaf.subjectAltName).toBe(`URI:${CATALOG_ID}`);
      expect(leaf.verify(new X509Certificate(vault.rootPem).publicKey)).toBe(true);
    } finally {
      client.close();
    }
    expect(vault.requests.find((r) => r.path === "/v1/auth/kubernetes/login")?.body).toEqual({
      role: "meshletd",
      jwt: VAULT_JWT,
    });
    expect(
      vault.requests.filter((r) => r.path === "/v1/pki_int/sign/meshlet-workloads").at(-1)?.body,
    ).toMatchObject({
      uri_sans: CATALOG_ID,
    });
  });

  it("serves 15012 with a certificate Vault signed through the serving role, for meshletd's DNS names", async () => {
    const { port } = new URL(`tls://${node.tls}`);
    const cert = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tlsConnect(
        { host: "127.0.0.1", port: Number(port), ca: vault.rootPem, servername: HOST, ALPNProtocols: ["h2"] },
        () => {
          resolve(new X509Certificate(socket.getPeerCertificate(true).raw));
          socket.end();
        },
      );
      socket.on("error", reject);
    });
    expect(cert.checkHost(HOST)).toBe(HOST);
    expect(cert.subjectAltName).toContain("DNS:istiod.istio-system.svc");
    expect(cert.verify(new X509Certificate(vault.rootPem).publicKey)).toBe(true);
    expect(vault.requests.some((r) => r.path === "/v1/pki_int/sign/meshletd-serving")).toBe(true);
  });

  it("logs in again when Vault refuses an expired token, and answers UNAVAILABLE while Vault is down", async () => {
    const client = agentChannel(node.tls, await root());
    const logins = () => vault.requests.filter((r) => r.path === "/v1/auth/kubernetes/login").length;
    try {
      const before = logins();
      vault.now += 2 * 3600_000; // every token Vault gave out has expired
      expect((await createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN)).length).toBeGreaterThan(
        0,
      );
      expect(logins()).toBe(before + 1);

      vault.down = true;
      const error = await refusal(createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN));
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      expect((await fetch(`${node.health}/healthz`)).status).toBe(200);

      vault.down = false;
      expect((await createCertificate(client, csrFor(CATALOG_ID).csr, CATALOG_TOKEN)).length).toBeGreaterThan(
        0,
      );
    } finally {
      client.close();
    }
  });
});
