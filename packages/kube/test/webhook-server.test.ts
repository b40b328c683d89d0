import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { firstValueFrom, Subject, take, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createInjectionWebhook,
  createValidationWebhook,
  DEFAULT_INJECTOR_CONFIG,
  type Pod,
  type ServingCertificate,
  WebhookServer,
} from "../src/index.js";
import { createTestCa, type TestCa } from "./support/certs.js";
import { applyJsonPatch } from "./support/json-patch.js";
import { podFromDeployment } from "./support/pods.js";

// The webhook over real HTTPS (node:https on 127.0.0.1, port 0), with certificates from the real
// openssl command. A Kubernetes API server cannot run here: the requests are AdmissionReviews as the
// API server sends them (admission.k8s.io/v1, "Dynamic Admission Control" in the Kubernetes docs)
// built from real pod specs, and the answers are checked as the API server would use them.

interface Reply {
  status: number;
  body: Record<string, unknown>;
  peer: X509Certificate;
}

function post(
  port: number,
  ca: string[],
  path: string,
  body: string,
  headers: Record<string, string> = {},
  method = "POST",
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        ca,
        // The API server dials <service>.<namespace>.svc and checks the certificate for that name.
        servername: "meshletd.meshlet-system.svc",
        agent: false,
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : { text },
            peer: new X509Certificate((res.socket as import("node:tls").TLSSocket).getPeerCertificate().raw),
          });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function podReview(
  pod: Pod,
  uid = "b8e0b23c-1d71-4bd4-9b2b-3e3c2f0e9a11",
  apiVersion = "admission.k8s.io/v1",
) {
  return JSON.stringify({
    apiVersion,
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      namespace: pod.metadata.namespace,
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  });
}

const HELLO = `
metadata: {name: hello}
spec:
  template:
    metadata:
      labels: {app: hello, version: v1}
    spec:
      serviceAccountName: hello
      containers:
      - name: hello
        image: "fake.docker.io/google-samples/hello-go-gke:1.0"
        ports: [{name: http, containerPort: 80, protocol: TCP}]
`;

