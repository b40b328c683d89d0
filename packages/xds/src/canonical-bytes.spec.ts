import { create, equals, fromBinary, type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalBytes } from "./canonical-bytes.js";
import { ResourcePool } from "./resource-pool.js";
import * as resources from "./resources/index.js";
import { Snapshot } from "./snapshot.js";
import { TypeUrl } from "./type-url.js";

// Protobuf map fields have no order on the wire (protobuf language guide, "Maps": "the wire
// format ordering and map iteration ordering of map values is undefined"); protobuf-es writes
// them in the insertion order of the JavaScript object. The same content built with its keys in
// another order must have the same bytes and version on every replica.

/** An object with the entries of `entries` inserted in that order. */
const ordered = <V>(entries: readonly (readonly [string, V])[]): Record<string, V> => {
  const out: Record<string, V> = {};
  for (const [k, v] of entries) out[k] = v;
  return out;
};

/** Every object below has its keys inserted in `order` (forward or reversed). */
function cluster(reverse: boolean) {
  const o = (...entries: (readonly [string, JsonValue])[]) =>
    ordered(reverse ? [...entries].reverse() : entries);
  const istio: JsonObject = o(
    ["name", "reviews"],
    ["namespace", "default"],
    ["labels", o(["app", "reviews"], ["version", "v1"], ["zone", "a"])],
    ["ports", [o(["port", 8080], ["name", "http"])]],
  );
  const c = resources.cluster({ name: "outbound|9080||reviews.default.svc.cluster.local" });
  c.metadata = create(MetadataSchema, {
    filterMetadata: ordered<JsonObject>(
      reverse
        ? [
            ["envoy.lb", o(["weight", 3], ["canary", true])],
            ["istio", istio],
          ]
        : [
            ["istio", istio],
            ["envoy.lb", o(["canary", true], ["weight", 3])],
          ],
    ),
  });
  return c;
}

/** A listener whose HTTP connection manager (an Any) holds a route configuration with maps. */
function listener(reverse: boolean): Listener {
  const o = <V>(...entries: (readonly [string, V])[]) => ordered(reverse ? [...entries].reverse() : entries);
  const hcm = create(HttpConnectionManagerSchema, {
    statPrefix: "inbound_0.0.0.0_8080",
    routeSpecifier: {
      case: "routeConfig",
      value: {
        name: "inbound|8080||",
        virtualHosts: [
          {
            name: "inbound|http|8080",
            domains: ["*"],
            typedPerFilterConfig: o(
              ["envoy.filters.http.router", anyPack(RouterSchema, create(RouterSchema))],
              [
                "envoy.filters.http.fault",
                anyPack(RouterSchema, create(RouterSchema, { suppressEnvoyHeaders: true })),
              ],
            ),
            metadata: {
              filterMetadata: o(["istio", o(["a", 1], ["b", 2])], ["other", o(["c", 3])]),
              typedFilterMetadata: {},
            },
          },
        ],
      },
    },
    httpFilters: [
      {
        name: "envoy.filters.http.router",
        configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
      },
    ],
  });
  return create(ListenerSchema, {
    name: "virtualInbound",
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
  });
}

describe("resource bytes and versions with map fields", () => {
  it("are the same whatever order a Struct's and filter_metadata's keys were added in", () => {
    const pool = new ResourcePool();
    const forward = Snapshot.create({ clusters: [cluster(false)] }, { pool: new ResourcePool() });
    const backward = Snapshot.create({ clusters: [cluster(true)] }, { pool });
    // The two inputs really are encoded differently by protobuf-es…
    expect(toBinary(ClusterSchema, cluster(false))).not.toEqual(toBinary(ClusterSchema, cluster(true)));
    // …and hold equal content.
    expect(equals(ClusterSchema, cluster(false), cluster(true))).toBe(true);
    expect(backward.version(TypeUrl.Cluster)).toBe(forward.version(TypeUrl.Cluster));
    const [a] = forward.resources(TypeUrl.Cluster).values();
    const [b] = backward.resources(TypeUrl.Cluster).values();
    expect(b!.version).toBe(a!.version);
    expect(b!.bytes).toEqual(a!.bytes);
    // What is sent still decodes to the resource.
    expect(equals(ClusterSchema, fromBinary(ClusterSchema, b!.bytes), cluster(false))).toBe(true);
  });

  it("are the same for maps inside an Any payload (typed_per_filter_config in an HCM's route config)", () => {
    const forward = Snapshot.create({ listeners: [listener(false)] }, { pool: new ResourcePool() });
    const backward = Snapshot.create({ listeners: [listener(true)] }, { pool: new ResourcePool() });
    expect(toBinary(ListenerSchema, listener(false))).not.toEqual(toBinary(ListenerSchema, listener(true)));
    expect(backward.version(TypeUrl.Listener)).toBe(forward.version(TypeUrl.Listener));
    const [b] = backward.resources(TypeUrl.Listener).values();
    expect(fromBinary(ListenerSchema, b!.bytes).name).toBe("virtualInbound");
  });

  it("are the same for any insertion order of any keys (route metadata)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 0, maxLength: 6 }), fc.integer({ min: -5, max: 5 })), {
          selector: ([k]) => k,
          maxLength: 12,
        }),
        fc.func(fc.integer()),
        (entries, rank) => {
          const shuffled = [...entries].sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
          const route = (list: typeof entries) =>
            create(RouteConfigurationSchema, {
              name: "r",
              virtualHosts: [
                {
                  name: "vh",
                  domains: ["*"],
                  metadata: { filterMetadata: { m: ordered(list) }, typedFilterMetadata: {} },
                },
              ],
            });
          const v = (list: typeof entries) =>
            Snapshot.create({ routes: [route(list)] }, { pool: new ResourcePool() }).version(
              TypeUrl.RouteConfiguration,
            );
          expect(v(shuffled)).toBe(v(entries));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("are left as they are when already canonical (no copy)", () => {
    const bytes = toBinary(ClusterSchema, resources.cluster({ name: "plain" }));
    expect(canonicalBytes(ClusterSchema, bytes)).toBe(bytes);
  });
});
