import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TypeUrl } from "../type-url.js";
import { deltaRequestDecoder, sotwRequestDecoder } from "./request-decoder.js";

const names = (n: number, prefix = "outbound|80||svc") =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}.ns.svc.cluster.local`);

const request = (resourceNames: string[], nonce = "7") =>
  toBinary(
    DiscoveryRequestSchema,
    create(DiscoveryRequestSchema, {
      versionInfo: "v1",
      node: { id: "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", cluster: "a" },
      resourceNames,
      typeUrl: TypeUrl.ClusterLoadAssignment,
      responseNonce: nonce,
      errorDetail: { code: 3, message: "bad" },
    }),
  );

describe("InterningDecoder", () => {
  it("decodes exactly what fromBinary decodes, short and long name lists alike", () => {
    const decoder = sotwRequestDecoder();
    for (const list of [[], names(2), names(300)]) {
      const bytes = request(list);
      expect(decoder.decode(bytes)).toEqual(fromBinary(DiscoveryRequestSchema, bytes));
    }
  });

  it("hands every request with the same long list the same frozen array, decoded once", () => {
    const decoder = sotwRequestDecoder();
    const a = decoder.decode(request(names(300), "1"));
    const b = decoder.decode(request(names(300), "2"));
    expect(b.responseNonce).toBe("2");
    expect(b.resourceNames).toBe(a.resourceNames);
    expect(Object.isFrozen(a.resourceNames)).toBe(true);
    const other = names(300);
    other[150] = "outbound|80||svc-150.other.svc.cluster.local";
    const c = decoder.decode(request(other));
    expect(c.resourceNames).not.toBe(a.resourceNames);
    expect(c.resourceNames[150]).toBe(other[150]);
    expect(decoder.size).toBe(2);
  });

  it("holds a bounded number of bytes, whatever the size of the lists a client sends", () => {
    // A client may send lists up to the largest request accepted (16 MiB by default): interned by
    // count alone, 256 of them would keep gigabytes alive.
    const decoder = sotwRequestDecoder();
    const big = (i: number) => names(20_000, `list-${i}-${"x".repeat(40)}`); // ≈ 1.6 MB encoded
    for (let i = 0; i < 60; i++) decoder.decode(request(big(i)));
    expect(decoder.retainedBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(decoder.size).toBeLessThan(60);
    // A list larger than a quarter of that is decoded, never kept.
    const huge = names(250_000, `huge-${"x".repeat(40)}`);
    const before = decoder.retainedBytes;
    expect(decoder.decode(request(huge)).resourceNames).toHaveLength(huge.length);
    expect(decoder.retainedBytes).toBeLessThanOrEqual(before);
  });

  it("forgets the least recently used lists beyond its bound", () => {
    const decoder = sotwRequestDecoder(2);
    const first = decoder.decode(request(names(100, "a"))).resourceNames;
    decoder.decode(request(names(100, "b")));
    decoder.decode(request(names(100, "a"))); // a is now the most recent
    decoder.decode(request(names(100, "c"))); // evicts b
    expect(decoder.size).toBe(2);
    expect(decoder.decode(request(names(100, "a"))).resourceNames).toBe(first);
  });

  it("decodes a request whose names are not contiguous in full", () => {
    const w = new BinaryWriter();
    const list = names(60);
    for (const n of list.slice(0, 30)) w.tag(3, WireType.LengthDelimited).string(n);
    w.tag(4, WireType.LengthDelimited).string(TypeUrl.ClusterLoadAssignment);
    for (const n of list.slice(30)) w.tag(3, WireType.LengthDelimited).string(n);
    const decoded = sotwRequestDecoder().decode(w.finish());
    expect(decoded.resourceNames).toEqual(list);
    expect(decoded.typeUrl).toBe(TypeUrl.ClusterLoadAssignment);
  });

  it("agrees with fromBinary on random requests, and throws on truncated ones as fromBinary does", () => {
    const decoder = sotwRequestDecoder(4);
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 80 }),
        fc.string({ maxLength: 10 }),
        fc.nat({ max: 400 }),
        (list, nonce, cut) => {
          const bytes = request(list, nonce);
          expect(decoder.decode(bytes)).toEqual(fromBinary(DiscoveryRequestSchema, bytes));
          const truncated = bytes.subarray(0, Math.max(1, bytes.length - 1 - cut));
          let expected: unknown;
          try {
            expected = fromBinary(DiscoveryRequestSchema, truncated);
          } catch {
            expected = "throws";
          }
          let actual: unknown;
          try {
            actual = decoder.decode(truncated);
          } catch {
            actual = "throws";
          }
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("interns a delta request's resource_names_subscribe the same way", () => {
    const decoder = deltaRequestDecoder();
    const delta = (nonce: string) =>
      toBinary(
        DeltaDiscoveryRequestSchema,
        create(DeltaDiscoveryRequestSchema, {
          node: { id: "n" },
          typeUrl: TypeUrl.ClusterLoadAssignment,
          resourceNamesSubscribe: names(200),
          resourceNamesUnsubscribe: ["gone"],
          initialResourceVersions: { a: "1" },
          responseNonce: nonce,
        }),
      );
    const a = decoder.decode(delta("1"));
    const b = decoder.decode(delta("2"));
    expect(b).toEqual(fromBinary(DeltaDiscoveryRequestSchema, delta("2")));
    expect(b.resourceNamesSubscribe).toBe(a.resourceNamesSubscribe);
  });

  it("copies ephemeral input before decoding, so nothing in the result aliases reused bytes", () => {
    const decoder = sotwRequestDecoder();
    const withDetail = toBinary(
      DiscoveryRequestSchema,
      create(DiscoveryRequestSchema, {
        typeUrl: TypeUrl.Cluster,
        responseNonce: "1",
        errorDetail: {
          code: 3,
          message: "bad",
          details: [{ typeUrl: "type.googleapis.com/x", value: new Uint8Array([1, 2, 3]) }],
        },
      }),
    );
    for (const bytes of [withDetail, request(names(300), "9")]) {
      const scratch = Buffer.from(bytes);
      const decoded = decoder.decode(scratch, true);
      const expected = fromBinary(DiscoveryRequestSchema, Buffer.from(bytes));
      scratch.fill(0); // the transport reuses its scratch buffer for the next message
      expect(decoded).toEqual(expected);
    }
  });
});