describe("WebhookServer over HTTPS", () => {
  let ca1: TestCa;
  let ca2: TestCa;
  let first: ServingCertificate;
  let server: WebhookServer;
  let port: number;
  const rotations = new Subject<ServingCertificate>();

  beforeAll(async () => {
    ca1 = createTestCa("meshlet test CA 1");
    ca2 = createTestCa("meshlet test CA 2");
    first = ca1.issue("meshletd.meshlet-system.svc");
    server = new WebhookServer({
      certificate: first,
      certificate$: rotations,
      injection: createInjectionWebhook(DEFAULT_INJECTOR_CONFIG),
      validation: createValidationWebhook(),
      host: "127.0.0.1",
      maxBodyBytes: 256 * 1024,
    });
    ({ port } = await server.listen());
  });

  afterAll(async () => {
    await server?.close();
    ca1?.cleanup();
    ca2?.cleanup();
  });

  it("injects a pod created by a ReplicaSet: the answer is an AdmissionReview with a JSON Patch", async () => {
    const pod = podFromDeployment(HELLO, { namespace: "shop" });
    const events = firstValueFrom(server.events$.pipe(take(1)));
    const reply = await post(port, [ca1.caCert], "/inject", podReview(pod));
    expect(reply.status).toBe(200);
    const response = reply.body.response as {
      uid: string;
      allowed: boolean;
      patchType: string;
      patch: string;
    };
    expect(reply.body.apiVersion).toBe("admission.k8s.io/v1");
    expect(reply.body.kind).toBe("AdmissionReview");
    expect(response.uid).toBe("b8e0b23c-1d71-4bd4-9b2b-3e3c2f0e9a11");
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe("JSONPatch");
    const patch = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as Array<
      Record<string, unknown>
    >;
    const injected = applyJsonPatch(pod, patch) as Pod;
    expect(injected.spec.containers.map((c) => c.name)).toEqual(["hello", "istio-proxy"]);
    expect(injected.spec.initContainers?.map((c) => c.name)).toEqual(["istio-init"]);
    const env = Object.fromEntries((injected.spec.containers[1]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      CA_ADDR: "meshletd.meshlet-system.svc:15012",
      ISTIO_META_WORKLOAD_NAME: "hello",
      ISTIO_META_OWNER: "kubernetes://apis/apps/v1/namespaces/shop/deployments/hello",
    });
    expect(injected.metadata.labels).toMatchObject({
      "service.istio.io/canonical-name": "hello",
      "service.istio.io/canonical-revision": "v1",
      "security.istio.io/tlsMode": "istio",
    });
    expect(await events).toMatchObject({
      type: "injection",
      outcome: "injected",
      pod: "shop/hello-5d8f7c9b6-*",
    });
  });

  it("admits an opted-out pod untouched: no patch, no warning", async () => {
    const pod = podFromDeployment(
      HELLO.replace(
        "labels: {app: hello, version: v1}",
        'labels: {app: hello, "sidecar.istio.io/inject": "false"}',
      ),
    );
    const reply = await post(port, [ca1.caCert], "/inject", podReview(pod));
    expect(reply.status).toBe(200);
    expect(reply.body.response).toEqual({ uid: "b8e0b23c-1d71-4bd4-9b2b-3e3c2f0e9a11", allowed: true });
  });

  it("admits a pod it cannot inject unchanged, with a warning for kubectl", async () => {
    const pod = podFromDeployment(
      HELLO.replace(
        "labels: {app: hello, version: v1}",
        'labels: {app: hello}\n      annotations: {"traffic.sidecar.istio.io/excludeOutboundPorts": "5432,postgres"}',
      ),
    );
    const reply = await post(port, [ca1.caCert], "/inject", podReview(pod));
    const response = reply.body.response as { allowed: boolean; patch?: string; warnings: string[] };
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.warnings).toEqual([
      'meshlet: sidecar not injected into default/hello-5d8f7c9b6-*: annotation traffic.sidecar.istio.io/excludeOutboundPorts: "postgres" is not a port (1-65535)',
    ]);
  });

  it("answers an admission.k8s.io/v1beta1 review in v1beta1", async () => {
    const reply = await post(
      port,
      [ca1.caCert],
      "/inject",
      podReview(podFromDeployment(HELLO), "u-1", "admission.k8s.io/v1beta1"),
    );
    expect(reply.body.apiVersion).toBe("admission.k8s.io/v1beta1");
    expect((reply.body.response as { uid: string }).uid).toBe("u-1");
  });

  it("refuses malformed requests cleanly with a Kubernetes Status, and keeps serving", async () => {
    const cases: Array<[string, string, Record<string, string>, string, number, RegExp]> = [
      ["/inject", "{not json", {}, "POST", 400, /the body is not JSON/],
      [
        "/inject",
        JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { kind: {} } }),
        {},
        "POST",
        400,
        /not an AdmissionReview: request\.uid must be/,
      ],
      [
        "/inject",
        JSON.stringify({ apiVersion: "v1", kind: "Pod" }),
        {},
        "POST",
        400,
        /apiVersion must be admission\.k8s\.io\/v1/,
      ],
      [
        "/inject",
        "{}",
        { "content-type": "text/plain" },
        "POST",
        415,
        /Content-Type must be application\/json/,
      ],
      ["/inject", "", {}, "GET", 405, /GET is not allowed/],
      [
        "/mutate",
        "{}",
        {},
        "POST",
        404,
        /no webhook at \/mutate; this server answers POST \/inject, POST \/validate/,
      ],
      ["/inject", `{"pad":"${"x".repeat(300 * 1024)}"}`, {}, "POST", 413, /exceeds 262144 bytes/],
    ];
    for (const [path, body, headers, method, status, message] of cases) {
      const reply = await post(port, [ca1.caCert], path, body, headers, method);
      expect(reply.status, `${method} ${path}`).toBe(status);
      expect(reply.body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code: status });
      expect(String(reply.body.message)).toMatch(message);
    }
    const reply = await post(port, [ca1.caCert], "/inject", podReview(podFromDeployment(HELLO)));
    expect((reply.body.response as { allowed: boolean }).allowed).toBe(true);
  });

  it("refuses a bad VirtualService at /validate with the field path", async () => {
    const vs = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "reviews", namespace: "default" },
      spec: { hosts: ["reviews"], http: [{ route: [{ destination: { subset: "v2" } }] }] },
    };
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: "v-1",
        kind: { group: "networking.istio.io", version: "v1", kind: "VirtualService" },
        resource: { group: "networking.istio.io", version: "v1", resource: "virtualservices" },
        name: "reviews",
        namespace: "default",
        operation: "CREATE",
        object: vs,
      },
    });
    const reply = await post(port, [ca1.caCert], "/validate", body);
    const response = reply.body.response as { allowed: boolean; status: { code: number; message: string } };
    expect(response.allowed).toBe(false);
    expect(response.status.code).toBe(400);
    expect(response.status.message).toContain(
      "VirtualService/default/reviews spec.http[0].route[0].destination.host",
    );
  });

  it("serves a rotated certificate to new connections without a restart", async () => {
    const before = await post(port, [ca1.caCert, ca2.caCert], "/ready", "", {}, "GET");
    expect(before.status).toBe(200);
    expect(before.peer.fingerprint256).toBe(new X509Certificate(first.cert).fingerprint256);

    const second = ca2.issue("meshletd.meshlet-system.svc");
    server.setCertificate(second);
    const after = await post(port, [ca1.caCert, ca2.caCert], "/ready", "", {}, "GET");
    expect(after.peer.fingerprint256).toBe(new X509Certificate(second.cert).fingerprint256);
    // A client that only trusts the old CA no longer gets through: the new certificate is really served.
    await expect(post(port, [ca1.caCert], "/ready", "", {}, "GET")).rejects.toThrow(/certificate/);

    // Rotations pushed on certificate$ (how meshletd's CA will hand them over) take effect too.
    const third = ca1.issue("meshletd.meshlet-system.svc");
    const rotated = firstValueFrom(server.events$.pipe(take(1), toArray()));
    rotations.next({ cert: third.cert, key: second.key }); // mismatched key: refused, current one kept
    expect((await rotated)[0]).toMatchObject({
      type: "certificate",
      outcome: "rejected",
      reason: expect.stringContaining("cannot be used together"),
    });
    expect(server.certificate).toBe(second);
    const accepted = firstValueFrom(server.events$.pipe(take(1)));
    rotations.next(third);
    expect(await accepted).toEqual({ type: "certificate", outcome: "rotated" });
    const last = await post(port, [ca1.caCert], "/ready", "", {}, "GET");
    expect(last.peer.fingerprint256).toBe(new X509Certificate(third.cert).fingerprint256);
  });

  it("refuses a certificate that does not match its key", () => {
    const other = ca1.issue("other");
    expect(() => server.setCertificate({ cert: other.cert, key: first.key })).toThrow(
      /cannot be used together/,
    );
  });
});
