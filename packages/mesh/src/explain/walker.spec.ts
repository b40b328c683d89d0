import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { FilterChainSchema } from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { RBAC_Action, RBACSchema } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import {
  HeaderMatcherSchema,
  RouteMatchSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { describe, expect, it } from "vitest";
import { matchHeader, matchString } from "./matchers.js";
import { evaluateRbac } from "./rbac.js";
import { matchFilterChain, matchVirtualHost, routeMatches, walk } from "./walker.js";

// The walker is the oracle of the generator's tests, so it is tested on hand-written xDS against
// Envoy's documented semantics (envoyproxy/envoy api/envoy/config/route/v3/route_components.proto
// `VirtualHost.domains`, `RouteMatch`, `HeaderMatcher`; listener_components.proto
// `FilterChainMatch`; rbac.proto), sharing nothing with the generator.

const rc = (hosts: Record<string, string[]>, ignorePort = false) =>
  create(RouteConfigurationSchema, {
    name: "r",
    ignorePortInHostMatching: ignorePort,
    virtualHosts: Object.entries(hosts).map(([name, domains]) => ({ name, domains })),
  });

describe("virtual host selection (VirtualHost.domains)", () => {
  const r = rc({
    exact: ["foo.example.com"],
    suffixLong: ["*.bar.example.com"],
    suffix: ["*.example.com"],
    prefix: ["foo.*"],
    any: ["*"],
  });
  it("exact, then the longest suffix wildcard, then prefix wildcard, then *", () => {
    expect(matchVirtualHost(r, "foo.example.com")?.name).toBe("exact");
    expect(matchVirtualHost(r, "FOO.Example.com")?.name).toBe("exact");
    expect(matchVirtualHost(r, "a.bar.example.com")?.name).toBe("suffixLong");
    expect(matchVirtualHost(r, "a.example.com")?.name).toBe("suffix");
    expect(matchVirtualHost(r, "foo.other")?.name).toBe("prefix");
    expect(matchVirtualHost(r, "nothing")?.name).toBe("any");
  });
  it("a wildcard needs at least one character (`*.example.com` does not match `.example.com`)", () => {
    expect(matchVirtualHost(rc({ s: ["*.example.com"] }), ".example.com")).toBeUndefined();
  });
  it("the port is part of the host unless ignore_port_in_host_matching", () => {
    expect(matchVirtualHost(rc({ a: ["a.com"] }), "a.com:80")).toBeUndefined();
    expect(matchVirtualHost(rc({ a: ["a.com"] }, true), "a.com:80")?.name).toBe("a");
  });
});

describe("route matching (RouteMatch)", () => {
  const m = (x: Parameters<typeof create<typeof RouteMatchSchema>>[1]) => create(RouteMatchSchema, x);
  const h = (o: Record<string, string>) => new Map(Object.entries(o));
  it("prefix, exact path, full-match regex, case_sensitive", () => {
    expect(routeMatches(m({ pathSpecifier: { case: "prefix", value: "/api" } }), "/api/v1?x=1", h({}))).toBe(
      true,
    );
    expect(routeMatches(m({ pathSpecifier: { case: "path", value: "/api" } }), "/api/v1", h({}))).toBe(false);
    expect(
      routeMatches(m({ pathSpecifier: { case: "safeRegex", value: { regex: "/a.c" } } }), "/abcd", h({})),
    ).toBe(false);
    expect(
      routeMatches(m({ pathSpecifier: { case: "safeRegex", value: { regex: "/a.c" } } }), "/abc", h({})),
    ).toBe(true);
    expect(
      routeMatches(
        m({ pathSpecifier: { case: "prefix", value: "/API" }, caseSensitive: false }),
        "/api",
        h({}),
      ),
    ).toBe(true);
  });
  it("headers and query parameters must all match", () => {
    const match = m({
      pathSpecifier: { case: "prefix", value: "/" },
      headers: [
        {
          name: "end-user",
          headerMatchSpecifier: {
            case: "stringMatch",
            value: { matchPattern: { case: "exact", value: "jason" } },
          },
        },
      ],
      queryParameters: [{ name: "v", queryParameterMatchSpecifier: { case: "presentMatch", value: true } }],
    });
    expect(routeMatches(match, "/?v=1", h({ "end-user": "jason" }))).toBe(true);
    expect(routeMatches(match, "/", h({ "end-user": "jason" }))).toBe(false);
    expect(routeMatches(match, "/?v=1", h({ "end-user": "bob" }))).toBe(false);
  });
  it("a missing header matches only an absence check (header_utility.cc)", () => {
    const inverted = create(HeaderMatcherSchema, {
      name: "x",
      invertMatch: true,
      headerMatchSpecifier: { case: "stringMatch", value: { matchPattern: { case: "exact", value: "a" } } },
    });
    expect(matchHeader(inverted, h({}))).toBe(false);
    expect(matchHeader(inverted, h({ x: "b" }))).toBe(true);
    const absent = create(HeaderMatcherSchema, {
      name: "x",
      headerMatchSpecifier: { case: "presentMatch", value: false },
    });
    expect(matchHeader(absent, h({}))).toBe(true);
    const treatEmpty = create(HeaderMatcherSchema, {
      name: "x",
      treatMissingHeaderAsEmpty: true,
      headerMatchSpecifier: { case: "stringMatch", value: { matchPattern: { case: "exact", value: "" } } },
    });
    expect(matchHeader(treatEmpty, h({}))).toBe(true);
  });
  it("string matchers: ignore_case, prefix, suffix, contains, full-match regex", () => {
    expect(
      matchString({ matchPattern: { case: "exact", value: "AbC" }, ignoreCase: true } as never, "abc"),
    ).toBe(true);
    expect(
      matchString(
        { matchPattern: { case: "safeRegex", value: { regex: "a+" } }, ignoreCase: false } as never,
        "aab",
      ),
    ).toBe(false);
    expect(
      matchString({ matchPattern: { case: "contains", value: "b" }, ignoreCase: false } as never, "abc"),
    ).toBe(true);
  });
});

describe("filter chain selection (FilterChainMatch sieve)", () => {
  const l = (
    chains: MessageInitShape<typeof FilterChainSchema>[],
    dflt?: MessageInitShape<typeof FilterChainSchema>,
  ) =>
    create(ListenerSchema, {
      name: "l",
      filterChains: chains.map((c) => create(FilterChainSchema, c)),
      ...(dflt ? { defaultFilterChain: create(FilterChainSchema, dflt) } : {}),
    });
  const call = { address: "10.0.0.1", port: 80, sni: "", alpn: "", tls: "plaintext" } as const;
  it("a criterion set on some chains eliminates the others, before later criteria are looked at", () => {
    // Destination port comes first: the port-specific chain wins even though the other chain's ALPN would match.
    const listener = l([
      { name: "port", filterChainMatch: { destinationPort: 80, applicationProtocols: ["h2"] } as never },
      { name: "alpn", filterChainMatch: { applicationProtocols: ["http/1.1"] } as never },
    ]);
    expect(matchFilterChain(listener, { ...call, alpn: "http/1.1" }, "raw_buffer")).toEqual({
      error: "no filter chains matched",
    });
    expect(matchFilterChain(listener, { ...call, port: 81, alpn: "http/1.1" }, "raw_buffer")).toMatchObject({
      chain: { name: "alpn" },
    });
  });
  it("the most specific destination prefix wins; exact server names before wildcards", () => {
    const byIp = l([
      {
        name: "wide",
        filterChainMatch: { prefixRanges: [{ addressPrefix: "10.0.0.0", prefixLen: 8 }] } as never,
      },
      {
        name: "narrow",
        filterChainMatch: { prefixRanges: [{ addressPrefix: "10.0.0.0", prefixLen: 24 }] } as never,
      },
    ]);
    expect(matchFilterChain(byIp, call, "raw_buffer")).toMatchObject({ chain: { name: "narrow" } });
    const bySni = l([
      { name: "wild", filterChainMatch: { serverNames: ["*.example.com"] } as never },
      { name: "exact", filterChainMatch: { serverNames: ["a.example.com"] } as never },
    ]);
    expect(matchFilterChain(bySni, { ...call, sni: "a.example.com" }, "tls")).toMatchObject({
      chain: { name: "exact" },
    });
    expect(matchFilterChain(bySni, { ...call, sni: "b.example.com" }, "tls")).toMatchObject({
      chain: { name: "wild" },
    });
  });
  it("no match falls back to the default chain; a tie is an error", () => {
    const tls = l([{ name: "tls", filterChainMatch: { transportProtocol: "tls" } as never }], {
      name: "default",
    });
    expect(matchFilterChain(tls, call, "raw_buffer")).toMatchObject({
      chain: { name: "default" },
      index: -1,
    });
    const tie = l([{ name: "a" }, { name: "b" }]);
    expect(matchFilterChain(tie, call, "raw_buffer")).toEqual({ error: "multiple filter chains matched" });
  });
});

describe("RBAC (rbac.proto)", () => {
  const rules = (action: RBAC_Action) =>
    create(RBACSchema, {
      action,
      policies: {
        "b-get": {
          permissions: [
            {
              rule: {
                case: "header",
                value: {
                  name: ":method",
                  headerMatchSpecifier: {
                    case: "stringMatch",
                    value: { matchPattern: { case: "exact", value: "GET" } },
                  },
                },
              },
            },
          ],
          principals: [
            {
              identifier: {
                case: "authenticated",
                value: { principalName: { matchPattern: { case: "exact", value: "spiffe://td/ns/a/sa/x" } } },
              },
            },
          ],
        },
        "a-port": {
          permissions: [{ rule: { case: "destinationPort", value: 9090 } }],
          principals: [{ identifier: { case: "any", value: true } }],
        },
      },
    });
  const get = {
    headers: new Map([[":method", "GET"]]),
    principal: "spiffe://td/ns/a/sa/x",
    destinationPort: 80,
  };
  it("ALLOW admits what a policy matches, names the first matching policy by name", () => {
    expect(evaluateRbac(rules(RBAC_Action.ALLOW), get)).toEqual({
      allowed: true,
      action: "ALLOW",
      matchedPolicy: "b-get",
    });
    expect(evaluateRbac(rules(RBAC_Action.ALLOW), { ...get, destinationPort: 9090 })).toEqual({
      allowed: true,
      action: "ALLOW",
      matchedPolicy: "a-port",
    });
    expect(evaluateRbac(rules(RBAC_Action.ALLOW), { ...get, principal: undefined } as never)).toEqual({
      allowed: false,
      action: "ALLOW",
    });
  });
  it("DENY refuses what a policy matches; an unauthenticated peer never matches `authenticated`", () => {
    expect(evaluateRbac(rules(RBAC_Action.DENY), get)).toMatchObject({
      allowed: false,
      matchedPolicy: "b-get",
    });
    expect(evaluateRbac(rules(RBAC_Action.DENY), { headers: get.headers, destinationPort: 80 })).toEqual({
      allowed: true,
      action: "DENY",
    });
  });
});

describe("walk", () => {
  const hcm = create(HttpConnectionManagerSchema, {
    statPrefix: "x",
    routeSpecifier: {
      case: "routeConfig",
      value: {
        name: "inline",
        virtualHosts: [
          {
            name: "vh",
            domains: ["*"],
            routes: [
              {
                name: "weighted",
                match: { pathSpecifier: { case: "prefix", value: "/w" } },
                action: {
                  case: "route",
                  value: {
                    clusterSpecifier: {
                      case: "weightedClusters",
                      value: {
                        clusters: [
                          { name: "a", weight: 90 },
                          { name: "b", weight: 10 },
                        ],
                      },
                    },
                  },
                },
              },
              {
                name: "direct",
                match: { pathSpecifier: { case: "prefix", value: "/d" } },
                action: { case: "directResponse", value: { status: 418 } },
              },
              {
                name: "missing",
                match: { pathSpecifier: { case: "prefix", value: "/" } },
                action: { case: "route", value: { clusterSpecifier: { case: "cluster", value: "nowhere" } } },
              },
            ],
          },
        ],
      },
    },
  });
  const resources = {
    listeners: [
      create(ListenerSchema, {
        name: "0.0.0.0_80",
        address: {
          address: {
            case: "socketAddress",
            value: { address: "0.0.0.0", portSpecifier: { case: "portValue", value: 80 } },
          },
        },
        filterChains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                configType: { case: "typedConfig", value: anyPack(HttpConnectionManagerSchema, hcm) },
              },
            ],
          },
        ],
      }),
    ],
    routes: [],
    clusters: [{ name: "a" }, { name: "b" }] as never,
    endpoints: [],
  };
  it("first matching route in order; weighted clusters; direct responses; missing clusters", () => {
    expect(walk(resources, { port: 80, path: "/w" }).weightedClusters).toEqual([
      { cluster: "a", weight: 90 },
      { cluster: "b", weight: 10 },
    ]);
    expect(walk(resources, { port: 80, path: "/d" }).directResponse).toEqual({ status: 418 });
    expect(walk(resources, { port: 80, path: "/x" })).toMatchObject({
      routeMatched: "missing",
      error: "cluster not found",
    });
    expect(walk(resources, { port: 81 }).error).toBe("no listener matched");
    expect(walk(resources, { port: 80, protocol: "tcp" }).error).toBe("protocol error");
  });
});
