import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaError } from "./ca-error.js";
import { MAX_SPIFFE_ID_BYTES, SpiffeId } from "./spiffe-id.js";

const tdChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789.-_".split(""));
const segChar = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_".split(""),
);
const trustDomain = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
const segment = fc
  .string({ unit: segChar, minLength: 1, maxLength: 20 })
  .filter((s) => s !== "." && s !== "..");
const validId = fc.tuple(trustDomain, fc.array(segment, { maxLength: 6 }));

function reason(input: string): string {
  try {
    SpiffeId.parse(input);
  } catch (error) {
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe("invalid-spiffe-id");
    return (error as CaError).message;
  }
  throw new Error(`${input} was accepted`);
}

describe("SpiffeId", () => {
  it("parses trust domain and path and formats back to the same URI", () => {
    const id = SpiffeId.parse("spiffe://example.org/ns/default/sa/web");
    expect(id.trustDomain).toBe("example.org");
    expect(id.path).toBe("/ns/default/sa/web");
    expect(id.segments).toEqual(["ns", "default", "sa", "web"]);
    expect(id.toString()).toBe("spiffe://example.org/ns/default/sa/web");
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://example.org/ns/default/sa/web"}');
  });

  it("accepts a trust domain ID without a path", () => {
    expect(SpiffeId.parse("spiffe://cluster.local").path).toBe("");
    expect(SpiffeId.forTrustDomain("cluster.local").toString()).toBe("spiffe://cluster.local");
  });

  it("builds and reads Istio's /ns/<ns>/sa/<sa> form", () => {
    const id = SpiffeId.istio("cluster.local", "bookinfo", "reviews");
    expect(id.toString()).toBe("spiffe://cluster.local/ns/bookinfo/sa/reviews");
    expect(id.istio).toEqual({ namespace: "bookinfo", serviceAccount: "reviews" });
    expect(SpiffeId.parse("spiffe://td/ns/a/sa/b/extra").istio).toBeUndefined();
    expect(SpiffeId.parse("spiffe://td/workload").istio).toBeUndefined();
  });

  it.each([
    ["http://example.org/x", "scheme must be spiffe"],
    ["SPIFFE://example.org/x", "scheme must be lowercase"],
    ["spiffe:///x", "trust domain is empty"],
    ["spiffe://Example.org/x", "must be lowercase"],
    ["spiffe://example.org:8080/x", "port is not allowed"],
    ["spiffe://user@example.org/x", "userinfo is not allowed"],
    ["spiffe://example.org/x?a=b", "query is not allowed"],
    ["spiffe://example.org/x#frag", "fragment is not allowed"],
    ["spiffe://example.org?a", "query is not allowed"],
    ["spiffe://example.org/", "trailing / is not allowed"],
    ["spiffe://example.org/x/", "empty segment"],
    ["spiffe://example.org//x", "empty segment"],
    ["spiffe://example.org/./x", '"." is not allowed'],
    ["spiffe://example.org/x/..", '".." is not allowed'],
    ["spiffe://example.org/a%20b", "percent-encoding"],
    ["spiffe://example.org/a b", "not allowed in a path segment"],
    ["spiffe://exa mple.org/x", "not allowed in the trust domain"],
  ])("rejects %s (%s)", (input, why) => {
    expect(reason(input)).toContain(why);
  });

  it("supports IDs up to 2048 bytes and refuses longer ones", () => {
    const prefix = "spiffe://example.org/";
    const longest = prefix + "a".repeat(MAX_SPIFFE_ID_BYTES - prefix.length);
    expect(SpiffeId.parse(longest).toString()).toHaveLength(2048);
    expect(reason(`${longest}b`)).toContain("longer than 2048 bytes");
  });

  it("round-trips every valid ID (property)", () => {
    fc.assert(
      fc.property(validId, ([td, segments]) => {
        const text = `spiffe://${td}${segments.map((s) => `/${s}`).join("")}`;
        const id = SpiffeId.parse(text);
        expect(id.toString()).toBe(text);
        expect(id.trustDomain).toBe(td);
        expect(id.segments).toEqual(segments);
        expect(SpiffeId.fromSegments(td, ...segments).equals(id)).toBe(true);
      }),
    );
  });

  it("only ever fails with invalid-spiffe-id, and what it accepts is canonical (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `spiffe://${s}`),
        ),
        (text) => {
          const id = SpiffeId.tryParse(text);
          if (id) expect(id.toString()).toBe(text);
          else expect(() => SpiffeId.parse(text)).toThrow(CaError);
        },
      ),
    );
  });

  it("rejects any path segment holding a character outside [a-zA-Z0-9._-] (property)", () => {
    const bad = fc.constantFrom(..."%:@!$&'()*+,;= ~\\\"<>^`{|}".split(""));
    fc.assert(
      fc.property(validId, bad, fc.nat(), ([td, segments], c, at) => {
        const seg = segments[0] ?? "x";
        const broken = seg.slice(0, at % (seg.length + 1)) + c + seg.slice(at % (seg.length + 1));
        expect(SpiffeId.isValid(`spiffe://${td}/${broken}`)).toBe(false);
      }),
    );
  });
});
