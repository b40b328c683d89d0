import { ConnectError } from "@connectrpc/connect";
import { type AdminClient, createAdminClient } from "@meshlet/admin";
import {
  type Event as AdminEvent,
  ConfigType,
  EventKind,
  ProxyKind,
  SyncStatus,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { TypeUrl, testing } from "@meshlet/xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  eventually,
  type MeshClient,
  startBackend,
  startClient,
} from "../../mesh/test/support/mesh-fixture.js";
import { type AdminPlane, bookinfoFiles, startAdminPlane } from "./support/admin-plane.js";

// The admin API against a real control plane (FileSource → ConfigStore → MeshController →
// XdsServer) with a real proxyless client (@grpc/grpc-js-xds in its own process) and scripted xDS
// clients for an Envoy gateway and sidecar (Envoy cannot run here: they speak the documented xDS
// protocol through @meshlet/xds's testing client). Called with the real Connect client
// (@connectrpc/connect-node) and with plain fetch (Connect's JSON protocol, as curl sends it).
// Config: Istio's Bookinfo sample (istio/istio samples/bookinfo, pinned in @meshlet/mesh testdata)
// plus a gRPC echo ServiceEntry for the proxyless client.

const FQDN = "echo.test.svc.cluster.local";
const echo = (port: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: test }
spec:
  hosts: [${FQDN}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints:
    - { address: 127.0.0.1, ports: { grpc: ${port} }, labels: { app: echo, version: v1 } }
`;
// A PEM-looking private key: what must never leave the control plane.
const KEY_MATERIAL = "MC4CAQAwBQYDK2VwBCIEIMEESHLETSECRETKEYMATERIAL00000000000000";
const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----\n${KEY_MATERIAL}\n-----END PRIVATE KEY-----\n`;
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcertificateisnotsecret\n-----END CERTIFICATE-----\n";
const b64 = (s: string) => Buffer.from(s).toString("base64");
// istio.io tasks/traffic-management/ingress/secure-ingress: a SIMPLE TLS Gateway with a credentialName.
const gateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: secure-gateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      tls: { mode: SIMPLE, credentialName: bookinfo-credential }
      hosts: ["bookinfo.example.com"]
---
apiVersion: v1
kind: Secret
metadata: { name: bookinfo-credential, namespace: istio-system }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(CERT)}
  tls.key: ${b64(PRIVATE_KEY)}
`;
const GATEWAY_ID = "router~10.244.2.10~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local";
const PRODUCTPAGE_ID = "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local";
const sidecarNode = (id: string, ns: string, sa: string, labels: Record<string, string>) => ({
  id,
  metadata: {
    NAMESPACE: ns,
    SERVICE_ACCOUNT: sa,
    LABELS: labels,
    ISTIO_VERSION: "1.27.0",
    CLUSTER_ID: "Kubernetes",
  },
});

let plane: AdminPlane;
let backend: Backend;
let grpcClient: MeshClient;
let client: AdminClient;
const adsClients: testing.AdsClient[] = [];

beforeAll(async () => {
  backend = await startBackend("v1");
  plane = await startAdminPlane({
    ...(await bookinfoFiles("bookinfo.yaml", "ingressgateway.yaml", "destination-rule-all.yaml")),
    "echo.yaml": echo(backend.port),
    "gateway.yaml": gateway,
  });
  client = createAdminClient({ url: plane.server.url });
  grpcClient = await startClient("grpc-js", {
    serverUri: `127.0.0.1:${plane.xdsPort}`,
    podName: "client-js",
    namespace: "test",
    ip: "127.0.0.1",
    labels: { app: "client" },
  });
  // The proxyless client resolves xds:/// through LDS → RDS → CDS → EDS and calls the backend.
  await eventually(async () => {
    const [r] = await grpcClient.call(`xds:///${FQDN}:7070`, { timeoutMs: 3000 });
    expect(r).toMatchObject({ ok: true, backend: "v1" });
  });
});

afterAll(async () => {
  for (const c of adsClients) c.close();
  await grpcClient?.close();
  await plane?.close();
  await backend?.close();
});

