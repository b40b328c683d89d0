import { describe, expect, it } from "vitest";
import { isSpiffeId } from "./spiffe-id.js";

// Cases from the SPIFFE ID rules (spiffe/spiffe standards/SPIFFE-ID.md §2, §2.1 Trust Domain,
// §2.2 Path, §2.3 Maximum SPIFFE ID Length); the examples are the standard's own.
describe("isSpiffeId", () => {
  it("accepts the standard's examples", () => {
    for (const id of [
      "spiffe://staging.example.com/payments/mysql",
      "spiffe://staging.example.com/payments/web-fe",
      "spiffe://k8s-west.example.com/ns/staging/sa/default",
      "spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
      "spiffe://trust_domain_name.example.com",
      "spiffe://192.168.1.1/a.b_c-D",
    ])
      expect(isSpiffeId(id), id).toBe(true);
  });

  it("refuses what the rules exclude", () => {
    for (const [id, rule] of [
      ["http://example.com/a", "the scheme is spiffe"],
      ["spiffe:///a", "the trust domain is not empty"],
      ["spiffe://Example.com/a", "the trust domain is lower case"],
      ["spiffe://example.com:8080/a", "no port"],
      ["spiffe://user@example.com/a", "no user info"],
      ["spiffe://ex%41mple.com/a", "no percent-encoding in the trust domain"],
      ["spiffe://[::1]/a", "IPv6 addresses are excluded"],
      ["spiffe://example.com/a/", "no trailing slash"],
      ["spiffe://example.com//a", "no empty segment"],
      ["spiffe://example.com/a/./b", "no '.' segment"],
      ["spiffe://example.com/a/../b", "no '..' segment"],
      ["spiffe://example.com/a%20b", "no percent-encoding in the path"],
      ["spiffe://example.com/a?b=c", "no query"],
      ["spiffe://example.com/a#b", "no fragment"],
      ["spiffe://example.com/a:b", "segments of letters, digits, '.', '-', '_' only"],
      [`spiffe://example.com/${"a".repeat(2048)}`, "2048 bytes at most"],
      [`spiffe://${"a".repeat(256)}`, "a trust domain of 255 bytes at most"],
    ] as const)
      expect(isSpiffeId(id), rule).toBe(false);
  });
});
