// Cases come from the protoc-gen-validate annotations of Envoy's own protos (envoyproxy/envoy,
// api/envoy/..., the data-plane-api commit @meshlet/api is generated from); each test names the
// file and field. The expectations are written from those annotations, not from this validator.
import { create, getOption, hasOption, type Registry } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { registry as apiRegistry } from "@meshlet/api";
import type { Cluster_LbPolicy } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { AddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { HealthCheckSchema } from "@meshlet/api/envoy/config/core/v3/health_check_pb";
import { UpstreamHttpProtocolOptionsSchema } from "@meshlet/api/envoy/config/core/v3/protocol_pb";
import { HeaderMatcherSchema } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { rules as rulesOption } from "@meshlet/api/validate/validate_pb";
import { describe, expect, it } from "vitest";
import { LinearCache } from "../cache/linear-cache.js";
import { ResourceValidationError } from "../errors.js";
import { ResourcePool } from "../resource-pool.js";
import * as resources from "../resources/index.js";
import { Snapshot, type SnapshotInput } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { checkMessage } from "./field-rules.js";
import { compileRe2 } from "./re2.js";

/** The violations Snapshot.create reports for an input (a fresh pool: nothing cached). */
function violations(input: SnapshotInput, registry?: Registry) {
  try {
    Snapshot.create(input, { pool: new ResourcePool(), ...(registry ? { registry } : {}) });
  } catch (err) {
    if (err instanceof ResourceValidationError) return err.violations.map((v) => `${v.path} ${v.rule}`);
    throw err;
  }
  return [];
}

const ctx = { registry: apiRegistry, now: () => Date.parse("2026-11-28T00:00:00Z"), limit: 20 };

describe("Envoy's field rules at Snapshot.create", () => {
  it("refuses a cluster whose connect_timeout is not above 0 (cluster.proto connect_timeout: duration gt {})", () => {
    const c = resources.cluster({ name: "backend" });
    c.connectTimeout = { $typeName: "google.protobuf.Duration", seconds: 0n, nanos: 0 };
    expect(violations({ clusters: [c] })).toEqual(["connect_timeout duration.gt = 0s"]);
    const ok = resources.cluster({ name: "backend", connectTimeoutMs: 1 });
    expect(violations({ clusters: [ok] })).toEqual([]);
  });

  it("refuses an lb_policy that is not a defined enum value (cluster.proto lb_policy: enum defined_only)", () => {
    const c = resources.cluster({ name: "backend" });
    c.lbPolicy = 42 as Cluster_LbPolicy;
    expect(violations({ clusters: [c] })).toEqual(["lb_policy enum.defined_only = true"]);
  });

  it("names the typed error's resource, path and rule", () => {
    const c = resources.cluster({ name: "outbound|80||reviews" });
    c.connectTimeout = { $typeName: "google.protobuf.Duration", seconds: -1n, nanos: 0 };
    let error: unknown;
    try {
      Snapshot.create({ clusters: [c] }, { pool: new ResourcePool() });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ResourceValidationError);
    const e = error as ResourceValidationError;
    expect(e.code).toBe("invalid-resource");
    expect(e.typeUrl).toBe(TypeUrl.Cluster);
    expect(e.resourceName).toBe("outbound|80||reviews");
    expect(e.violations[0]).toMatchObject({ path: "connect_timeout", rule: "duration.gt = 0s" });
    expect(e.message).toMatch(
      /Cluster "outbound\|80\|\|reviews" .*\n {2}connect_timeout: must be > 0s \(got -1s\)/,
    );
  });

  it("refuses an endpoint address with no address kind set (address.proto Address: oneof address required)", () => {
    const cla = resources.loadAssignment({
      clusterName: "c",
      endpoints: [{ address: "10.0.0.1", port: 80 }],
    });
    const endpoint = cla.endpoints[0]!.lbEndpoints[0]!;
    if (endpoint.hostIdentifier.case !== "endpoint") throw new Error("builder changed");
    endpoint.hostIdentifier.value.address = create(AddressSchema);
    expect(violations({ endpoints: [cla] })).toEqual([
      "endpoints[0].lb_endpoints[0].endpoint.address.address (validate.required) oneof",
    ]);
  });

  it("refuses a port above 65535 and an empty socket address (address.proto SocketAddress port_value lte 65535, address min_len 1)", () => {
    const cla = resources.loadAssignment({
      clusterName: "c",
      endpoints: [{ address: "10.0.0.1", port: 80 }],
    });
    const endpoint = cla.endpoints[0]!.lbEndpoints[0]!;
    if (endpoint.hostIdentifier.case !== "endpoint") throw new Error("builder changed");
    const address = endpoint.hostIdentifier.value.address?.address;
    if (address?.case !== "socketAddress") throw new Error("builder changed");
    address.value.portSpecifier = { case: "portValue", value: 70000 };
    address.value.address = "";
    expect(violations({ endpoints: [cla] })).toEqual([
      "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address string.min_len = 1",
      "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value uint32.lte = 65535",
    ]);
  });

  it("applies uint32 rules to a wrapper field (endpoint_components.proto LocalityLbEndpoints load_balancing_weight gte 1)", () => {
    const cla = resources.loadAssignment({
      clusterName: "c",
      endpoints: [{ address: "10.0.0.1", port: 80 }],
    });
    (cla.endpoints[0] as { loadBalancingWeight?: number }).loadBalancingWeight = 0;
    expect(violations({ endpoints: [cla] })).toEqual(["endpoints[0].load_balancing_weight uint32.gte = 1"]);
    (cla.endpoints[0] as { loadBalancingWeight?: number }).loadBalancingWeight = undefined;
    expect(violations({ endpoints: [cla] })).toEqual([]);
  });

  it("refuses a route without a path specifier, without an action, and without a match (route_components.proto Route.match required, oneof action required, RouteMatch oneof path_specifier required)", () => {
    const rc = resources.routeConfiguration({
      name: "r",
      virtualHosts: [{ name: "vh", domains: ["*"], routes: [{ prefix: "/", cluster: "c" }] }],
    });
    const route = rc.virtualHosts[0]!.routes[0]!;
    route.match!.pathSpecifier = { case: undefined };
    expect(violations({ routes: [rc] })).toEqual([
      "virtual_hosts[0].routes[0].match.path_specifier (validate.required) oneof",
    ]);
    route.match = undefined;
    route.action = { case: undefined };
    expect(violations({ routes: [rc] })).toEqual([
      "virtual_hosts[0].routes[0].action (validate.required) oneof",
      "virtual_hosts[0].routes[0].match message.required",
    ]);
  });

  it("refuses a virtual host without domains and a header matcher named with a newline (VirtualHost.domains min_items 1; HeaderMatcher.name HTTP_HEADER_NAME, strict false)", () => {
    const rc = resources.routeConfiguration({
      name: "r",
      virtualHosts: [{ name: "vh", domains: ["*"], routes: [{ prefix: "/", cluster: "c" }] }],
    });
    const vh = rc.virtualHosts[0]!;
    vh.domains = [];
    vh.routes[0]!.match!.headers = [create(HeaderMatcherSchema, { name: "x-bad\nname" })];
    expect(violations({ routes: [rc] })).toEqual([
      "virtual_hosts[0].domains repeated.min_items = 1",
      "virtual_hosts[0].routes[0].match.headers[0].name string.well_known_regex = 1",
    ]);
  });

  it("checks typed_config payloads the registry knows (http_connection_manager.proto stat_prefix min_len 1, oneof route_specifier required)", () => {
    const l = resources.apiListener({ name: "l", routeConfigName: "r" });
    const hcm = create(HttpConnectionManagerSchema, { statPrefix: "" });
    l.apiListener = {
      $typeName: "envoy.config.listener.v3.ApiListener",
      apiListener: anyPack(HttpConnectionManagerSchema, hcm),
    };
    const hcmPath =
      "api_listener.api_listener<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager>";
    expect(violations({ listeners: [l] })).toEqual([
      `${hcmPath}.route_specifier (validate.required) oneof`,
      `${hcmPath}.stat_prefix string.min_len = 1`,
    ]);
  });

  it("leaves an Any payload of a type the registry does not know to the proxy", () => {
    const l = resources.apiListener({ name: "l", routeConfigName: "r" });
    l.apiListener = {
      $typeName: "envoy.config.listener.v3.ApiListener",
      apiListener: {
        $typeName: "google.protobuf.Any",
        typeUrl: "type.googleapis.com/acme.Unknown",
        value: new Uint8Array([1, 2]),
      },
    };
    expect(violations({ listeners: [l] })).toEqual([]);
  });

  it("skips ignore_empty fields when empty (protocol.proto UpstreamHttpProtocolOptions.override_auto_sni_header)", () => {
    const schema = UpstreamHttpProtocolOptionsSchema;
    expect(checkMessage(schema, create(schema, { overrideAutoSniHeader: "" }), ctx)).toEqual([]);
    expect(checkMessage(schema, create(schema, { overrideAutoSniHeader: ":authority" }), ctx)).toEqual([]);
    expect(
      checkMessage(schema, create(schema, { overrideAutoSniHeader: "bad header" }), ctx).map((v) => v.rule),
    ).toEqual(["string.well_known_regex = 1"]);
  });

  it("checks duration ranges with gte and required (health_check.proto timeout/interval: required, gt 0)", () => {
    const hc = create(HealthCheckSchema, {});
    expect(checkMessage(HealthCheckSchema, hc, ctx).map((v) => `${v.path} ${v.rule}`)).toEqual(
      expect.arrayContaining(["timeout duration.required", "interval duration.required"]),
    );
  });

  it("can be turned off per snapshot and per cache, for callers that validate elsewhere", () => {
    const c = resources.cluster({ name: "backend" });
    c.lbPolicy = 42 as Cluster_LbPolicy;
    expect(() =>
      Snapshot.create({ clusters: [c] }, { pool: new ResourcePool(), validate: false }),
    ).not.toThrow();
    const cache = new LinearCache(TypeUrl.Cluster, { pool: new ResourcePool() });
    const c2 = resources.cluster({ name: "backend" });
    c2.lbPolicy = 42 as Cluster_LbPolicy;
    expect(() => cache.update([c2])).toThrow(ResourceValidationError);
    expect(cache.current.resources.size).toBe(0);
    new LinearCache(TypeUrl.Cluster, { pool: new ResourcePool(), validate: false }).update([c2]);
  });

  it("validates each new encoded resource once, however many snapshots use it", () => {
    const pool = new ResourcePool();
    const shared = [resources.cluster({ name: "a" }), resources.cluster({ name: "b" })];
    for (let i = 0; i < 20; i++) Snapshot.create({ clusters: [...shared] }, { pool });
    expect(pool.stats.validations).toBe(2);
  });

  it("passes everything the resources builders produce", () => {
    const input: SnapshotInput = {
      clusters: [
        resources.cluster({ name: "eds" }),
        resources.cluster({
          name: "static",
          type: "STATIC",
          endpoints: [{ address: "127.0.0.1", port: 8080 }],
        }),
        resources.cluster({
          name: "dns",
          type: "STRICT_DNS",
          lbPolicy: "RING_HASH",
          endpoints: [{ address: "example.com", port: 443 }],
        }),
      ],
      endpoints: [
        resources.loadAssignment({
          clusterName: "eds",
          endpoints: [
            { address: "10.0.0.1", port: 80, weight: 3, locality: { region: "r", zone: "z" }, priority: 1 },
            { address: "::1", port: 80, health: "DRAINING" },
          ],
        }),
      ],
      listeners: [
        resources.apiListener({ name: "api", routeConfigName: "r" }),
        resources.httpListener({ name: "http", routeConfigName: "r", address: "0.0.0.0", port: 8080 }),
        resources.listener({ name: "both", routeConfigName: "r", address: "0.0.0.0", port: 9090 }),
      ],
      routes: [
        resources.routeConfiguration({
          name: "r",
          virtualHosts: [
            {
              name: "vh",
              domains: ["*", "example.com"],
              routes: [
                { path: "/exact", cluster: "eds", timeoutMs: 5000 },
                {
                  prefix: "/",
                  weightedClusters: [
                    { name: "eds", weight: 1 },
                    { name: "static", weight: 3 },
                  ],
                },
              ],
            },
          ],
        }),
      ],
    };
    expect(violations(input, apiRegistry)).toEqual([]);
  });
});

describe("RE2 patterns as JavaScript RegExps", () => {
  it("translates the RE2 forms JS spells otherwise", () => {
    expect(compileRe2("(?i)^abc$")?.test("ABC")).toBe(true);
    expect(compileRe2("(?P<host>[a-z]+)\\.com")?.exec("x.example.com")?.groups?.host).toBe("example");
    expect(compileRe2("\\Aab\\z")?.test("ab")).toBe(true);
    expect(compileRe2("\\Aab\\z")?.test("ab\n")).toBe(false);
    expect(compileRe2("^[[:digit:]]+$")?.test("0123")).toBe(true);
    expect(compileRe2("^[[:digit:]]+$")?.test("12a")).toBe(false);
    expect(compileRe2("^\\pL+$")?.test("Zürich")).toBe(true);
    // RE2 (UTF-8) matches a code point with '.', as the u flag makes JS do.
    expect(compileRe2("^.$")?.test("😀")).toBe(true);
    expect(compileRe2("(?U)a+")).toBeUndefined();
  });

  it("compiles every pattern rule in the generated Envoy, xds and udpa protos", () => {
    const patterns = collectPatterns(apiRegistry);
    // envoy.extensions.geoip_providers (…mmdb), envoy.config.core.v3 (header names) and others.
    expect(patterns.length).toBeGreaterThanOrEqual(3);
    expect(patterns.filter((p) => compileRe2(p) === undefined)).toEqual([]);
  });
});

/** Every string `pattern` rule (also on repeated items) the registry's fields declare. */
function collectPatterns(registry: Registry): string[] {
  const out: string[] = [];
  for (const type of registry) {
    if (type.kind !== "message") continue;
    for (const field of type.fields) {
      if (!hasOption(field, rulesOption)) continue;
      const r = getOption(field, rulesOption);
      const items = r.type.case === "repeated" ? r.type.value.items : undefined;
      for (const rule of [r, items]) {
        if (rule?.type.case === "string" && Object.hasOwn(rule.type.value, "pattern"))
          out.push(rule.type.value.pattern!);
      }
    }
  }
  return out;
}
