import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  RateLimitDescriptor_EntrySchema,
  RateLimitDescriptorSchema,
} from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponse_Code,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { TypeUrl } from "@meshlet/xds";
import { AdsClient } from "@meshlet/xds/testing";
import { filter, firstValueFrom, take, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, type ControlPlaneEvent, startControlPlane } from "../src/serve/control-plane.js";

// startControlPlane in-process, on loopback with port 0: an Envoy sidecar (the @meshlet/xds ADS test
// client with an Istio sidecar node) gets Envoy config from it, rate limits follow a ConfigMap
// `ratelimit-config` (Istio's rate-limit sample, istio/istio samples/ratelimit/rate-limit-service.yaml)
// over the real RateLimitService gRPC API, and an extension mounts a gRPC service and an HTTP
// handler. Envoy itself cannot run here: the sidecar is checked at the xDS wire level.

const PRODUCTPAGE = "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local";

const BOOKINFO = `apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec:
  clusterIP: 10.96.0.20
  selector: { app: productpage }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: productpage-v1, namespace: default, labels: { app: productpage, version: v1 } }
spec: { serviceAccountName: bookinfo-productpage, containers: [{ name: app, ports: [{ containerPort: 9080 }] }] }
status: { podIP: 10.244.1.10, phase: Running }
`;

const rateLimitConfigMap = (perMinute: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: ratelimit-config, namespace: default }
data:
  config.yaml: |
    domain: ratelimit
    descriptors:
      - key: PATH
        value: /productpage
        rate_limit: { unit: minute, requests_per_unit: ${perMinute} }
