import {
  clone,
  create,
  equals,
  fromBinary,
  type JsonObject,
  type JsonValue,
  toBinary,
} from "@bufbuild/protobuf";
import { AnySchema, anyPack, StructSchema } from "@bufbuild/protobuf/wkt";
import { registry } from "@meshlet/api";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalBytes } from "./canonical-bytes.js";
import { XdsError } from "./errors.js";
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

// Hand-written wire bytes (protobuf encoding guide: tag = field << 3 | wire type, lengths as
// varints), so the cases below do not depend on any encoder. google.protobuf.Struct is
// `map<string, Value> fields = 1`; Value has string_value = 3 and struct_value = 5.
const utf8 = (s: string) => new TextEncoder().encode(s);
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const cat = (...parts: (readonly number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const ld = (field: number, payload: Uint8Array) =>
  cat([(field << 3) | 2, ...varint(payload.length)], payload);
/** A Struct entry `key: "<text>"`. */
const textEntry = (key: string, text: string) => ld(1, cat(ld(1, utf8(key)), ld(2, ld(3, utf8(text)))));

/** A Struct nested `levels` deep (`{k: {k: … inner}}`), built outside in without re-copying. */
function nestedStruct(levels: number, inner: Uint8Array): Uint8Array {
  const prefixes: number[][] = [];
  let size = inner.length;
  for (let i = 0; i < levels; i++) {
    const valueLen = 1 + varint(size).length + size;
    const entryLen = 4 + varint(valueLen).length + valueLen;
    prefixes.push([
      0x0a,
      ...varint(entryLen),
      0x0a,
      0x01,
      0x6b,
      0x12,
      ...varint(valueLen),
      0x2a,
      ...varint(size),
    ]);
    size = 1 + varint(entryLen).length + entryLen;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (let i = prefixes.length - 1; i >= 0; i--) {
    out.set(prefixes[i]!, o);
    o += prefixes[i]!.length;
  }
  out.set(inner, o);
  return out;
}

describe("canonical bytes of unusual and hostile input", () => {
  const unsorted = cat(textEntry("b", "2"), textEntry("a", "1"));
  const sorted = cat(textEntry("a", "1"), textEntry("b", "2"));

  it("sort a map nested as deep as protobuf's default recursion limit allows", () => {
    // 30 Struct levels: 90 messages deep (Struct, map entry, Value each), under C++'s limit of 100.
    expect(canonicalBytes(StructSchema, nestedStruct(30, unsorted))).toEqual(nestedStruct(30, sorted));
  });

  it("leave a crafted, deeply nested Struct as it is instead of overflowing the stack", () => {
    const deep = nestedStruct(50_000, unsorted);
    expect(canonicalBytes(StructSchema, deep)).toBe(deep);
    // Just past the limit (34 levels: 102 messages) is left as it is too: Envoy's protobuf
    // parser would refuse it (CodedInputStream's default recursion limit is 100).
    const past = nestedStruct(34, unsorted);
    expect(canonicalBytes(StructSchema, past)).toBe(past);
  });

  it("build a snapshot holding such a Struct in an Any payload, or refuse it with an XdsError", () => {
    // Metadata { filter_metadata = 1: map<string, Struct> } packed in a cluster's typed metadata.
    const payload = ld(1, cat(ld(1, utf8("k")), ld(2, nestedStruct(10_000, unsorted))));
    const typed = create(AnySchema, {
      typeUrl: "type.googleapis.com/envoy.config.core.v3.Metadata",
      value: payload,
    });
    const hostile = create(ClusterSchema, {
      name: "hostile",
      metadata: { typedFilterMetadata: { x: typed } },
    });
    const snapshot = Snapshot.create({ clusters: [hostile] }, { registry, validate: false });
    expect(snapshot.resources(TypeUrl.Cluster).get("hostile")?.bytes).toEqual(
      toBinary(ClusterSchema, hostile),
    );
    expect(() => Snapshot.create({ clusters: [clone(ClusterSchema, hostile)] }, { registry })).toThrow(
      XdsError,
    );
  });

  it("leave bytes whose inner length runs past its enclosing field as they are", () => {
    // Entry "b"'s value claims the bytes of the next entry ("a") as well as its own: a walk that
    // followed it would read outside the entry, then sort the two entries it took for well formed.
    const value = ld(3, utf8("2"));
    const next = textEntry("a", "1");
    const bad = cat(
      [0x0a, 3 + 2 + value.length, 0x0a, 0x01, 0x62, 0x12, value.length + next.length],
      value,
      next,
    );
    expect(canonicalBytes(StructSchema, bad)).toBe(bad);
  });

  it("keep the last of duplicate keys last (protobuf: the last entry wins)", () => {
    const dup = cat(textEntry("b", "1"), textEntry("a", "x"), textEntry("b", "2"));
    const out = canonicalBytes(StructSchema, dup);
    expect(out).toEqual(cat(textEntry("a", "x"), textEntry("b", "1"), textEntry("b", "2")));
    expect(fromBinary(StructSchema, out)).toEqual(fromBinary(StructSchema, dup));
    expect(fromBinary(StructSchema, out).fields.b?.kind.value).toBe("2");
  });

  it("sort maps inside repeated messages and maps inside map values", () => {
    // Value.list_value (6) is a ListValue { repeated Value values = 1 }; each value a Struct.
    const list = (entries: Uint8Array) => ld(6, ld(1, ld(5, entries)));
    const outer = (inner: Uint8Array) =>
      cat(ld(1, cat(ld(1, utf8("z")), ld(2, list(inner)))), textEntry("y", "0"));
    expect(canonicalBytes(StructSchema, outer(unsorted))).toEqual(
      cat(textEntry("y", "0"), ld(1, cat(ld(1, utf8("z")), ld(2, list(sorted))))),
    );
  });

  it("return already-canonical bytes with maps as they are, without a copy", () => {
    const bytes = nestedStruct(5, sorted);
    expect(canonicalBytes(StructSchema, bytes)).toBe(bytes);
  });
});
