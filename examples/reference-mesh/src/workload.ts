// One workload of the reference mesh (one pod): a proxyless gRPC service of Bookinfo, or the load
// generator. Started by main.js with
//   GRPC_XDS_BOOTSTRAP       the bootstrap meshlet wrote for this pod (node id, metadata, the
//                            file_watcher certificate provider over its cert-chain.pem/key.pem/root-cert.pem)
//   GRPC_XDS_EXPERIMENTAL_RBAC=true   so grpc-js-xds enforces AuthorizationPolicies (RBAC filters)
//   WORKLOAD                 the Workload (platform.ts) as JSON
//   RATELIMIT_SERVICE        productpage only: the RateLimitService address
//   LOADGEN_RPS              loadgen only: requests per second
// It reports on stdout, one JSON line each: {"event":"serving"} once its XdsServer got its
// listener from the control plane and serves, {"event":"started"} for the load generator.
// It exits when stdin closes (its parent went away).
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as grpcXds from "@grpc/grpc-js-xds";
import { loadBookinfo, type ServiceImplementation, serviceFor } from "./bookinfo.js";
import { IstioMetrics } from "./istio-metrics.js";
import { startLoad } from "./load-generator.js";
import { NAMESPACE, serviceHost, serviceTarget, type Workload } from "./platform.js";
import { rateLimitInterceptor } from "./rate-limit.js";

// Installs the xds: resolver and grpc-js-xds's HTTP filters (router, fault, RBAC); without it an
// XdsServer NACKs every listener.
grpcXds.register();

const report = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

async function ownIdentity(certDir: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const pem = await readFile(join(certDir, "cert-chain.pem"), "utf8");
      const san = new X509Certificate(pem).subjectAltName ?? "";
      const uri = san
        .split(",")
        .map((s) => s.trim())
        .find((s) => s.startsWith("URI:"));
      if (uri !== undefined) return uri.slice(4);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no certificate in ${certDir}: ${String(error)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const workload = JSON.parse(process.env.WORKLOAD ?? "null") as Workload | null;
  const bootstrapFile = process.env.GRPC_XDS_BOOTSTRAP;
  if (workload === null || bootstrapFile === undefined)
    throw new Error("WORKLOAD and GRPC_XDS_BOOTSTRAP are required");
  const bootstrap = JSON.parse(await readFile(bootstrapFile, "utf8")) as {
    node: { id: string; metadata: { CLUSTER_ID?: string } };
  };
  const principal = await ownIdentity(dirname(bootstrapFile));
  const metrics = new IstioMetrics({
    nodeId: bootstrap.node.id,
    principal,
    metadata: {
      name: workload.pod,
      namespace: NAMESPACE,
      workload: workload.workload,
      labels: {
        app: workload.app,
        version: workload.version,
        "service.istio.io/canonical-name": workload.app,
        "service.istio.io/canonical-revision": workload.version,
      },
      cluster: bootstrap.node.metadata.CLUSTER_ID ?? "Kubernetes",
    },
    ...(workload.server ? { serviceHost: serviceHost(workload.app) } : {}),
  });

  // Prometheus scrapes /metrics (the pod's prometheus.io/port).
  const http = createServer((req, res) => {
    if (req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404).end("GET /metrics\n");
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((resolve) => http.listen(workload.metricsPort, workload.ip, resolve));

  const bookinfo = loadBookinfo();
  // Clients dial xds:/// targets; the cluster's ISTIO_MUTUAL makes them present the workload's
  // certificate (XdsChannelCredentials), plaintext otherwise.
  const credentials = new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure());
  const clients: grpc.Client[] = [];
  const ctx = {
    pod: workload.pod,
    version: workload.version,
    bookinfo,
    client<M>(
      ctor: new (t: string, c: grpc.ChannelCredentials, o?: grpc.ClientOptions) => grpc.Client & M,
      app: string,
    ) {
      const c = new ctor(serviceTarget(app), credentials, {
        interceptors: [metrics.clientInterceptor(serviceHost(app))],
      });
      clients.push(c);
      return c;
    },
  };

  let server: grpcXds.XdsServer | undefined;
  let service: ServiceImplementation | undefined;
  let stopLoad: (() => void) | undefined;
  if (workload.server) {
    const interceptors: grpc.ServerInterceptor[] = [metrics.serverInterceptor];
    const rls = process.env.RATELIMIT_SERVICE;
    if (rls !== undefined && rls !== "") interceptors.push(rateLimitInterceptor(rls));
    server = new grpcXds.XdsServer({ interceptors });
    service = serviceFor(workload.app, ctx);
    server.addService(service.definition, service.implementation);
    // XdsServer serves once the control plane sent its listener
    // xds.istio.io/grpc/lds/inbound/<ip>:<port>, with that listener's mTLS and RBAC.
    const address = `${workload.ip}:${workload.port}`;
    server.bindAsync(
      address,
      new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
      (error) => {
        if (error) process.stderr.write(`${workload.pod}: bind ${address} failed: ${error.message}\n`);
        else report({ event: "serving", address });
      },
    );
  } else {
    stopLoad = startLoad({
      client: ctx.client(bookinfo.ProductPage, "productpage"),
      rps: Number(process.env.LOADGEN_RPS ?? "10"),
    });
    report({ event: "started" });
  }

  const stop = () => {
    stopLoad?.();
    for (const c of clients) c.close();
    service?.close();
    server?.forceShutdown();
    http.closeAllConnections();
    http.close();
    setTimeout(() => process.exit(0), 100).unref();
  };
  process.stdin.on("end", stop);
  process.stdin.resume();
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `workload failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