`;

const raw = (b: Buffer) => b;

let dir: string;
let plane: ControlPlane;
let extensionClosed = false;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-control-plane-"));
  await writeFile(join(dir, "bookinfo.yaml"), BOOKINFO);
  await writeFile(join(dir, "ratelimit.yaml"), rateLimitConfigMap("1"));
  await writeFile(
    join(dir, "broken.yaml"),
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: x\n",
  );
  plane = await startControlPlane({
    config: { paths: [dir] },
    listen: "127.0.0.1:0",
    metrics: "127.0.0.1:0",
    stateDir: join(dir, ".state"),
    debounceMs: 20,
    extensions: [
      {
        name: "test-admin",
        registerGrpc(server, parts) {
          server.register(
            "/meshlet.test.Admin/TrustDomain",
            (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
              callback(null, Buffer.from(parts.trustDomain)),
            raw,
            raw,
            "unary",
          );
        },
        handleHttp(request, response) {
          if (request.url !== "/debug/hello") return false;
          response.writeHead(200).end("hello from the extension\n");
          return true;
        },
        start: (p) => ({
          services: [{ name: "test admin", address: p.addresses.grpc }],
          close: () => {
            extensionClosed = true;
          },
        }),
      },
    ],
  });
}, 120_000);

afterAll(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function unary(path: string, request: Buffer): Promise<Buffer> {
  const client = new grpc.Client(plane.addresses.grpc, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) =>
    client.makeUnaryRequest(path, raw, raw, request, { deadline: Date.now() + 30_000 }, (error, response) =>
      error ? reject(error) : resolve(response as Buffer),
    ),
  ).finally(() => client.close());
}

async function shouldRateLimit(path: string): Promise<RateLimitResponse_Code> {
  const request = create(RateLimitRequestSchema, {
    domain: "ratelimit",
    descriptors: [
      create(RateLimitDescriptorSchema, {
        entries: [create(RateLimitDescriptor_EntrySchema, { key: "PATH", value: path })],
      }),
    ],
  });
  const response = await unary(
    "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    Buffer.from(toBinary(RateLimitRequestSchema, request)),
  );
  return fromBinary(RateLimitResponseSchema, response).overallCode;
}

/** The first event of a type from now on (events$ replays earlier ones). */
function nextEvents(type: ControlPlaneEvent["type"], count = 1): Promise<ControlPlaneEvent[]> {
  const since = Date.now();
  return firstValueFrom(
    plane.events$.pipe(
      filter((e) => e.type === type && e.at >= since),
      take(count),
      toArray(),
    ),
  );
}

describe("startControlPlane", () => {
  it("listens on the addresses it reports, with the extension's services listed", async () => {
    expect(plane.addresses.grpc).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(plane.addresses.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(plane.services.map((s) => s.name)).toEqual([
      "xDS (ADS, SotW, Delta)",
      "Istio CA (istio.v1.auth.IstioCertificateService)",
      "ext_authz (envoy.service.auth.v3.Authorization)",
      "rate limit (envoy.service.ratelimit.v3.RateLimitService)",
      "metrics (Prometheus)",
      "workload certificates, bootstraps, SDS",
      "test admin",
    ]);
    expect((await unary("/meshlet.test.Admin/TrustDomain", Buffer.alloc(0))).toString()).toBe(
      "cluster.local",
    );
    const hello = await fetch(plane.addresses.metrics!.replace("/metrics", "/debug/hello"));
    expect(await hello.text()).toBe("hello from the extension\n");
    expect(await (await fetch(plane.addresses.metrics!)).text()).toContain("pilot_xds");
  });

  it("replays config errors that happened before a subscriber came", async () => {
    const replayed = await firstValueFrom(plane.events$.pipe(filter((e) => e.type === "config-error")));
    expect(replayed.type === "config-error" && replayed.diagnostic.file).toMatch(/broken\.yaml$/);
  });

  it("serves an Envoy sidecar its listeners, clusters and routes (Envoy generators wired in)", async () => {
    const client = AdsClient.connect({
      address: plane.addresses.grpc,
      // What Istio's agent sends for an Envoy sidecar (no GENERATOR: an Envoy proxy).
      node: {
        id: PRODUCTPAGE,
        metadata: {
          NAMESPACE: "default",
          LABELS: { app: "productpage", version: "v1" },
          SERVICE_ACCOUNT: "bookinfo-productpage",
          ISTIO_VERSION: "1.24.0",
        },
      },
      autoAck: true,
    });
    try {
      client.request({ typeUrl: TypeUrl.Listener });
      const lds = await client.next(TypeUrl.Listener, 30_000);
      const names = lds.resources.map((r) => r.name);
      // Istio's sidecar listeners (pilot/pkg/networking/core/listener_builder.go): the catch-alls on
      // 15001/15006 and the outbound HTTP listener per service port.
      expect(names).toEqual(expect.arrayContaining(["virtualOutbound", "virtualInbound", "0.0.0.0_9080"]));
      client.request({ typeUrl: TypeUrl.Cluster });
      const cds = await client.next(TypeUrl.Cluster, 30_000);
      expect(cds.resources.map((r) => r.name)).toEqual(
        expect.arrayContaining(["outbound|9080||productpage.default.svc.cluster.local", "inbound|9080||"]),
      );
      expect(
        plane.controller.pushContext !== undefined &&
          (await firstValueFrom(plane.controller.status$)).proxies.find((p) => p.id === PRODUCTPAGE)?.kind,
      ).toBe("sidecar");
    } finally {
      client.close();
    }
  });

  it("follows the rate-limit ConfigMap and keeps the last good one when it breaks", async () => {
    expect(await shouldRateLimit("/productpage")).toBe(RateLimitResponse_Code.OK);
    expect(await shouldRateLimit("/productpage")).toBe(RateLimitResponse_Code.OVER_LIMIT);
    expect(await shouldRateLimit("/other")).toBe(RateLimitResponse_Code.OK);

    const broken = nextEvents("error");
    await writeFile(join(dir, "ratelimit.yaml"), rateLimitConfigMap("not-a-number"));
    const [error] = await broken;
    expect(error?.type === "error" && error.message).toMatch(
      /^rate limits: .*ConfigMap default\/ratelimit-config key config\.yaml/,
    );
    expect(await shouldRateLimit("/productpage")).toBe(RateLimitResponse_Code.OVER_LIMIT);

    const changed = nextEvents("rate-limits");
    await writeFile(join(dir, "ratelimit.yaml"), rateLimitConfigMap("1000"));
    const [latest] = await changed;
    expect(latest).toMatchObject({
      domains: ["ratelimit"],
      sources: ["ConfigMap default/ratelimit-config key config.yaml"],
    });
    expect(await shouldRateLimit("/productpage")).toBe(RateLimitResponse_Code.OK);
  });

  it("closes extensions with it", async () => {
    let closedToo = false;
    const other = await startControlPlane({
      config: { paths: [join(dir, "bookinfo.yaml")] },
      listen: "127.0.0.1:0",
      metrics: false,
      stateDir: join(dir, ".state2"),
      extensions: [
        {
          name: "x",
          start: () => ({
            close: () => {
              closedToo = true;
            },
          }),
        },
      ],
    });
    expect(other.addresses.metrics).toBeUndefined();
    expect(closedToo).toBe(false);
    await other.close();
    expect(closedToo).toBe(true);
    expect(extensionClosed).toBe(false);
  });
});
