// A synthetic mesh for bench/mesh-translate, generated deterministically from a seed: Kubernetes
// Services with EndpointSlices and Pods, DestinationRules with subsets, VirtualServices (weighted
// splits, header matches, retries, timeouts, faults; some bound to an ingress Gateway),
// ServiceEntries (DNS and STATIC), AuthorizationPolicies, PeerAuthentications, optional Sidecars for
// namespace isolation, and the xDS nodes of the proxies (Envoy sidecars, proxyless gRPC clients,
// gateways) with what each proxyless client subscribes to. The same seed and sizes always give the
// same objects, so runs on different machines measure the same work.

/** mulberry32: a small seeded PRNG (uniform in [0, 1)). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROOT = "istio-system";
const DOMAIN = "cluster.local";
const fqdn = (name, ns) => `${name}.${ns}.svc.${DOMAIN}`;
const ip = (base, n) => `${base}.${(n >> 8) & 255}.${n & 255}`; // base: two octets, n < 65536

/**
 * Generates the mesh.
 * @param {object} o
 * @param {number} o.seed
 * @param {number} o.services    Kubernetes application Services
 * @param {number} o.sidecars    Envoy sidecar proxies (pods of the HTTP/TCP services)
 * @param {number} o.proxyless   proxyless gRPC clients (pods of the gRPC services)
 * @param {number} o.gateways    ingress gateway replicas
 * @param {number} o.servicesPerNamespace
 * @param {"namespace"|"none"} o.isolation  a Sidecar per namespace importing `./*`, `istio-system/*`
 *   and the namespaces it calls (Istio's "namespace isolation"), or none (every proxy sees everything)
 */
