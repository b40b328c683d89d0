import { describe, expect, it } from "vitest";
import { bearerMatches, isLoopbackHost, isLoopbackHostHeader } from "./auth.js";

describe("bearer tokens (RFC 6750 §2.1)", () => {
  const token = "0123456789abcdef0123";
  it("accepts exactly `Bearer <token>`, the scheme in any case", () => {
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
  });
  it("refuses anything else", () => {
    for (const h of [
      undefined,
      null,
      "",
      token,
      `Bearer  ${token}`,
      `Bearer ${token} `,
      `Basic ${token}`,
      `Bearer ${token}x`,
      `Bearer ${token.slice(1)}`,
      "Bearer ",
    ]) {
      expect(bearerMatches(h, token), String(h)).toBe(false);
    }
  });
});

describe("loopback", () => {
  it("knows loopback addresses and names", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "localhost.evil.com", "", "[::]"])
      expect(isLoopbackHost(h), h).toBe(false);
  });
  it("reads Host headers with ports, and refuses other names (DNS rebinding)", () => {
    for (const h of ["127.0.0.1:15015", "localhost:15015", "[::1]:15015", "localhost"])
      expect(isLoopbackHostHeader(h), h).toBe(true);
    for (const h of [undefined, "", "evil.example.com", "evil.example.com:15015", "127.0.0.1.nip.io:15015"])
      expect(isLoopbackHostHeader(h), String(h)).toBe(false);
  });
});
