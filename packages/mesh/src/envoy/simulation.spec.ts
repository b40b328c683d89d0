import { describe, expect, it } from "vitest";
import { type Call, walk } from "../explain/walker.js";
import {
  createGateway,
  expectWalk,
  simGateway,
  simSidecar,
  simulate,
  type Want,
} from "../testing/envoy-sim.js";

// Walk tests modelled on Istio's own (pilot/pkg/simulation): each table below is ported from
// istio/istio pilot/pkg/networking/core/*_simulation_test.go at the commit cited, case names kept.
// Envoy cannot run in this repository's CI; the walker (src/explain/walker.ts) reads only the
// generated xDS messages and follows Envoy's documented matching, as Istio's harness does.
// Adaptations, each deliberate: meshlet resolves short hosts with the cluster domain suffix, so
// Istio's `outbound|80||a.default` (the fake environment has none) reads
// `outbound|80||a.default.svc.cluster.local` here.

const SIDECAR_SIM =
  "istio/istio@0098d99f8e43fe516aaac5a84a131b4ce3c8b9d1 pilot/pkg/networking/core/sidecar_simulation_test.go";
const PEER_AUTHN_SIM =
  "istio/istio@461f85ba4afe2d21406d53a1e122cbb2558b0fc2 pilot/pkg/networking/core/peer_authentication_simulation_test.go";
const GATEWAY_SIM =
  "istio/istio@0cb5c33595cdfaea732178a4d70265ac0a762255 pilot/pkg/networking/core/gateway_simulation_test.go";

