import * as grpc from "@grpc/grpc-js";
import { CertificateAuthority } from "@meshlet/ca";
import { firstValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IstioMetrics, type LocalWorkload } from "../src/istio-metrics.js";
import { parsePrometheusText, type Sample } from "../src/prometheus-text.js";

// The interceptors between two real grpc-js peers on loopback, over mTLS with SPIFFE certificates
// from @meshlet/ca (and once in plaintext): what each side records in Istio's standard metrics.
// Expected label names and values: istio.io docs/reference/config/metrics (istio/istio.io
// content/en/docs/reference/config/metrics/index.md).

const TD = "spiffe://cluster.local/ns/default/sa";
// The labels istio.io's metrics reference lists (Canonical Service and the clusters included).
const ISTIO_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "request_protocol",
  "response_code",
  "connection_security_policy",
  "response_flags",
  "source_canonical_service",
  "source_canonical_revision",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "source_cluster",
  "grpc_response_status",
];
const raw = (b: Buffer) => b;
const METHOD = "/bookinfo.Reviews/GetReviews";

const workload = (
  pod: string,
  app: string,
  version: string,
  sa: string,
  serviceHost?: string,
): LocalWorkload => ({
  nodeId: `sidecar~127.0.0.1~${pod}.default~default.svc.cluster.local`,
  principal: `${TD}/${sa}`,
  metadata: {
    name: pod,
    namespace: "default",
    workload: `${app}-${version}`,
    labels: { app, version },
    cluster: "Kubernetes",
  },
  ...(serviceHost !== undefined ? { serviceHost } : {}),
});

let ca: CertificateAuthority;
let server: grpc.Server;
let mtlsPort: number;
let plainPort: number;
const serverMetrics = new IstioMetrics(
  workload("reviews-v2-0", "reviews", "v2", "bookinfo-reviews", "reviews.default.svc.cluster.local"),
);
const clientMetrics = new IstioMetrics(
  workload("productpage-v1-0", "productpage", "v1", "bookinfo-productpage"),
);
let roots: string;
let clientSvid: { chain: readonly string[]; privateKey: string };

beforeAll(async () => {
  ca = await CertificateAuthority.selfSigned({ trustDomain: "cluster.local" });
  const serverSvid = await ca.mintSvid({ identity: `${TD}/bookinfo-reviews` });
  clientSvid = await ca.mintSvid({ identity: `${TD}/bookinfo-productpage` });
  roots = (await firstValueFrom(ca.trustBundle$)).roots.join("");
  server = new grpc.Server({ interceptors: [serverMetrics.serverInterceptor] });
  server.register(
    METHOD,
    (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      if (call.request.toString() === "missing")
        callback({ code: grpc.status.NOT_FOUND, details: "no such product" });
      else callback(null, Buffer.from("ok"));
    },
    raw,
    raw,
    "unary",
  );
  const bind = (address: string, credentials: grpc.ServerCredentials) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (e, port) => (e ? reject(e) : resolve(port))),
    );
  mtlsPort = await bind(
    "127.0.0.1:0",
    grpc.ServerCredentials.createSsl(
      Buffer.from(roots),
      [
        {
          cert_chain: Buffer.from(serverSvid.chain.join("")),
          private_key: Buffer.from(serverSvid.privateKey),
        },
      ],
      true,
    ),
  );
  plainPort = await bind("127.0.0.1:0", grpc.ServerCredentials.createInsecure());
});

afterAll(async () => {
  server?.forceShutdown();
  ca?.close();
});

function callOnce(port: number, mtls: boolean, body: string): Promise<grpc.StatusObject["code"]> {
  const credentials = mtls
    ? grpc.credentials.createSsl(
        Buffer.from(roots),
        Buffer.from(clientSvid.privateKey),
        Buffer.from(clientSvid.chain.join("")),
        // SPIFFE certificates name no host: the peer is checked by its URI SAN instead.
        { checkServerIdentity: () => undefined },
      )
    : grpc.credentials.createInsecure();
  const client = new grpc.Client(`127.0.0.1:${port}`, credentials, {
    "grpc.ssl_target_name_override": "reviews.default.svc.cluster.local",
    interceptors: [clientMetrics.clientInterceptor("reviews.default.svc.cluster.local")],
  });
  return new Promise<grpc.StatusObject["code"]>((resolve) =>
    client.makeUnaryRequest(METHOD, raw, raw, Buffer.from(body), { deadline: Date.now() + 10_000 }, (error) =>
      resolve(error?.code ?? grpc.status.OK),
    ),
  ).finally(() => client.close());
}

