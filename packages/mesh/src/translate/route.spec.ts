import { create } from "@bufbuild/protobuf";
import {
  type RetryPolicy,
  RetryPolicySchema,
  RouteSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { PushContext } from "../push/push-context.js";
import { snapshotOf } from "../testing/config.js";
import { GRPC_ECHO_CLIENT_ID, GRPC_ECHO_SUBSETS, GRPC_ECHO_YAML } from "../testing/grpc-echo.js";
import { xdsJson } from "../testing/xds-json.js";
import { ENVOY_CAPABILITIES, type ProxyCapabilities, proxylessCapabilities } from "./capabilities.js";
import {
  buildVirtualServiceRoutes,
  defaultOutboundRoute,
  translateRetryPolicy,
  translateRouteMatch,
} from "./route.js";
import type { TranslationWarning } from "./warnings.js";

// Expected values come from Istio's route builder (istio/istio pilot/pkg/networking/core/route/
// route.go, route/retry/retry.go) and the proxyless resources derived from it for the grpc-echo
// sample (docs/reference/istio-conventions.md §1.4).

const grpcJs = proxylessCapabilities("grpc-js");
const client = parseProxy({ id: GRPC_ECHO_CLIENT_ID, metadata: { GENERATOR: "grpc" } });

function routesFor(http: string, caps: ProxyCapabilities = grpcJs, port = 7070, extra = "") {
  const push = PushContext.create({
    snapshot: snapshotOf(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + extra + vs(http)),
  });
  const warnings: TranslationWarning[] = [];
  const meshVs = push.virtualServices()[0];
  if (meshVs === undefined) throw new Error("no VirtualService in test config");
  const routes = buildVirtualServiceRoutes(meshVs, {
    push,
    proxy: client,
    listenPort: port,
    capabilities: caps,
    warn: (w) => warnings.push(w),
  });
  return { routes: routes.map((r) => xdsJson(RouteSchema, r) as Record<string, unknown>), warnings };
}

function nth<T>(list: readonly T[], i: number): T {
  const v = list[i];
  if (v === undefined) throw new Error(`no element ${i} in ${JSON.stringify(list)}`);
  return v;
}

const vs = (http: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo.echo-grpc.svc.cluster.local]
  http:
${http}
`;

const DEFAULT_RETRY = {
  retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
  num_retries: 2,
  retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
  host_selection_retry_max_attempts: "5",
};
const VS_METADATA = {
  filter_metadata: {
    istio: { config: "/apis/networking.istio.io/v1/namespaces/echo-grpc/virtual-service/echo" },
  },
};

describe("translate/route: Istio's route builder", () => {
  it("builds the default route as BuildDefaultHTTPOutboundRoute does, max_grpc_timeout even for proxyless", () => {
    const route = defaultOutboundRoute(
      "outbound|7070||echo.echo-grpc.svc.cluster.local",
      "echo.echo-grpc.svc.cluster.local:7070/*",
    );
    expect(xdsJson(RouteSchema, route)).toEqual({
      name: "default",
      match: { prefix: "/" },
      route: {
        cluster: "outbound|7070||echo.echo-grpc.svc.cluster.local",
        timeout: "0s",
        max_grpc_timeout: "0s",
        retry_policy: DEFAULT_RETRY,
      },
      decorator: { operation: "echo.echo-grpc.svc.cluster.local:7070/*" },
    });
  });

  it("splits 20/80 between subsets with max_stream_duration for proxyless (grpcecho_test.go TestTrafficShifting)", () => {
    const { routes, warnings } = routesFor(`
    - route:
        - { destination: { host: echo.echo-grpc.svc.cluster.local, subset: v1 }, weight: 20 }
        - { destination: { host: echo.echo-grpc.svc.cluster.local, subset: v2 }, weight: 80 }`);
    expect(warnings).toEqual([]);
    expect(routes).toEqual([
      {
        match: { prefix: "/" },
        route: {
          weighted_clusters: {
            clusters: [
              { name: "outbound|7070|v1|echo.echo-grpc.svc.cluster.local", weight: 20 },
              { name: "outbound|7070|v2|echo.echo-grpc.svc.cluster.local", weight: 80 },
            ],
          },
          timeout: "0s",
          max_stream_duration: { max_stream_duration: "0s" },
          retry_policy: DEFAULT_RETRY,
        },
        metadata: VS_METADATA,
        decorator: { operation: "echo:7070/*" },
      },
    ]);
  });

  it("matches a header and delays by the fault's fixed delay at 100% (virtual-service-ratings-test-delay.yaml)", () => {
    const { routes } = routesFor(`
    - match: [{ headers: { end-user: { exact: jason } } }]
      fault: { delay: { percentage: { value: 100.0 }, fixedDelay: 7s } }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local, subset: v1 } }]
    - route: [{ destination: { host: echo.echo-grpc.svc.cluster.local, subset: v2 } }]`);
    expect(routes).toHaveLength(2);
    expect(routes[0]).toMatchObject({
      match: {
        prefix: "/",
        case_sensitive: true,
        // Istio writes string_match; gRPC C-core 1.51 NACKs it in header matchers (gRFC A63 came
        // later), so proxyless clients get the deprecated exact_match every gRPC version reads.
        headers: [{ name: "end-user", exact_match: "jason" }],
      },
      route: {
        cluster: "outbound|7070|v1|echo.echo-grpc.svc.cluster.local",
        timeout: "0s",
        max_stream_duration: { max_stream_duration: "0s" },
      },
      decorator: { operation: "echo.echo-grpc.svc.cluster.local:7070/*" },
      typed_per_filter_config: {
        "envoy.filters.http.fault": {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
          delay: { fixed_delay: "7s", percentage: { numerator: 1000000, denominator: "MILLION" } },
        },
      },
    });
    expect(routes[1]).toMatchObject({
      match: { prefix: "/" },
      route: { cluster: "outbound|7070|v2|echo.echo-grpc.svc.cluster.local" },
    });
  });

  it("aborts with a gRPC status by number and an HTTP status as is (TranslateFault)", () => {
    const { routes } = routesFor(`
    - match: [{ uri: { exact: /echo.Echo/Fail } }]
      fault: { abort: { percentage: { value: 50 }, grpcStatus: UNAVAILABLE } }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]
    - fault: { abort: { httpStatus: 500 } }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]`);
    const fault = (i: number) =>
      (nth(routes, i).typed_per_filter_config as Record<string, unknown>)["envoy.filters.http.fault"];
    expect(fault(0)).toMatchObject({
      abort: { grpc_status: 14, percentage: { numerator: 500000, denominator: "MILLION" } },
    });
    expect(fault(1)).toMatchObject({ abort: { http_status: 500 } });
    // A gRPC method is matched as the exact path /package.Service/Method.
    expect(nth(routes, 0).match).toEqual({ path: "/echo.Echo/Fail", case_sensitive: true });
  });

  it("sends a VirtualService timeout as max_stream_duration to gRPC and as max_grpc_timeout to Envoy (setTimeout)", () => {
    const http = `
    - timeout: 1.5s
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]`;
    expect(nth(routesFor(http).routes, 0).route).toMatchObject({
      timeout: "1.500s",
      max_stream_duration: { max_stream_duration: "1.500s" },
    });
    const envoy = nth(routesFor(http, ENVOY_CAPABILITIES).routes, 0).route as Record<string, unknown>;
    expect(envoy).toMatchObject({ timeout: "1.500s", max_grpc_timeout: "1.500s" });
    expect(envoy.max_stream_duration).toBeUndefined();
  });

  it("leaves out for gRPC what it would NACK, with a warning, and keeps it for Envoy", () => {
    const http = `
    - match: [{ uri: { prefix: /old } }]
      redirect: { uri: /new }
    - match: [{ queryParams: { v: { exact: "1" } } }]
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local, subset: v1 } }]
    - corsPolicy: { allowOrigins: [{ exact: "https://example.com" }], allowMethods: [GET, POST], maxAge: 24h }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]`;
    const grpc = routesFor(http);
    // The redirect route keeps its place (requests to /old must not fall through) but fails them.
    expect(grpc.routes.map((r) => (r.route as { cluster?: string } | undefined)?.cluster)).toEqual([
      "BlackHoleCluster",
      "outbound|7070||echo.echo-grpc.svc.cluster.local",
    ]);
    expect(nth(grpc.routes, 1).typed_per_filter_config).toBeUndefined();
    expect(grpc.warnings.map((w) => [w.code, w.path, w.client])).toEqual([
      ["UNSUPPORTED_BY_CLIENT", "spec.http[0].redirect", "grpc-js"],
      ["UNSUPPORTED_BY_CLIENT", "spec.http[1].match.queryParams", "grpc-js"],
      ["UNSUPPORTED_BY_CLIENT", "spec.http[2].corsPolicy", "grpc-js"],
    ]);

    const envoy = routesFor(http, ENVOY_CAPABILITIES);
    expect(envoy.warnings).toEqual([]);
    expect(envoy.routes[0]).toMatchObject({ redirect: { path_redirect: "/new" } });
    expect(nth(envoy.routes, 1).match).toMatchObject({
      query_parameters: [{ name: "v", string_match: { exact: "1" } }],
    });
    expect(nth(envoy.routes, 2).typed_per_filter_config).toMatchObject({
      "envoy.filters.http.cors": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        allow_origin_string_match: [{ exact: "https://example.com" }],
        allow_methods: "GET,POST",
        max_age: "86400",
        forward_not_matching_preflights: true,
        filter_enabled: { default_value: { numerator: 100 } },
      },
    });
  });

  it("orders header matches by name before :method and :authority, inverts withoutHeaders (TranslateRouteMatch)", () => {
    const match = translateRouteMatch({
      headers: { "x-b": { prefix: "b" }, "x-a": { regex: "*" } },
      withoutHeaders: { "x-c": { exact: "c" } },
      method: { exact: "GET" },
      ignoreUriCase: true,
      uri: { regex: "/api/.*" },
    });
    expect(xdsJson(RouteSchema, create(RouteSchema, { match }))).toMatchObject({
      match: {
        safe_regex: { regex: "/api/.*" },
        case_sensitive: false,
        headers: [
          { name: "x-a", present_match: true },
          { name: "x-b", string_match: { prefix: "b" } },
          {
            name: "x-c",
            string_match: { exact: "c" },
            invert_match: true,
            treat_missing_header_as_empty: true,
          },
          { name: ":method", string_match: { exact: "GET" } },
        ],
      },
    });
  });

  it("skips matches for other ports, other source labels and other source namespaces (sourceMatchHTTP)", () => {
    const { routes } = routesFor(`
    - match:
        - { port: 80, uri: { prefix: /p80 } }
        - { sourceLabels: { app: other }, uri: { prefix: /other } }
        - { sourceNamespace: default, uri: { prefix: /ns } }
        - { sourceLabels: { app: client }, uri: { prefix: /mine } }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]`);
    expect(routes.map((r) => (r.match as { prefix?: string }).prefix)).toEqual(["/mine"]);
  });

  it("hashes on a header for gRPC and leaves cookie hashing out with a warning (consistentHashToHashPolicy, gRFC A42)", () => {
    const dr = (key: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hash, namespace: echo-grpc }
spec:
  host: echo.echo-grpc.svc.cluster.local
  trafficPolicy: { loadBalancer: { consistentHash: { ${key} } } }
---`;
    const http = `
    - route: [{ destination: { host: echo.echo-grpc.svc.cluster.local } }]`;
    const header = routesFor(http, grpcJs, 7070, dr("httpHeaderName: x-user"));
    expect(nth(header.routes, 0).route).toMatchObject({
      hash_policy: [{ header: { header_name: "x-user" } }],
    });
    // With consistent hashing, retries stay on the same host: no previous_hosts predicate.
    expect(
      (nth(header.routes, 0).route as { retry_policy: Record<string, unknown> }).retry_policy
        .retry_host_predicate,
    ).toBeUndefined();
    const cookie = routesFor(http, grpcJs, 7070, dr("httpCookie: { name: session, ttl: 0s }"));
    expect((nth(cookie.routes, 0).route as Record<string, unknown>).hash_policy).toBeUndefined();
    expect(cookie.warnings.map((w) => w.code)).toEqual(["UNSUPPORTED_BY_CLIENT"]);
  });

  it("mirrors with a percentage, rewrites and manipulates headers for Envoy", () => {
    const { routes } = routesFor(
      `
    - rewrite: { uri: /v2, authority: new.example.com }
      headers: { request: { set: { x-b: "2", x-a: "1" }, add: { x-c: "3" }, remove: [x-d] }, response: { remove: [server] } }
      mirror: { host: echo.echo-grpc.svc.cluster.local, subset: v2 }
      mirrorPercentage: { value: 25.5 }
      route: [{ destination: { host: echo.echo-grpc.svc.cluster.local, subset: v1 } }]`,
      ENVOY_CAPABILITIES,
      80,
    );
    expect(routes[0]).toMatchObject({
      request_headers_to_add: [
        { header: { key: "x-a", value: "1" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
        { header: { key: "x-b", value: "2" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
        { header: { key: "x-c", value: "3" } },
      ],
      request_headers_to_remove: ["x-d"],
      response_headers_to_remove: ["server"],
      route: {
        cluster: "outbound|80|v1|echo.echo-grpc.svc.cluster.local",
        prefix_rewrite: "/v2",
        host_rewrite_literal: "new.example.com",
        request_mirror_policies: [
          {
            cluster: "outbound|80|v2|echo.echo-grpc.svc.cluster.local",
            runtime_fraction: { default_value: { numerator: 255000, denominator: "MILLION" } },
            trace_sampled: false,
          },
        ],
      },
    });
  });
});

describe("translate/route: retries (retry.ConvertPolicy)", () => {
  it("turns status codes in retryOn into retriable_status_codes and adds the condition", () => {
    const p = translateRetryPolicy(
      { attempts: 3, retryOn: "gateway-error, 503,connect-failure", perTryTimeout: "2s" },
      false,
    );
    expect(xdsJson(RetryPolicySchema, p as RetryPolicy)).toEqual({
      retry_on: "gateway-error,connect-failure,retriable-status-codes",
      retriable_status_codes: [503],
      num_retries: 3,
      per_try_timeout: "2s",
      retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
      host_selection_retry_max_attempts: "5",
    });
  });

  it("disables retries with attempts 0 and honours retryIgnorePreviousHosts", () => {
    expect(translateRetryPolicy({ attempts: 0 }, false)).toBeUndefined();
    expect(
      translateRetryPolicy({ attempts: 1, retryIgnorePreviousHosts: false }, false)?.retryHostPredicate,
    ).toEqual([]);
    expect(translateRetryPolicy(undefined, true)?.retryHostPredicate).toEqual([]);
  });
});