const mtlsMode = (m: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: ${m}
---
`;

interface InboundCase {
  readonly name: string;
  readonly call: Call;
  readonly disabled: Want;
  readonly permissive: Want;
  readonly strict: Want;
}

const inbound = (c: Omit<Call, "callMode">): Call => ({ ...c, callMode: "inbound" });
const NO_FC: Want = { error: "no filter chains matched" };
const MTLS_ERR: Want = { error: "invalid mTLS" };
const PROTO_ERR: Want = { error: "protocol error" };
const TCP81: Want = {
  listenerMatched: "virtualInbound",
  filterChainMatched: "0.0.0.0_81",
  clusterMatched: "inbound|81||",
  strict: true,
};

describe(`TestInbound (${SIDECAR_SIM})`, () => {
  const svc = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: se
  namespace: default
spec:
  hosts:
  - foo.bar
  endpoints:
  - address: 1.1.1.1
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - name: tcp
    number: 70
    protocol: TCP
  - name: http
    number: 80
    protocol: HTTP
  - name: auto
    number: 81
---
`;
  const c70: Want = { clusterMatched: "inbound|70||" };
  const h80: Want = { virtualHostMatched: "inbound|http|80", clusterMatched: "inbound|80||" };
  const h81: Want = { virtualHostMatched: "inbound|http|81", clusterMatched: "inbound|81||" };
  const pass: Want = { clusterMatched: "InboundPassthroughCluster" };
  const cases: InboundCase[] = [
    {
      name: "tcp",
      call: inbound({ port: 70, protocol: "tcp" }),
      disabled: c70,
      permissive: c70,
      strict: NO_FC,
    },
    {
      name: "http to tcp",
      call: inbound({ port: 70, protocol: "http" }),
      disabled: c70,
      permissive: c70,
      strict: NO_FC,
    },
    {
      name: "tls to tcp",
      call: inbound({ port: 70, protocol: "tcp", tls: "tls" }),
      disabled: c70,
      permissive: c70,
      strict: MTLS_ERR,
    },
    {
      name: "https to tcp",
      call: inbound({ port: 70, protocol: "http", tls: "tls" }),
      disabled: c70,
      permissive: c70,
      strict: MTLS_ERR,
    },
    {
      name: "mtls tcp to tcp",
      call: inbound({ port: 70, protocol: "tcp", tls: "mtls" }),
      disabled: c70,
      permissive: c70,
      strict: c70,
    },
    {
      name: "mtls http to tcp",
      call: inbound({ port: 70, protocol: "http", tls: "mtls" }),
      disabled: c70,
      permissive: c70,
      strict: c70,
    },
    {
      name: "http",
      call: inbound({ port: 80, protocol: "http" }),
      disabled: h80,
      permissive: h80,
      strict: NO_FC,
    },
    {
      name: "tls to http",
      call: inbound({ port: 80, protocol: "tcp", tls: "tls" }),
      disabled: PROTO_ERR,
      permissive: NO_FC,
      strict: MTLS_ERR,
    },
    {
      name: "https to http",
      call: inbound({ port: 80, protocol: "http", tls: "tls" }),
      disabled: PROTO_ERR,
      permissive: NO_FC,
      strict: MTLS_ERR,
    },
    {
      name: "mtls to http",
      call: inbound({ port: 80, protocol: "http", tls: "mtls" }),
      disabled: PROTO_ERR,
      permissive: h80,
      strict: h80,
    },
    {
      name: "tcp to http",
      call: inbound({ port: 80, protocol: "tcp" }),
      disabled: PROTO_ERR,
      permissive: PROTO_ERR,
      strict: NO_FC,
    },
    {
      name: "auto port http",
      call: inbound({ port: 81, protocol: "http" }),
      disabled: h81,
      permissive: h81,
      strict: NO_FC,
    },
    {
      name: "auto port http2",
      call: inbound({ port: 81, protocol: "http2" }),
      disabled: h81,
      permissive: h81,
      strict: NO_FC,
    },
    {
      name: "auto port tcp",
      call: inbound({ port: 81, protocol: "tcp" }),
      disabled: TCP81,
      permissive: TCP81,
      strict: NO_FC,
    },
    {
      name: "tls to auto port",
      call: inbound({ port: 81, protocol: "tcp", tls: "tls" }),
      disabled: TCP81,
      permissive: TCP81,
      strict: MTLS_ERR,
    },
    {
      name: "https to auto port",
      call: inbound({ port: 81, protocol: "http", tls: "tls" }),
      disabled: TCP81,
      permissive: TCP81,
      strict: MTLS_ERR,
    },
    {
      name: "mtls tcp to auto port",
      call: inbound({ port: 81, protocol: "tcp", tls: "mtls" }),
      disabled: { clusterMatched: "inbound|81||" },
      permissive: TCP81,
      strict: TCP81,
    },
    {
      name: "mtls http to auto port",
      call: inbound({ port: 81, protocol: "http", tls: "mtls" }),
      disabled: { clusterMatched: "inbound|81||" },
      permissive: h81,
      strict: h81,
    },
    {
      name: "passthrough http",
      call: inbound({ address: "1.2.3.4", port: 82, protocol: "http" }),
      disabled: { ...pass, filterChainMatched: "virtualInbound-catchall-http" },
      permissive: { ...pass, filterChainMatched: "virtualInbound-catchall-http" },
      strict: NO_FC,
    },
    {
      name: "passthrough tcp",
      call: inbound({ address: "1.2.3.4", port: 82, protocol: "tcp" }),
      disabled: { ...pass, filterChainMatched: "virtualInbound" },
      permissive: { ...pass, filterChainMatched: "virtualInbound" },
      strict: NO_FC,
    },
    {
      name: "passthrough tls",
      call: inbound({ address: "1.2.3.4", port: 82, protocol: "tcp", tls: "tls" }),
      disabled: { ...pass, filterChainMatched: "virtualInbound" },
      permissive: pass,
      strict: MTLS_ERR,
    },
    {
      name: "passthrough https",
      call: inbound({ address: "1.2.3.4", port: 82, protocol: "http", tls: "tls" }),
      disabled: pass,
      permissive: pass,
      strict: MTLS_ERR,
    },
    {
      name: "passthrough mtls",
      call: inbound({ address: "1.2.3.4", port: 82, protocol: "http", tls: "mtls" }),
      disabled: pass,
      permissive: pass,
      strict: pass,
    },
  ];
  for (const [mode, pick] of [
    ["DISABLE", (c: InboundCase) => c.disabled],
    ["PERMISSIVE", (c: InboundCase) => c.permissive],
    ["STRICT", (c: InboundCase) => c.strict],
  ] as const) {
    it(mode, () => {
      const r = simulate(svc + mtlsMode(mode), simSidecar());
      for (const c of cases) expectWalk(walk(r, c.call), pick(c), `${mode} ${c.name}`);
    });
  }
});