export function generateMesh(o) {
  const rnd = prng(o.seed);
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const chance = (p) => rnd() < p;
  const objects = [];
  const add = (x) => objects.push(x);
  const namespaces = Math.max(1, Math.ceil(o.services / o.servicesPerNamespace));
  const nsName = (i) => `ns-${String(i).padStart(3, "0")}`;

  // ---- services -----------------------------------------------------------------------------------
  // A tenth of the services (at least one when there are proxyless clients) are gRPC services whose
  // pods are proxyless clients; the rest run Envoy sidecars.
  const grpcEvery = o.proxyless > 0 ? 10 : 0;
  const services = [];
  for (let i = 0; i < o.services; i++) {
    const ns = nsName(Math.floor(i / o.servicesPerNamespace));
    const name = `svc-${String(i).padStart(4, "0")}`;
    const grpc = grpcEvery > 0 && i % grpcEvery === 7 % grpcEvery;
    let ports;
    if (grpc) ports = [{ name: "grpc", port: 7070, targetPort: 7070, appProtocol: "grpc" }];
    else {
      const r = rnd();
      if (r < 0.08) ports = [{ name: "tcp-redis", port: 6379, targetPort: 6379 }];
      else if (r < 0.28)
        ports = [
          { name: "http", port: 8080, targetPort: 8080 },
          { name: "grpc", port: 9090, targetPort: 9090 },
        ];
      else ports = [{ name: "http", port: 8080, targetPort: 8080 }];
    }
    const versions = ports[0].name === "tcp-redis" ? 1 : 1 + Math.floor(rnd() * 3);
    services.push({
      i,
      ns,
      name,
      host: fqdn(name, ns),
      grpc,
      ports,
      versions,
      clusterIP: ip("10.96", i + 1),
      pods: [],
      calls: [],
    });
  }
  const envoyServices = services.filter((s) => !s.grpc);
  const grpcServices = services.filter((s) => s.grpc);

  // Call graph: each service calls 2–3 others, mostly in its own namespace, else in one of the next
  // three namespaces (so namespace isolation imports a few namespaces, as real Sidecars do).
  const nsIndex = (s) => Math.floor(s.i / o.servicesPerNamespace);
  for (const s of services) {
    const n = 2 + Math.floor(rnd() * 2);
    const pool = s.grpc ? grpcServices : services;
    for (let k = 0; k < n && pool.length > 1; k++) {
      const targetNs =
        chance(0.75) || namespaces === 1 ? nsIndex(s) : (nsIndex(s) + 1 + Math.floor(rnd() * 3)) % namespaces;
      const candidates = pool.filter((x) => nsIndex(x) === targetNs && x !== s);
      const t = candidates.length > 0 ? pick(candidates) : pick(pool);
      if (t !== s && !s.calls.includes(t)) s.calls.push(t);
    }
  }

  for (const s of services) {
    add({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: s.name, namespace: s.ns, labels: { app: s.name } },
      spec: { clusterIP: s.clusterIP, selector: { app: s.name }, ports: s.ports.map((p) => ({ ...p })) },
    });
  }

  // ---- pods -----------------------------------------------------------------------------------------
  // Every service gets a pod; the rest are spread by a per-service weight (1–9), so replica counts vary.
  let podIndex = 0;
  const pods = [];
  const placePods = (list, total) => {
    if (list.length === 0 || total === 0) return;
    const weights = list.map(() => 1 + Math.floor(rnd() * 9));
    const sum = weights.reduce((a, b) => a + b, 0);
    const counts = list.map((_, k) => (k < total ? 1 : 0));
    let left = total - Math.min(total, list.length);
    const cum = [];
    let acc = 0;
    for (const w of weights) {
      acc += w;
      cum.push(acc);
    }
    while (left > 0) {
      const r = rnd() * sum;
      let k = cum.findIndex((c) => r < c);
      if (k < 0) k = list.length - 1;
      counts[k]++;
      left--;
    }
    list.forEach((s, k) => {
      for (let r = 0; r < counts[k]; r++) {
        const version = `v${1 + (r % s.versions)}`;
        const podIp = ip("10.244", ++podIndex);
        const pod = {
          name: `${s.name}-${version}-${r.toString(36).padStart(4, "0")}`,
          ns: s.ns,
          ip: podIp,
          service: s,
          version,
          kind: s.grpc ? "proxyless" : "sidecar",
        };
        s.pods.push(pod);
        pods.push(pod);
      }
    });
  };
  placePods(envoyServices, o.sidecars);
  placePods(grpcServices, o.proxyless);

  for (const p of pods) {
    add({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: p.name,
        namespace: p.ns,
        labels: { app: p.service.name, version: p.version, "security.istio.io/tlsMode": "istio" },
      },
      spec: {
        serviceAccountName: p.service.name,
        containers: [
          {
            name: "app",
            ports: p.service.ports.map((sp) => ({ name: sp.name, containerPort: sp.targetPort })),
          },
        ],
      },
      status: { podIP: p.ip, phase: "Running" },
    });
  }
  for (const s of services) add(endpointSlice(s, s.pods));

  // ---- gateways -------------------------------------------------------------------------------------
  const gatewayPods = [];
  if (o.gateways > 0) {
    add({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "istio-ingressgateway", namespace: ROOT, labels: { istio: "ingressgateway" } },
      spec: {
        clusterIP: "10.96.250.1",
        selector: { istio: "ingressgateway" },
        ports: [
          { name: "http2", port: 80, targetPort: 8080 },
          { name: "https", port: 443, targetPort: 8443 },
        ],
      },
    });
    for (let g = 0; g < o.gateways; g++) {
      const p = { name: `istio-ingressgateway-${g}`, ns: ROOT, ip: ip("10.245", g + 1), kind: "gateway" };
      gatewayPods.push(p);
      add({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: p.name,
          namespace: ROOT,
          labels: { istio: "ingressgateway", app: "istio-ingressgateway" },
        },
        spec: {
          serviceAccountName: "istio-ingressgateway-service-account",
          containers: [{ name: "istio-proxy", ports: [{ containerPort: 8080 }, { containerPort: 8443 }] }],
        },
        status: { podIP: p.ip, phase: "Running" },
      });
    }
    add({
      apiVersion: "networking.istio.io/v1",
      kind: "Gateway",
      metadata: { name: "ingress", namespace: ROOT },
      spec: {
        selector: { istio: "ingressgateway" },
        servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*/*.example.com"] }],
      },
    });
  }

  // ---- DestinationRules and VirtualServices ---------------------------------------------------------
  const virtualServices = [];
  for (const s of services) {
    if (s.versions > 1 || chance(0.15)) {
      const trafficPolicy = {};
      if (chance(0.3)) trafficPolicy.tls = { mode: "ISTIO_MUTUAL" };
      if (chance(0.2))
        trafficPolicy.connectionPool = {
          http: { http2MaxRequests: 1000, maxRequestsPerConnection: 10 },
          tcp: { maxConnections: 100 },
        };
      if (chance(0.1)) trafficPolicy.loadBalancer = { simple: s.grpc ? "ROUND_ROBIN" : "LEAST_REQUEST" };
      if (!s.grpc && chance(0.1))
        trafficPolicy.outlierDetection = {
          consecutive5xxErrors: 5,
          interval: "10s",
          baseEjectionTime: "30s",
        };
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: { name: s.name, namespace: s.ns },
        spec: {
          host: s.name,
          ...(Object.keys(trafficPolicy).length > 0 ? { trafficPolicy } : {}),
          subsets: Array.from({ length: s.versions }, (_, v) => ({
            name: `v${v + 1}`,
            labels: { version: `v${v + 1}` },
          })),
        },
      });
    }
    const tcp = s.ports[0].name === "tcp-redis";
    if (!tcp && s.versions > 1 && chance(0.6)) {
      const r = rnd();
      let http;
      if (r < 0.4) {
        http = [
          {
            route: [
              { destination: { host: s.name, subset: "v1" }, weight: 90 },
              { destination: { host: s.name, subset: "v2" }, weight: 10 },
            ],
            timeout: "5s",
          },
        ];
      } else if (r < 0.75) {
        http = [
          {
            match: [{ headers: { "end-user": { exact: "jason" } } }],
            route: [{ destination: { host: s.name, subset: "v2" } }],
          },
          {
            route: [{ destination: { host: s.name, subset: "v1" } }],
            retries: { attempts: 3, perTryTimeout: "2s", retryOn: "5xx,reset" },
          },
        ];
      } else if (r < 0.9) {
        http = [
          {
            match: [{ uri: { prefix: "/api/v2" } }],
            route: [{ destination: { host: s.name, subset: "v2" } }],
            timeout: "3s",
          },
          { route: [{ destination: { host: s.name, subset: "v1" } }] },
        ];
      } else {
        http = [
          {
            fault: { delay: { percentage: { value: 10 }, fixedDelay: "2s" } },
            route: [{ destination: { host: s.name, subset: "v1" } }],
          },
        ];
      }
      const vs = { name: s.name, ns: s.ns, service: s, weighted: r < 0.4 };
      virtualServices.push(vs);
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: s.name, namespace: s.ns },
        spec: { hosts: [s.name], http },
      });
    }
  }
  // Services exposed through the ingress gateway.
  if (o.gateways > 0) {
    const exposed = envoyServices.filter((s) => s.ports[0].name === "http" && s.i % 20 === 3);
    for (const s of exposed) {
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: `${s.name}-ingress`, namespace: s.ns },
        spec: {
          hosts: [`${s.name}.example.com`],
          gateways: [`${ROOT}/ingress`],
          http: [{ route: [{ destination: { host: s.host, port: { number: 8080 } } }] }],
        },
      });
    }
  }

  // ---- ServiceEntries -------------------------------------------------------------------------------
  const serviceEntries = Math.max(1, Math.round(o.services / 20));
  for (let k = 0; k < serviceEntries; k++) {
    const ns = nsName(k % namespaces);
    if (k % 5 === 4) {
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: `vm-db-${k}`, namespace: ns },
        spec: {
          hosts: [`db-${k}.vm.internal`],
          addresses: [ip("10.97", k + 1)],
          ports: [{ number: 5432, name: "tcp-postgres", protocol: "TCP" }],
          location: "MESH_INTERNAL",
          resolution: "STATIC",
          endpoints: [
            { address: ip("192.168", 2 * k + 1), labels: { app: `db-${k}` } },
            { address: ip("192.168", 2 * k + 2), labels: { app: `db-${k}` } },
          ],
        },
      });
    } else {
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: `external-api-${k}`, namespace: ns },
        spec: {
          hosts: [`api-${k}.example.org`],
          ports: [{ number: 443, name: "tls", protocol: "TLS" }],
          location: "MESH_EXTERNAL",
          resolution: "DNS",
        },
      });
    }
  }

  // ---- security -------------------------------------------------------------------------------------
  add({
    apiVersion: "security.istio.io/v1",
    kind: "PeerAuthentication",
    metadata: { name: "default", namespace: ROOT },
    spec: { mtls: { mode: "STRICT" } },
  });
  add({
    apiVersion: "security.istio.io/v1",
    kind: "PeerAuthentication",
    metadata: { name: "default", namespace: nsName(namespaces - 1) },
    spec: { mtls: { mode: "PERMISSIVE" } },
  });
  const authzEvery = Math.max(1, Math.floor(namespaces / 10));
  for (let n = 0; n < namespaces; n += authzEvery) {
    const ns = nsName(n);
    const target = services.find((s) => s.ns === ns);
    if (target === undefined) continue;
    const callers = services.filter((c) => c.calls.includes(target));
    add({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: `${target.name}-allow`, namespace: ns },
      spec: {
        selector: { matchLabels: { app: target.name } },
        action: "ALLOW",
        rules: [
          {
            from: [
              {
                source: {
                  principals:
                    callers.length > 0
                      ? callers.map((c) => `${DOMAIN}/ns/${c.ns}/sa/${c.name}`)
                      : [`${DOMAIN}/ns/${ns}/sa/default`],
                },
              },
            ],
            to: [{ operation: { methods: ["GET", "POST"] } }],
          },
        ],
      },
    });
    if (n % (2 * authzEvery) === 0) {
      add({
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "deny-debug", namespace: ns },
        spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/debug/*"] } }] }] },
      });
    }
  }

  // ---- namespace isolation --------------------------------------------------------------------------
  const imports = new Map();
  for (let n = 0; n < namespaces; n++) {
    const ns = nsName(n);
    const set = new Set([ns, ROOT]);
    for (const s of services) if (s.ns === ns) for (const c of s.calls) set.add(c.ns);
    imports.set(ns, set);
    if (o.isolation === "namespace") {
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "Sidecar",
        metadata: { name: "default", namespace: ns },
        spec: {
          egress: [
            {
              hosts: [
                "./*",
                `${ROOT}/*`,
                ...[...set].filter((x) => x !== ns && x !== ROOT).map((x) => `${x}/*`),
              ],
            },
          ],
        },
      });
    }
  }

  // ---- proxies --------------------------------------------------------------------------------------
  const proxies = [];
  for (const p of pods) {
    const labels = { app: p.service.name, version: p.version, "security.istio.io/tlsMode": "istio" };
    const metadata = {
      NAMESPACE: p.ns,
      LABELS: labels,
      SERVICE_ACCOUNT: p.service.name,
      CLUSTER_ID: "Kubernetes",
      ISTIO_VERSION: "1.24.0",
      INSTANCE_IPS: p.ip,
    };
    if (p.kind === "proxyless") {
      const clientKind = p.name.charCodeAt(p.name.length - 1) % 2 === 0 ? "grpc-js" : "c-core";
      proxies.push({
        kind: "proxyless",
        pod: p,
        node: {
          id: `sidecar~${p.ip}~${p.name}.${p.ns}~${p.ns}.svc.${DOMAIN}`,
          metadata: { ...metadata, GENERATOR: "grpc" },
          userAgentName: clientKind === "grpc-js" ? "gRPC Node Pure JS" : "gRPC C-core",
          ...(clientKind === "c-core"
            ? { userAgentVersionType: { case: "userAgentVersion", value: "C-core 37.0.0 Python 1.64.0" } }
            : {}),
        },
        // What a proxyless client subscribes to: the targets it dials, and its server listener.
        listenerNames: [
          ...p.service.calls.map((c) => `${c.host}:${c.ports[0].port}`),
          `xds.istio.io/grpc/lds/inbound/0.0.0.0:${p.service.ports[0].targetPort}`,
        ],
      });
    } else {
      proxies.push({
        kind: "sidecar",
        pod: p,
        node: {
          id: `sidecar~${p.ip}~${p.name}.${p.ns}~${p.ns}.svc.${DOMAIN}`,
          metadata,
          userAgentName: "envoy",
        },
      });
    }
  }
  for (const p of gatewayPods) {
    proxies.push({
      kind: "gateway",
      pod: p,
      node: {
        id: `router~${p.ip}~${p.name}.${ROOT}~${ROOT}.svc.${DOMAIN}`,
        metadata: {
          NAMESPACE: ROOT,
          LABELS: { istio: "ingressgateway", app: "istio-ingressgateway" },
          SERVICE_ACCOUNT: "istio-ingressgateway-service-account",
          CLUSTER_ID: "Kubernetes",
          ISTIO_VERSION: "1.24.0",
          INSTANCE_IPS: p.ip,
        },
        userAgentName: "envoy",
      },
    });
  }

  return { objects, services, virtualServices, proxies, imports, namespaces, isolation: o.isolation };
}

/** The EndpointSlice of a service over its pods; `notReady` names a pod whose endpoint is not ready. */
export function endpointSlice(s, pods, notReady) {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${s.name}-abcde`,
      namespace: s.ns,
      labels: { "kubernetes.io/service-name": s.name },
    },
    addressType: "IPv4",
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: p.name !== notReady },
      targetRef: { kind: "Pod", name: p.name, namespace: p.ns },
    })),
    ports: s.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: "TCP" })),
  };
}

/**
 * The proxies whose scope contains a service (or a VirtualService) of namespace `ns`, by the rule
 * Istio's SidecarScope applies to this topology, computed from the generator's model and not from
 * meshlet's code: with namespace isolation, proxies of namespaces importing `ns` plus gateways;
 * without, every proxy.
 */
export function proxiesSeeing(mesh, ns) {
  const out = new Set();
  for (const p of mesh.proxies) {
    if (p.kind === "gateway" || mesh.isolation !== "namespace" || mesh.imports.get(p.pod.ns)?.has(ns))
      out.add(p.node.id);
  }
  return out;
}
