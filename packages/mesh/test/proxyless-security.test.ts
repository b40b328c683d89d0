import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CertificateAuthority } from "@meshlet/ca";
import { WORKLOAD_CERT_FILES } from "@meshlet/mesh";
import { firstValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MeshControlPlane, startControlPlane } from "./support/control-plane.js";
import type { LineProcess } from "./support/line-process.js";
import {
  eventually,
  freePort,
  type MeshClient,
  startClient,
  startXdsServer,
  tally,
} from "./support/mesh-fixture.js";

// End to end, server side: a proxyless gRPC server (@grpc/grpc-js-xds XdsServer) gets its listener
// `xds.istio.io/grpc/lds/inbound/127.0.0.1:<port>` from MeshController, with STRICT mTLS from a
// PeerAuthentication and RBAC from AuthorizationPolicies; grpc-js-xds and gRPC C-core clients reach it
// over ISTIO_MUTUAL (DestinationRule) with certificates from @meshlet/ca read by the bootstrap's
// file_watcher provider, as Istio's proxyless blog and grpcgen_test.go (`echo-rbac-mtls`) set it up.

const FQDN = "echo-secure.test.svc.cluster.local";
const TARGETS: Record<MeshClient["kind"], string> = {
  "grpc-js": `xds:///${FQDN}:7070`,
  "c-core": "xds:///echo-secure:7070",
};
const IDENTITY = (sa: string) => `spiffe://cluster.local/ns/test/sa/${sa}`;

let plane: MeshControlPlane;
let server: LineProcess | undefined;
let clients: MeshClient[] = [];
let dir: string;
let port: number;

async function writeCerts(ca: CertificateAuthority, sa: string): Promise<string> {
  const svid = await ca.mintSvid({ identity: IDENTITY(sa) });
  const bundle = await firstValueFrom(ca.trustBundle$);
  const out = join(dir, sa);
  await mkdir(out, { recursive: true });
  const roots = new Set(bundle.roots);
  await writeFile(
    join(out, WORKLOAD_CERT_FILES.certificateChain),
    svid.chain.filter((pem, i) => i === 0 || !roots.has(pem)).join(""),
  );
  await writeFile(join(out, WORKLOAD_CERT_FILES.privateKey), svid.privateKey, { mode: 0o600 });
  await writeFile(join(out, WORKLOAD_CERT_FILES.rootCertificate), bundle.roots.join(""));
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshlet-proxyless-mtls-"));
  const ca = await CertificateAuthority.selfSigned({ trustDomain: "cluster.local" });
  const [serverCerts, jsCerts, cCerts] = await Promise.all([
    writeCerts(ca, "echo"),
    writeCerts(ca, "client-js"),
    writeCerts(ca, "client-c"),
  ]);
  ca.close();
  port = await freePort();
  plane = await startControlPlane(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo-secure, namespace: test }
spec:
  hosts: [${FQDN}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} }, labels: { app: echo-secure }, serviceAccount: echo }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo-secure, namespace: test }
spec:
  host: ${FQDN}
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: echo-secure, namespace: test }
spec:
  selector: { matchLabels: { app: echo-secure } }
  mtls: { mode: STRICT }
`);
  const uri = `127.0.0.1:${plane.port}`;
  server = await startXdsServer(
    "secure",
    `127.0.0.1:${port}`,
    {
      serverUri: uri,
      podName: "echo-secure-0",
      namespace: "test",
      ip: "127.0.0.1",
      labels: { app: "echo-secure" },
      serviceAccount: "echo",
      certDir: serverCerts,
      rbac: true,
    },
    { GRPC_XDS_EXPERIMENTAL_RBAC: "true" },
  );
  const client = (pod: string, sa: string, certDir: string) => ({
    serverUri: uri,
    podName: pod,
    namespace: "test",
    ip: "127.0.0.1",
    labels: { app: "client" },
    serviceAccount: sa,
    certDir,
  });
  clients = await Promise.all([
    startClient("grpc-js", client("client-js-0", "client-js", jsCerts)),
    startClient("c-core", client("client-c-0", "client-c", cCerts)),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await server?.close();
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function onBothClients(check: (client: MeshClient) => Promise<void>) {
  return Promise.all(
    clients.map((client) =>
      eventually(async () => {
        try {
          await check(client);
        } catch (error) {
          const last = await call(client).catch(() => []);
          throw new Error(
            `${client.kind}: ${error instanceof Error ? error.message : String(error)}\nlast: ${JSON.stringify(last)}\nclient: ${client.stderr().slice(-1500)}\nserver: ${server?.stderr().slice(-1500)}\nstatus: ${JSON.stringify(plane.status().proxies)}\nnacks: ${JSON.stringify(plane.events.filter((e) => e.type === "nack").map((e) => (e as { errorDetail: unknown }).errorDetail))}`,
            {
              cause: error,
            },
          );
        }
      }),
    ),
  );
}

const call = (client: MeshClient, metadata?: Record<string, string>) =>
  client.call(TARGETS[client.kind], { count: 3, credentials: "xds", ...(metadata ? { metadata } : {}) });

describe("proxyless gRPC server: STRICT mTLS and AuthorizationPolicy (grpc-js-xds server; grpc-js-xds and C-core clients)", () => {
  it("serves ISTIO_MUTUAL clients over mTLS with their SPIFFE identities", async () => {
    await onBothClients(async (client) => {
      const sa = client.kind === "grpc-js" ? "client-js" : "client-c";
      // The server answers with its id and the URI SAN of the client certificate it verified.
      expect(tally(await call(client))).toEqual({ [`secure|${IDENTITY(sa)}`]: 3 });
    });
    expect(plane.events.filter((e) => e.type === "nack")).toEqual([]);
  });

  it("refuses a plaintext client (STRICT)", async () => {
    const plain = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const result = await new Promise<grpc.ServiceError | undefined>((resolve) => {
        const id = (b: Buffer) => b;
        plain.makeUnaryRequest(
          "/meshlet.test.Echo/Echo",
          id,
          id,
          Buffer.alloc(0),
          { deadline: Date.now() + 5000 },
          (error) => resolve(error ?? undefined),
        );
      });
      expect(result?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
    }
  });

  it("denies with PERMISSION_DENIED what a DENY AuthorizationPolicy matches", async () => {
    await plane.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-deny, namespace: test }
spec:
  selector: { matchLabels: { app: echo-secure } }
  action: DENY
  rules: [{ when: [{ key: "request.headers[x-block]", values: ["yes"] }] }]
`);
    await onBothClients(async (client) => {
      const denied = await call(client, { "x-block": "yes" });
      expect(denied.map((r) => (r.ok ? "ok" : r.code))).toEqual([7, 7, 7]);
      expect((await call(client)).every((r) => r.ok)).toBe(true);
    });
  });

  it("allows only the principal an ALLOW AuthorizationPolicy names", async () => {
    await plane.remove(["AuthorizationPolicy", "test", "echo-deny"]);
    await plane.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-allow, namespace: test }
spec:
  selector: { matchLabels: { app: echo-secure } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/test/sa/client-js"] } }] }]
`);
    await onBothClients(async (client) => {
      const results = await call(client);
      if (client.kind === "grpc-js") expect(results.every((r) => r.ok)).toBe(true);
      else expect(results.map((r) => (r.ok ? "ok" : r.code))).toEqual([7, 7, 7]);
    });
    expect(plane.events.filter((e) => e.type === "nack")).toEqual([]);
  });
});