describe("ListProxies", () => {
  it("lists the proxyless client with its workload, identity and every type SYNCED, as istioctl proxy-status reads it", async () => {
    const res = await eventually(async () => {
      const r = await client.listProxies({});
      const p = r.proxies.find((x) => x.workload === "client-js");
      expect(p?.status).toBe(SyncStatus.SYNCED);
      return r;
    });
    expect(res.controlPlane).toBe("meshlet-test");
    expect(res.configVersion).not.toBe("");
    const p = res.proxies.find((x) => x.workload === "client-js");
    expect(p).toMatchObject({
      id: grpcClient.nodeId,
      kind: ProxyKind.PROXYLESS,
      namespace: "test",
      client: "grpc-js",
      streams: 1,
      ipAddresses: ["127.0.0.1"],
    });
    expect(p?.connectedSince).toBeDefined();
    // istioctl's columns: CDS, LDS, EDS, RDS (ECDS only when the proxy asks for it).
    expect(p?.types.map((t) => [t.type, t.status])).toEqual([
      ["CDS", SyncStatus.SYNCED],
      ["LDS", SyncStatus.SYNCED],
      ["EDS", SyncStatus.SYNCED],
      ["RDS", SyncStatus.SYNCED],
    ]);
    for (const t of p?.types ?? []) {
      expect(t.versionSent).not.toBe("");
      expect(t.versionAcked).toBe(t.versionSent);
    }
  });

  it("shows a NACK as ERROR with the proxy's own error text, and sends it on WatchEvents", async () => {
    const abort = new AbortController();
    const nacks: AdminEvent[] = [];
    const watching = (async () => {
      try {
        for await (const e of client.watchEvents({ kinds: [EventKind.NACK] }, { signal: abort.signal })) {
          nacks.push(e);
          if (e.event.case === "nack" && e.event.value.proxy === PRODUCTPAGE_ID) break;
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      }
    })();
    const sidecar = testing.AdsClient.connect({
      address: `127.0.0.1:${plane.xdsPort}`,
      node: sidecarNode(PRODUCTPAGE_ID, "default", "bookinfo-productpage", {
        app: "productpage",
        version: "v1",
      }),
      autoAck: (r) =>
        r.typeUrl === TypeUrl.Cluster ? "cluster outbound|9080||reviews: unknown field" : undefined,
    });
    adsClients.push(sidecar);
    sidecar.request({ typeUrl: TypeUrl.Cluster });
    sidecar.request({ typeUrl: TypeUrl.Listener });
    const p = await eventually(async () => {
      const r = await client.listProxies({ namespace: "default" });
      const found = r.proxies.find((x) => x.id === PRODUCTPAGE_ID);
      expect(found?.status).toBe(SyncStatus.ERROR);
      return found;
    });
    expect(p).toMatchObject({
      kind: ProxyKind.SIDECAR,
      workload: "productpage-v1-0",
      clusterId: "Kubernetes",
    });
    expect(p?.identity).toBe("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
    expect(p?.clientVersion).toBe("1.27.0");
    const cds = p?.types.find((t) => t.type === "CDS");
    expect(cds).toMatchObject({
      status: SyncStatus.ERROR,
      nackError: "cluster outbound|9080||reviews: unknown field",
      versionAcked: "",
    });
    expect(cds?.versionNacked).toBe(cds?.versionSent);
    expect(p?.types.find((t) => t.type === "LDS")?.status).toBe(SyncStatus.SYNCED);
    await watching;
    abort.abort();
    const nack = nacks.find((e) => e.event.case === "nack");
    expect(nack?.event.value).toMatchObject({
      proxy: PRODUCTPAGE_ID,
      typeUrl: TypeUrl.Cluster,
      error: "cluster outbound|9080||reviews: unknown field",
    });
    sidecar.close();
  });
});

describe("GetProxyConfig", () => {
  it("returns the proxyless client's config in Envoy's config_dump shape, filtered by type and name", async () => {
    const res = await client.getProxyConfig({ proxy: "client-js.test" });
    expect(res.proxyId).toBe(grpcClient.nodeId);
    const dump = res.configDump as { configs: Array<Record<string, unknown>> };
    // Envoy's /config_dump order (clusters, listeners, routes, secrets) then endpoints (?include_eds).
    expect(dump.configs.map((c) => c["@type"])).toEqual([
      "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
      "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
      "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
      "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
      "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
    ]);
    const listeners = dump.configs[1] as {
      version_info: string;
      dynamic_listeners: Array<{
        name: string;
        active_state: { listener: Record<string, unknown> };
        client_status: string;
      }>;
    };
    expect(listeners.dynamic_listeners.map((l) => l.name)).toEqual([`${FQDN}:7070`]);
    expect(listeners.dynamic_listeners[0]?.client_status).toBe("ACKED");
    expect(listeners.dynamic_listeners[0]?.active_state.listener["@type"]).toBe(
      "type.googleapis.com/envoy.config.listener.v3.Listener",
    );
    expect(listeners.version_info).not.toBe("");
    const clusters = dump.configs[0] as { dynamic_active_clusters: Array<{ cluster: { name: string } }> };
    expect(clusters.dynamic_active_clusters.map((c) => c.cluster.name)).toEqual([`outbound|7070||${FQDN}`]);

    const only = await client.getProxyConfig({
      proxy: grpcClient.nodeId,
      types: [ConfigType.ENDPOINTS],
      endpointNames: [`outbound|7070||${FQDN}`],
    });
    const eds = (only.configDump as { configs: Array<Record<string, unknown>> }).configs;
    expect(eds).toHaveLength(1);
    const ep = (eds[0] as { dynamic_endpoint_configs: Array<{ endpoint_config: Record<string, unknown> }> })
      .dynamic_endpoint_configs;
    expect(ep.map((e) => e.endpoint_config.cluster_name)).toEqual([`outbound|7070||${FQDN}`]);
  });

  it("never returns a private key: the gateway's TLS key reads [redacted], the certificate stays", async () => {
    const gw = testing.AdsClient.connect({
      address: `127.0.0.1:${plane.xdsPort}`,
      node: {
        id: GATEWAY_ID,
        metadata: {
          NAMESPACE: "istio-system",
          SERVICE_ACCOUNT: "istio-ingressgateway-service-account",
          LABELS: { app: "istio-ingressgateway", istio: "ingressgateway" },
        },
      },
      autoAck: true,
    });
    adsClients.push(gw);
    gw.request({ typeUrl: TypeUrl.Secret, resourceNames: ["kubernetes://bookinfo-credential"] });
    const sds = await gw.next(TypeUrl.Secret);
    // The gateway itself gets the key (it terminates TLS with it)…
    const sent = sds.resources[0]?.message as unknown as {
      type: { value: { privateKey?: { specifier: { value: Uint8Array } } } };
    };
    expect(new TextDecoder().decode(sent.type.value.privateKey?.specifier.value)).toBe(PRIVATE_KEY);
    // …the admin API never shows it, in any encoding.
    const res = await eventually(async () => {
      const r = await client.getProxyConfig({
        proxy: "istio-ingressgateway-0.istio-system",
        types: [ConfigType.SECRETS],
      });
      expect(JSON.stringify(r.configDump)).toContain("private_key");
      return r;
    });
    const text = JSON.stringify(res.configDump);
    expect(text).not.toContain(KEY_MATERIAL);
    expect(text).not.toContain(b64(PRIVATE_KEY).slice(0, 40));
    expect(text).not.toContain(Buffer.from(KEY_MATERIAL).toString("base64").slice(0, 24));
    const secret = (
      res.configDump as {
        configs: Array<{
          dynamic_active_secrets: Array<{
            name: string;
            secret: Record<string, Record<string, Record<string, string>>>;
          }>;
        }>;
      }
    ).configs[0]?.dynamic_active_secrets[0];
    expect(secret?.name).toBe("kubernetes://bookinfo-credential");
    const tls = secret?.secret.tls_certificate as Record<string, Record<string, string>>;
    // Envoy's redaction: a sensitive DataSource's bytes become the bytes of "[redacted]" (base64 in JSON).
    expect(Buffer.from(tls.private_key?.inline_bytes ?? "", "base64").toString()).toBe("[redacted]");
    expect(Buffer.from(tls.certificate_chain?.inline_bytes ?? "", "base64").toString()).toBe(CERT);
    // Over plain JSON (curl) too.
    const curl = await fetch(`${plane.server.url}/meshlet.admin.v1.MeshAdmin/GetProxyConfig`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ proxy: GATEWAY_ID }),
    });
    const body = await curl.text();
    expect(curl.status).toBe(200);
    expect(body).toContain("kubernetes://bookinfo-credential");
    expect(body).not.toContain(KEY_MATERIAL);
    expect(body).not.toContain(b64(PRIVATE_KEY).slice(0, 40));
  });

  it("answers not_found for an unknown proxy, naming the connected ones", async () => {
    const err = await client.getProxyConfig({ proxy: "nope.default" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(5); // Code.NotFound
    expect((err as ConnectError).rawMessage).toContain("client-js.test");
  });
});

describe("Explain", () => {
  it("explains a request against the config being served, and follows an edit of the VirtualService", async () => {
    // No VirtualService for reviews: the default route, to every reviews pod.
    const before = await client.explain({
      proxy: "productpage-v1-0.default",
      to: "reviews:9080",
      headers: { "end-user": "jason" },
    });
    expect(before.outcome).toBe("forwarded");
    expect(before.hops[0]?.steps.find((s) => s.step === "cluster")?.name).toBe(
      "outbound|9080||reviews.default.svc.cluster.local",
    );
    expect(before.text[0]).toBe("GET reviews:9080/ from productpage-v1-0.default");
    expect(before.hops.map((h) => h.mode)).toEqual(["outbound", "inbound"]);

    // istio.io tasks/traffic-management/request-routing: virtual-service-reviews-test-v2 sends
    // end-user jason to reviews v2.
    const files = await bookinfoFiles("virtual-service-reviews-test-v2.yaml");
    await plane.write(
      "virtual-service-reviews-test-v2.yaml",
      files["virtual-service-reviews-test-v2.yaml"] as string,
    );
    const after = await client.explain({
      proxy: "productpage-v1-0.default",
      to: "reviews:9080",
      headers: { "end-user": "jason" },
    });
    expect(after.hops[0]?.steps.find((s) => s.step === "cluster")?.name).toBe(
      "outbound|9080|v2|reviews.default.svc.cluster.local",
    );
    const route = after.hops[0]?.steps.find((s) => s.step === "route");
    expect(route?.config.map((c) => `${c.kind}/${c.namespace}/${c.name} ${c.file}:${c.line}`)).toEqual([
      "VirtualService/default/reviews virtual-service-reviews-test-v2.yaml:2",
    ]);
    expect(after.configVersion).not.toBe(before.configVersion);
    expect(after.explanation).toMatchObject({ outcome: { kind: "forwarded" } });
  });

  it("refuses a malformed request with invalid_argument and an unknown proxy with not_found", async () => {
    const bad = await client
      .explain({ proxy: "productpage-v1-0.default", to: "reviews:9080", protocol: "quic" })
      .catch((e: unknown) => e);
    expect((bad as ConnectError).code).toBe(3);
    const missing = await client
      .explain({ proxy: "ghost-0.default", to: "reviews:9080" })
      .catch((e: unknown) => e);
    expect((missing as ConnectError).code).toBe(5);
  });
});

describe("GetConfigStatus", () => {
  it("lists the objects in force with their file and line, and the config's findings", async () => {
    const res = await client.getConfigStatus({});
    const vs = res.objects
      .filter((o) => o.kind === "Gateway")
      .map((o) => `${o.namespace}/${o.name} ${o.file}:${o.line}`);
    expect(vs).toEqual(["istio-system/secure-gateway gateway.yaml:2"]);
    expect(res.objects.find((o) => o.kind === "Service" && o.name === "reviews")?.file).toBe("bookinfo.yaml");
    expect(res.sources[0]).toMatchObject({ name: "files", synced: true });
    expect(res.version).not.toBe("");
  });

  it("reports a broken file with file:line while the last good config keeps serving, on the API and the feed", async () => {
    const abort = new AbortController();
    const seen: AdminEvent[] = [];
    const stream = client.watchEvents({ kinds: [EventKind.DIAGNOSTIC] }, { signal: abort.signal });
    const watching = (async () => {
      try {
        for await (const e of stream) {
          seen.push(e);
          if (e.event.case === "diagnostic" && e.event.value.diagnostic?.file === "broken.yaml") break;
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      }
    })();
    const { writeFile } = await import("node:fs/promises");
    await writeFile(
      `${plane.dir}/broken.yaml`,
      "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken, namespace: default }\nspec:\n  hosts: 7\n",
    );
    const res = await eventually(async () => {
      const r = await client.getConfigStatus({});
      expect(r.diagnostics.some((d) => d.file === "broken.yaml" && d.severity === "error")).toBe(true);
      return r;
    });
    const d = res.diagnostics.find((x) => x.file === "broken.yaml");
    expect(d?.line).toBeGreaterThan(0);
    expect(d?.resource).toBe("VirtualService/default/broken");
    await watching;
    abort.abort();
    expect(seen.find((e) => e.event.case === "diagnostic")?.event.value).toMatchObject({
      origin: "config",
      resolved: false,
    });
  });
});