describe(`TestPassthroughTraffic (${SIDECAR_SIM})`, () => {
  const ports = `
  ports:
  - name: http
    number: 80
    protocol: HTTP
  - name: auto
    number: 81
  - name: tcp
    number: 82
    protocol: TCP
  - name: tls
    number: 83
    protocol: TLS
  - name: https
    number: 84
    protocol: HTTPS
  - name: grpc
    number: 85
    protocol: GRPC
  - name: h2
    number: 86
    protocol: HTTP2`;
  const calls: [string, Call][] = [];
  for (let port = 80; port < 87; port++) {
    for (const call of [
      { port, protocol: "http", tls: "plaintext", hostHeader: "foo" },
      { port, protocol: "http", tls: "tls", hostHeader: "foo" },
      { port, protocol: "http", tls: "tls", hostHeader: "foo", alpn: "http/1.1" },
      { port, protocol: "tcp", tls: "plaintext", hostHeader: "foo" },
      { port, protocol: "http2", tls: "tls", hostHeader: "foo" },
    ] satisfies Call[]) {
      calls.push([`${call.protocol}-${call.tls}-${port}${"alpn" in call ? `-${call.alpn}` : ""}`, call]);
    }
  }
  const isHttpPort = (p: number) => p === 80 || p === 85 || p === 86;
  // Istio `Call.IsHTTP`: HTTP or HTTP/2 in plaintext.
  const isHttp = (c: Call) =>
    (c.protocol === "http" || c.protocol === "http2") && (c.tls ?? "plaintext") === "plaintext";
  const se = (vip: boolean) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: se
  namespace: default
spec:
  hosts:
  - istio.io
${vip ? "  addresses: [1.2.3.4]\n" : ""}  location: MESH_EXTERNAL
  resolution: DNS${ports}`;
  for (const mode of ["REGISTRY_ONLY", "ALLOW_ANY"] as const) {
    const expected = mode === "REGISTRY_ONLY" ? "BlackHoleCluster" : "PassthroughCluster";
    it(`${mode} with VIP`, () => {
      const r = simulate(se(true), simSidecar(), { outboundTrafficPolicy: { mode } });
      for (const [name, call] of calls) {
        // For blackhole, Istio answers 502 from the block_all virtual host where it can: HTTP on an HTTP port.
        const want: Want =
          expected === "BlackHoleCluster" && isHttp(call) && isHttpPort(call.port)
            ? { virtualHostMatched: "block_all" }
            : { clusterMatched: expected };
        expectWalk(walk(r, call), want, `${mode} ${name}`);
      }
    });
    it(`${mode} without VIP`, () => {
      const r = simulate(se(false), simSidecar(), { outboundTrafficPolicy: { mode } });
      for (const [name, call] of calls) {
        let want: Want = { clusterMatched: expected };
        if (expected === "BlackHoleCluster" && isHttp(call) && (isHttpPort(call.port) || call.port === 81))
          want = { virtualHostMatched: "block_all" };
        // TCP without a VIP captures everything; so does auto, except HTTP routed on its header.
        if (call.port === 82 || (call.port === 81 && !isHttp(call))) want = {};
        expectWalk(walk(r, call), want, `${mode} ${name}`);
      }
    });
  }
});

describe(`TestLoop (${SIDECAR_SIM})`, () => {
  it("direct requests to the capture ports are blocked", () => {
    const r = simulate("", simSidecar());
    expectWalk(
      walk(r, { port: 15001, protocol: "tcp" }),
      { clusterMatched: "BlackHoleCluster" },
      "direct request to outbound port",
    );
    expectWalk(
      walk(r, { port: 15006, protocol: "tcp" }),
      { clusterMatched: "BlackHoleCluster" },
      "direct request to inbound port",
    );
  });
});

describe(`TestPeerAuthenticationPassthrough (${PEER_AUTHN_SIM})`, () => {
  const pa = (mode: string, port9000?: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  selector:
    matchLabels:
      app: foo
  mtls:
    mode: ${mode}
${port9000 !== undefined ? `  portLevelMtls:\n    9000:\n      mode: ${port9000}\n` : ""}---
`;
  const sePort8000 = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: se
  namespace: default
spec:
  hosts:
  - foo.bar
  endpoints:
  - address: 1.1.1.1
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - name: http
    number: 8000
    protocol: HTTP
---
`;
  // Istio's mkCall: HTTP inbound, ALPN `istio` on mTLS.
  const mk = (port: number, tls: "plaintext" | "mtls"): Call => ({
    port,
    protocol: "http",
    callMode: "inbound",
    tls,
    ...(tls === "mtls" ? { alpn: "istio" } : {}),
  });
  const pass: Want = { clusterMatched: "InboundPassthroughCluster" };
  const in8000: Want = { clusterMatched: "inbound|8000||" };
  const cases: { name: string; config: string; calls: [string, Call, Want][] }[] = [
    {
      name: "global disable",
      config: pa("DISABLE"),
      calls: [
        ["mtls", mk(8000, "mtls"), pass],
        ["plaintext", mk(8000, "plaintext"), pass],
      ],
    },
    {
      name: "global strict",
      config: pa("STRICT"),
      calls: [
        ["plaintext", mk(8000, "plaintext"), NO_FC],
        ["mtls", mk(8000, "mtls"), pass],
      ],
    },
    {
      name: "global permissive",
      config: pa("PERMISSIVE"),
      calls: [
        ["plaintext", mk(8000, "plaintext"), pass],
        ["mtls", mk(8000, "mtls"), pass],
      ],
    },
    {
      name: "global disable and port 9000 strict",
      config: pa("DISABLE", "STRICT"),
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), pass],
        ["mtls on port 8000", mk(8000, "mtls"), pass],
        ["plaintext port 9000", mk(9000, "plaintext"), NO_FC],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
    {
      name: "global disable and port 9000 strict not in service",
      config: pa("DISABLE", "STRICT") + sePort8000,
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), in8000],
        ["mtls on port 8000", mk(8000, "mtls"), PROTO_ERR],
        ["plaintext port 9000", mk(9000, "plaintext"), NO_FC],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
    {
      name: "global strict and port 9000 plaintext",
      config: pa("STRICT", "DISABLE"),
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), NO_FC],
        ["mtls on port 8000", mk(8000, "mtls"), pass],
        ["plaintext port 9000", mk(9000, "plaintext"), pass],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
    {
      name: "global strict and port 9000 plaintext not in service",
      config: pa("STRICT", "DISABLE") + sePort8000,
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), NO_FC],
        ["mtls on port 8000", mk(8000, "mtls"), in8000],
        ["plaintext port 9000", mk(9000, "plaintext"), pass],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
    {
      name: "global plaintext and port 9000 permissive",
      config: pa("DISABLE", "PERMISSIVE"),
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), pass],
        ["mtls on port 8000", mk(8000, "mtls"), pass],
        ["plaintext port 9000", mk(9000, "plaintext"), pass],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
    {
      name: "global plaintext and port 9000 permissive not in service",
      config: pa("DISABLE", "PERMISSIVE") + sePort8000,
      calls: [
        ["plaintext on port 8000", mk(8000, "plaintext"), in8000],
        ["mtls on port 8000", mk(8000, "mtls"), PROTO_ERR],
        ["plaintext port 9000", mk(9000, "plaintext"), pass],
        ["mtls port 9000", mk(9000, "mtls"), pass],
      ],
    },
  ];
  for (const tt of cases) {
    it(tt.name, () => {
      const r = simulate(tt.config, simSidecar({ app: "foo" }));
      for (const [name, call, want] of tt.calls) expectWalk(walk(r, call), want, `${tt.name}: ${name}`);
    });
  }
});

describe(`TestPeerAuthenticationWithSidecar, cases without a Sidecar ingress (${PEER_AUTHN_SIM})`, () => {
  const pa = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  selector:
    matchLabels:
      app: foo
  mtls:
    mode: STRICT
  portLevelMtls:
    9090:
      mode: DISABLE
---
`;
  const se = (ports: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: se
  namespace: default
spec:
  hosts:
  - foo.bar
  endpoints:
  - address: 1.1.1.1
    labels:
      app: foo
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
${ports}---
`;
  const instancePorts = se(
    "  - name: tls\n    number: 8080\n    protocol: TCP\n  - name: plaintext\n    number: 9090\n    protocol: TCP\n",
  );
  const instanceNoPorts = se("  - name: random\n    number: 5050\n    protocol: TCP\n");
  const mk = (port: number, tls: "plaintext" | "mtls"): Call => ({
    protocol: "tcp",
    port,
    callMode: "inbound",
    tls,
  });
  it("service, no sidecar", () => {
    const r = simulate(pa + instancePorts, simSidecar({ app: "foo" }));
    expectWalk(walk(r, mk(8080, "plaintext")), NO_FC, "plaintext on tls port");
    expectWalk(walk(r, mk(8080, "mtls")), { clusterMatched: "inbound|8080||" }, "tls on tls port");
    expectWalk(
      walk(r, mk(9090, "plaintext")),
      { clusterMatched: "inbound|9090||" },
      "plaintext on plaintext port",
    );
    expectWalk(walk(r, mk(9090, "mtls")), { clusterMatched: "inbound|9090||" }, "tls on plaintext port");
  });
  it("no service, no sidecar", () => {
    const r = simulate(pa + instanceNoPorts, simSidecar({ app: "foo" }));
    expectWalk(walk(r, mk(8080, "plaintext")), NO_FC, "plaintext on tls port");
    expectWalk(walk(r, mk(8080, "mtls")), { clusterMatched: "InboundPassthroughCluster" }, "tls on tls port");
    expectWalk(
      walk(r, mk(9090, "plaintext")),
      { clusterMatched: "InboundPassthroughCluster" },
      "plaintext on plaintext port",
    );
    expectWalk(
      walk(r, mk(9090, "mtls")),
      { clusterMatched: "InboundPassthroughCluster" },
      "tls on plaintext port",
    );
  });
});

describe(`TestSidecarRoutes, sidecar expectations (${SIDECAR_SIM})`, () => {
  const known = `apiVersion: v1
kind: Service
metadata:
  name: known
  namespace: default
spec:
  clusterIP: 2.0.0.0
  ports:
  - port: 80
    name: http
  - port: 8080
    name: http
---
apiVersion: v1
kind: Service
metadata:
  name: alt-known
  namespace: default
spec:
  clusterIP: 2.0.0.1
  ports:
  - port: 80
    name: http
  - port: 8080
    name: http
---
apiVersion: v1
kind: Service
metadata:
  name: not-default
  namespace: not-default
spec:
  clusterIP: 2.0.0.2
  ports:
  - port: 80
    name: http
  - port: 8080
    name: http
---
`;
  const TIME = {
    older: "2019-01-01T00:00:00Z",
    base: "2020-01-01T00:00:00Z",
    newer: "2021-01-01T00:00:00Z",
  } as const;
  const vs = (a: {
    ns: string;
    match: string;
    dest: string;
    port?: number;
    portMatch?: number;
    time?: string;
  }) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: "${a.ns}${a.match.replace("*", "wild")}${a.dest}"
  namespace: ${a.ns}
  creationTimestamp: "${a.time ?? TIME.base}"
spec:
  hosts:
  - "${a.match}"
  http:
  - route:
    - destination:
        host: ${a.dest}
${a.port !== undefined ? `        port:\n          number: ${a.port}\n` : ""}${a.portMatch !== undefined ? `    match:\n    - port: ${a.portMatch}\n` : ""}---
`;
  const sc = (ns: string, egress: string[]) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: "${ns}"
  namespace: "${ns}"
spec:
  egress:
  - hosts:
${egress.map((h) => `    - "${h}"`).join("\n")}
---
`;
  /** Route config by virtual host (first domain) → the clusters its routes send to (Istio's extraction). */
  const routes = (cfg: string, ns: string, routeName: string) => {
    const r = simulate(known + cfg, simSidecar({}, ns, "10.0.0.1"));
    const rc = r.routes.find((x) => x.name === routeName);
    const got: Record<string, string[] | null> = {};
    for (const vh of rc?.virtualHosts ?? []) {
      const d = vh.domains[0] as string;
      if (d === "*") continue;
      const clusters: string[] = [];
      for (const route of vh.routes)
        if (route.action.case === "route" && route.action.value.clusterSpecifier.case === "cluster")
          clusters.push(route.action.value.clusterSpecifier.value);
      got[d] = clusters.length > 0 ? clusters : null;
    }
    return got;
  };
  const cases: {
    name: string;
    cfg: string;
    ns: string;
    routeName: string;
    expected: Record<string, string[] | null>;
  }[] = [
    {
      name: "simple port 80",
      cfg: vs({
        ns: "default",
        match: "known.default.svc.cluster.local",
        dest: "alt-known.default.svc.cluster.local",
      }),
      ns: "default",
      routeName: "80",
      expected: { "known.default.svc.cluster.local": ["outbound|80||alt-known.default.svc.cluster.local"] },
    },
    {
      name: "simple port 8080",
      cfg: vs({
        ns: "default",
        match: "known.default.svc.cluster.local",
        dest: "alt-known.default.svc.cluster.local",
      }),
      ns: "default",
      routeName: "8080",
      expected: { "known.default.svc.cluster.local": ["outbound|8080||alt-known.default.svc.cluster.local"] },
    },
    {
      name: "unknown port 80",
      cfg: vs({
        ns: "default",
        match: "foo.default.svc.cluster.local",
        dest: "foo.default.svc.cluster.local",
      }),
      ns: "default",
      routeName: "80",
      expected: { "foo.default.svc.cluster.local": ["outbound|80||foo.default.svc.cluster.local"] },
    },
    {
      name: "unknown port 8080",
      cfg: vs({
        ns: "default",
        match: "foo.default.svc.cluster.local",
        dest: "foo.default.svc.cluster.local",
      }),
      ns: "default",
      routeName: "8080",
      expected: { "foo.default.svc.cluster.local": null },
    },
    {
      name: "producer rule port 80",
      cfg: vs({
        ns: "default",
        match: "known.default.svc.cluster.local",
        dest: "alt-known.default.svc.cluster.local",
      }),
      ns: "not-default",
      routeName: "80",
      expected: { "known.default.svc.cluster.local": ["outbound|80||alt-known.default.svc.cluster.local"] },
    },
    {
      name: "consumer rule port 8080",
      cfg: vs({
        ns: "not-default",
        match: "known.default.svc.cluster.local",
        dest: "alt-known.default.svc.cluster.local",
      }),
      ns: "not-default",
      routeName: "8080",
      expected: { "known.default.svc.cluster.local": ["outbound|8080||alt-known.default.svc.cluster.local"] },
    },
    {
      name: "arbitrary rule port 80",
      cfg: vs({
        ns: "arbitrary",
        match: "known.default.svc.cluster.local",
        dest: "alt-known.default.svc.cluster.local",
      }),
      ns: "not-default",
      routeName: "80",
      expected: { "known.default.svc.cluster.local": ["outbound|80||alt-known.default.svc.cluster.local"] },
    },
    {
      name: "multiple rules 80",
      cfg:
        vs({
          ns: "arbitrary",
          match: "known.default.svc.cluster.local",
          dest: "arbitrary.example.com",
          time: TIME.older,
        }) +
        vs({
          ns: "default",
          match: "known.default.svc.cluster.local",
          dest: "default.example.com",
          time: TIME.base,
        }) +
        vs({
          ns: "not-default",
          match: "known.default.svc.cluster.local",
          dest: "not-default.example.com",
          time: TIME.newer,
        }),
      ns: "not-default",
      routeName: "80",
      // Oldest wins.
      expected: { "known.default.svc.cluster.local": ["outbound|80||arbitrary.example.com"] },
    },
    {
      name: "wildcard random",
      cfg: vs({ ns: "default", match: "*.unknown.example.com", dest: "arbitrary.example.com" }),
      ns: "default",
      routeName: "80",
      expected: {
        "alt-known.default.svc.cluster.local": ["outbound|80||alt-known.default.svc.cluster.local"],
        "known.default.svc.cluster.local": ["outbound|80||known.default.svc.cluster.local"],
        "*.unknown.example.com": ["outbound|80||arbitrary.example.com"],
      },
    },
    {
      name: "wildcard match with sidecar",
      cfg:
        vs({ ns: "default", match: "*.cluster.local", dest: "arbitrary.example.com" }) +
        sc("default", ["*/*.cluster.local"]),
      ns: "default",
      routeName: "80",
      expected: {
        "alt-known.default.svc.cluster.local": ["outbound|80||arbitrary.example.com"],
        "known.default.svc.cluster.local": ["outbound|80||arbitrary.example.com"],
        "*.cluster.local": null,
      },
    },
    {
      name: "wildcard first then explicit",
      cfg:
        vs({ ns: "default", match: "*.cluster.local", dest: "wild.example.com", time: TIME.older }) +
        vs({
          ns: "default",
          match: "known.default.svc.cluster.local",
          dest: "explicit.example.com",
          time: TIME.newer,
        }),
      ns: "default",
      routeName: "80",
      expected: {
        "alt-known.default.svc.cluster.local": ["outbound|80||wild.example.com"],
        "known.default.svc.cluster.local": ["outbound|80||explicit.example.com"],
        "*.cluster.local": null,
      },
    },
  ];
  for (const tt of cases) {
    it(tt.name, () => {
      const got = routes(tt.cfg, tt.ns, tt.routeName);
      // Istio compares only the virtual hosts its table names (a missing one is `nil`).
      const picked = Object.fromEntries(Object.keys(tt.expected).map((k) => [k, got[k] ?? null]));
      expect(picked).toEqual(tt.expected);
    });
  }
});

describe(`TestHTTPGateway (${GATEWAY_SIM})`, () => {
  const httpServer = `port:
  number: 80
  name: http
  protocol: HTTP
hosts:
- "foo.bar"`;
  const simpleRoute = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
  namespace: default
spec:
  hosts:
  - "example.com"
  gateways:
  - gateway
  http:
  - match:
    - uri:
        prefix: /
    route:
    - destination:
        host: b
---
`;
  const redirect80 = `port:
  number: 80
  name: http
  protocol: HTTP
hosts:
- "example.com"
tls:
  httpsRedirect: true`;
  it("no virtual services", () => {
    const r = simulate(createGateway("", "", httpServer), simGateway());
    expectWalk(walk(r, { port: 80, hostHeader: "foo.bar", protocol: "http" }), {
      error: "no route matched",
      listenerMatched: "0.0.0.0_80",
      routeConfigMatched: "http.80",
      virtualHostMatched: "blackhole:80",
    });
    expectWalk(
      walk(r, { port: 81, hostHeader: "foo.bar", protocol: "http" }),
      { error: "no listener matched" },
      "undefined port",
    );
  });
  it("simple http and virtual service", () => {
    const r = simulate(
      `${createGateway("gateway", "", httpServer)}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
  namespace: default
spec:
  hosts:
  - "*"
  gateways:
  - gateway
  http:
  - match:
    - uri:
        exact: /productpage
    route:
    - destination:
        host: productpage
        port:
          number: 9080
`,
      simGateway(),
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "foo.bar", protocol: "http" }),
      {
        error: "no route matched",
        listenerMatched: "0.0.0.0_80",
        routeConfigMatched: "http.80",
        virtualHostMatched: "foo.bar:80",
      },
      "uri mismatch",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "bad.bar", protocol: "http" }),
      { error: "no virtual host matched", listenerMatched: "0.0.0.0_80", routeConfigMatched: "http.80" },
      "host mismatch",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "foo.bar", path: "/productpage", protocol: "http" }),
      {
        listenerMatched: "0.0.0.0_80",
        virtualHostMatched: "foo.bar:80",
        clusterMatched: "outbound|9080||productpage.default.svc.cluster.local",
      },
      "match",
    );
  });
  it("virtual service merging", () => {
    const vsFor = (n: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${n}
  namespace: default
spec:
  hosts:
  - "${n}.example.com"
  gateways:
  - gateway
  http:
  - match:
    - uri:
        prefix: /
    route:
    - destination:
        host: ${n}
        port:
          number: 80
---
`;
    const r = simulate(
      createGateway(
        "gateway",
        "",
        `port:\n  number: 80\n  name: http\n  protocol: HTTP\nhosts:\n- "*.example.com"`,
      ) +
        vsFor("a") +
        vsFor("b"),
      simGateway(),
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "a.example.com", protocol: "http" }),
      { clusterMatched: "outbound|80||a.default.svc.cluster.local" },
      "a",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "b.example.com", protocol: "http" }),
      { clusterMatched: "outbound|80||b.default.svc.cluster.local" },
      "b",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "c.example.com", protocol: "http" }),
      { error: "no virtual host matched" },
      "undefined hostname",
    );
  });
  const redirected: Want = {
    error: "tls required, sending 301",
    listenerMatched: "0.0.0.0_80",
    virtualHostMatched: "example.com:80",
    routeConfigMatched: "http.80",
    strict: true,
  };
  it("httpsRedirect without routes", () => {
    const r = simulate(createGateway("gateway", "", redirect80), simGateway());
    expectWalk(walk(r, { port: 80, hostHeader: "example.com", protocol: "http" }), redirected);
  });
  it("httpsRedirect with routes", () => {
    const r = simulate(createGateway("gateway", "", redirect80) + simpleRoute, simGateway());
    expectWalk(walk(r, { port: 80, hostHeader: "example.com", protocol: "http" }), redirected);
  });
  it("mixed httpsRedirect with routes", () => {
    const r = simulate(
      createGateway("gateway", "", redirect80) +
        createGateway(
          "gateway2",
          "",
          `port:\n  number: 80\n  name: http\n  protocol: HTTP\nhosts:\n- "example.com"`,
        ) +
        simpleRoute,
      simGateway(),
    );
    expectWalk(walk(r, { port: 80, hostHeader: "example.com", protocol: "http" }), redirected);
  });
  it("httpsRedirect on https", () => {
    const r = simulate(
      createGateway(
        "gateway",
        "",
        `port:\n  number: 443\n  name: https\n  protocol: HTTPS\nhosts:\n- "example.com"\ntls:\n  httpsRedirect: true\n  mode: SIMPLE\n  credentialName: test`,
      ) + simpleRoute,
      simGateway(),
    );
    // The walk ends where Istio's does: listener, route config, virtual host, cluster. We also
    // report the filter chain and route Envoy would use (Istio's harness leaves them unset there).
    const got = walk(r, { port: 443, hostHeader: "example.com", protocol: "http", tls: "tls" });
    expectWalk(got, {
      listenerMatched: "0.0.0.0_443",
      virtualHostMatched: "example.com:443",
      routeConfigMatched: "https.443.https.gateway.default",
      clusterMatched: "outbound|443||b.default.svc.cluster.local",
    });
    expect(got.downstreamTls).toEqual({ requireClientCertificate: false, certificate: "kubernetes://test" });
  });
});

describe(`TestGatewayConflicts (${GATEWAY_SIM})`, () => {
  const tcpServer = `port:\n  number: 80\n  name: tcp\n  protocol: TCP\nhosts:\n- "foo.bar"`;
  const httpServer = `port:\n  number: 80\n  name: http\n  protocol: HTTP\nhosts:\n- "foo.bar"`;
  it("duplicate tls virtual service", () => {
    const tlsVs = (n: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${n}
  namespace: default
spec:
  gateways:
  - istio-system/ingressgateway
  hosts:
  - mysite.example.com
  tls:
  - match:
    - port: 443
      sniHosts:
      - mysite.example.com
    route:
    - destination:
        host: mysite.default.svc.cluster.local
        port:
          number: 443
---
`;
    const r = simulate(
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ingressgateway
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - hosts:
    - '*.example.com'
    port:
      name: https
      number: 443
      protocol: HTTPS
    tls:
      mode: PASSTHROUGH
---
${tlsVs("vs1")}${tlsVs("vs2")}`,
      simGateway(),
    );
    expectWalk(walk(r, { port: 443, protocol: "http", tls: "tls", hostHeader: "mysite.example.com" }), {
      listenerMatched: "0.0.0.0_443",
      clusterMatched: "outbound|443||mysite.default.svc.cluster.local",
    });
  });
  it("multiple protocols on a port - tcp first", () => {
    const r = simulate(
      createGateway("alpha", "", tcpServer) + createGateway("beta", "", httpServer),
      simGateway(),
    );
    // TCP takes precedence; without TCP routes there is no listener.
    expectWalk(walk(r, { port: 80, protocol: "tcp" }), { error: "no listener matched" });
  });
  it("multiple protocols on a port - http first", () => {
    const r = simulate(
      createGateway("beta", "", tcpServer) + createGateway("alpha", "", httpServer),
      simGateway(),
    );
    expectWalk(walk(r, { port: 80, hostHeader: "foo.bar", protocol: "http" }), {
      error: "no route matched",
      listenerMatched: "0.0.0.0_80",
      routeConfigMatched: "http.80",
      virtualHostMatched: "blackhole:80",
    });
  });
  it("multiple wildcards with virtual service disambiguator", () => {
    const server = (ns: string) =>
      `hosts:\n  - ${ns}/*.example.com\nport:\n  name: http\n  number: 80\n  protocol: HTTP`;
    const vsIn = (ns: string, gw: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: default
  namespace: ${ns}
spec:
  hosts:
  - "${ns}.example.com"
  gateways:
  - default/${gw}
  http:
  - route:
    - destination:
        host: echo
---
`;
    const r = simulate(
      createGateway("alpha", "", server("ns-1")) +
        createGateway("beta", "", server("ns-2")) +
        vsIn("ns-1", "alpha") +
        vsIn("ns-2", "beta"),
      simGateway(),
    );
    expectWalk(walk(r, { port: 80, hostHeader: "ns-1.example.com", protocol: "http" }), {
      listenerMatched: "0.0.0.0_80",
      routeConfigMatched: "http.80",
      clusterMatched: "outbound|80||echo.ns-1.svc.cluster.local",
    });
    expectWalk(walk(r, { port: 80, hostHeader: "ns-2.example.com", protocol: "http" }), {
      listenerMatched: "0.0.0.0_80",
      routeConfigMatched: "http.80",
      clusterMatched: "outbound|80||echo.ns-2.svc.cluster.local",
    });
  });
  it("multiple virtual services that should become separate vhosts", () => {
    const r = simulate(
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public-gw
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
    - port:
        number: 80
        name: http
        protocol: HTTP
      hosts:
        - foo.example.com
        - bar.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: foobar-vs
  namespace: default
  creationTimestamp: 2010-01-01T00:00:00Z
spec:
  hosts:
    - foo.example.com
    - bar.example.com
  gateways:
    - istio-system/public-gw
  http:
    - name: foobar
      match:
        - uri:
            prefix: /1
        - uri:
            prefix: /2
        - uri:
            prefix: /3
      route:
        - destination:
            host: echo-foobar
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: foo-vs
  namespace: default
  creationTimestamp: 2015-01-01T00:00:00Z
spec:
  gateways:
    - istio-system/public-gw
  hosts:
    - foo.example.com
  http:
    - name: foo
      match:
        - uri:
            prefix: /foo
      route:
        - destination:
            host: echo-foo
            port:
              number: 80
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bar-vs
  namespace: default
  creationTimestamp: 2020-01-01T00:00:00Z
spec:
  gateways:
    - istio-system/public-gw
  hosts:
    - bar.example.com
  http:
    - name: bar
      match:
        - uri:
            prefix: /bar
      route:
        - destination:
            host: echo-bar
            port:
              number: 80
`,
      simGateway(),
    );
    const base = { listenerMatched: "0.0.0.0_80", routeConfigMatched: "http.80" };
    expectWalk(
      walk(r, { port: 80, hostHeader: "foo.example.com", protocol: "http", path: "/1" }),
      { ...base, clusterMatched: "outbound|80||echo-foobar.default.svc.cluster.local" },
      "foobar",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "foo.example.com", protocol: "http", path: "/foo" }),
      { ...base, clusterMatched: "outbound|80||echo-foo.default.svc.cluster.local" },
      "foo",
    );
    expectWalk(
      walk(r, { port: 80, hostHeader: "bar.example.com", protocol: "http", path: "/bar" }),
      { ...base, clusterMatched: "outbound|80||echo-bar.default.svc.cluster.local" },
      "bar",
    );
  });
});