async function requests(metrics: IstioMetrics): Promise<Sample[]> {
  return parsePrometheusText(await metrics.registry.metrics()).filter(
    (s) => s.name === "istio_requests_total",
  );
}

describe("Istio metrics interceptors", () => {
  it("record both reporters with Istio's labels, principals from the verified certificates", async () => {
    expect(await callOnce(mtlsPort, true, "book")).toBe(grpc.status.OK);
    expect(await callOnce(mtlsPort, true, "missing")).toBe(grpc.status.NOT_FOUND);

    const client = await requests(clientMetrics);
    const ok = client.find((s) => s.labels.grpc_response_status === "0");
    expect(Object.keys(ok?.labels ?? {}).sort()).toEqual([...ISTIO_LABELS].sort());
    expect(ok).toMatchObject({
      value: 1,
      labels: {
        reporter: "source",
        source_workload: "productpage-v1",
        source_workload_namespace: "default",
        source_principal: `${TD}/bookinfo-productpage`,
        source_app: "productpage",
        source_version: "v1",
        destination_workload: "reviews-v2",
        destination_workload_namespace: "default",
        destination_principal: `${TD}/bookinfo-reviews`,
        destination_app: "reviews",
        destination_version: "v2",
        destination_service: "reviews.default.svc.cluster.local",
        destination_service_name: "reviews",
        destination_service_namespace: "default",
        request_protocol: "grpc",
        response_code: "200",
        response_flags: "-",
        source_canonical_service: "productpage",
        source_canonical_revision: "v1",
        destination_canonical_service: "reviews",
        destination_canonical_revision: "v2",
        source_cluster: "Kubernetes",
        destination_cluster: "Kubernetes",
        // Istio: `unknown` when the report is from the source.
        connection_security_policy: "unknown",
      },
    });
    // An error before any response message: the server's metadata comes in the trailers.
    expect(client.find((s) => s.labels.grpc_response_status === "5")?.labels).toMatchObject({
      destination_workload: "reviews-v2",
      destination_version: "v2",
      destination_principal: `${TD}/bookinfo-reviews`,
    });

    const server = await requests(serverMetrics);
    expect(server.find((s) => s.labels.grpc_response_status === "0")).toMatchObject({
      value: 1,
      labels: {
        reporter: "destination",
        source_workload: "productpage-v1",
        source_principal: `${TD}/bookinfo-productpage`,
        destination_workload: "reviews-v2",
        destination_principal: `${TD}/bookinfo-reviews`,
        destination_service: "reviews.default.svc.cluster.local",
        // Istio: `mutual_tls` when the destination reports a request secured by Istio mTLS.
        connection_security_policy: "mutual_tls",
      },
    });
    expect(server.find((s) => s.labels.grpc_response_status === "5")?.value).toBe(1);
  });

  it("reports no principals and connection_security_policy none in plaintext", async () => {
    expect(await callOnce(plainPort, false, "book")).toBe(grpc.status.OK);
    const server = (await requests(serverMetrics)).find(
      (s) => s.labels.connection_security_policy === "none",
    );
    expect(server?.labels).toMatchObject({
      source_workload: "productpage-v1",
      source_principal: "unknown",
      destination_principal: "unknown",
    });
    const client = (await requests(clientMetrics)).find((s) => s.labels.destination_principal === "unknown");
    expect(client?.labels).toMatchObject({ source_principal: "unknown", destination_workload: "reviews-v2" });
  });

  it("observes durations in Envoy's default buckets", async () => {
    const text = await clientMetrics.registry.metrics();
    const les = [
      ...new Set(
        parsePrometheusText(text)
          .filter((s) => s.name === "istio_request_duration_milliseconds_bucket")
          .map((s) => s.labels.le),
      ),
    ];
    // envoyproxy/envoy source/common/stats/histogram_impl.cc supportedBuckets, then +Inf.
    expect(les).toEqual(
      [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
        3600000,
      ]
        .map(String)
        .concat("+Inf"),
    );
  });
});
