import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ipInCidr, parseCidr, parseIp } from "./ip-match.js";
import { compilePathTemplate } from "./path-template.js";
import { matchString } from "./string-match.js";

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const toInt = (o: number[]) => o.reduce((a, b) => a * 256 + b, 0);

describe("ipInCidr", () => {
  it("agrees with integer arithmetic for every IPv4 address and prefix", () => {
    fc.assert(
      fc.property(v4, v4, fc.integer({ min: 0, max: 32 }), (ip, net, len) => {
        const expected = Math.floor(toInt(ip) / 2 ** (32 - len)) === Math.floor(toInt(net) / 2 ** (32 - len));
        expect(ipInCidr(ip.join("."), `${net.join(".")}/${len}`)).toBe(expected);
      }),
    );
  });

  it("parses IPv6 forms to the same bytes and keeps the families apart", () => {
    expect(parseIp("2001:db8::1")).toEqual(parseIp("2001:0db8:0000:0000:0000:0000:0000:0001"));
    expect(parseIp("::ffff:10.0.0.1")?.v6?.slice(12)).toEqual(Uint8Array.from([10, 0, 0, 1]));
    expect(ipInCidr("2001:db8:1::5", "2001:db8::/32")).toBe(true);
    expect(ipInCidr("2001:db9::5", "2001:db8::/32")).toBe(false);
    expect(ipInCidr("10.0.0.1", "::/0")).toBe(false);
  });

  // Go's netip.ParsePrefix, which Istio's ValidateIPs uses (istio/istio pkg/config/security/security.go).
  it.each(["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "nope", "2001:db8::/129", "10.0.0.0/-1"])(
    "refuses %s as a CIDR",
    (v) => expect(parseCidr(v)).toBeUndefined(),
  );
});

describe("matchString", () => {
  const str = fc.string({ unit: fc.constantFrom("a", "b", "/", ".") });
  it("prefix and suffix patterns are startsWith/endsWith; * alone is presence", () => {
    const nonEmpty = fc.string({ unit: fc.constantFrom("a", "b", "/", "."), minLength: 1 });
    fc.assert(
      fc.property(nonEmpty, str, (p, v) => {
        expect(matchString(`${p}*`, v)).toBe(v.startsWith(p));
        expect(matchString(`*${p}`, v)).toBe(v.endsWith(p));
        expect(matchString("*", v)).toBe(v.length > 0);
        if (!p.includes("*")) expect(matchString(p, v)).toBe(p === v);
      }),
    );
  });
});

describe("path templates", () => {
  const segment = fc.stringMatching(/^[a-z0-9._-]{1,6}$/);
  it("{*} matches exactly one non-empty segment", () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 0, maxLength: 4 }), (segs) => {
        const path = `/users/${segs.join("/")}/profile`;
        expect(compilePathTemplate("/users/{*}/profile").test(path)).toBe(segs.length === 1);
      }),
    );
  });

  it("{**} matches zero or more segments, anywhere before the last operator", () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 0, maxLength: 5 }), (segs) => {
        const rest = segs.join("/");
        expect(compilePathTemplate("/files/{**}").test(`/files/${rest}`)).toBe(true);
        expect(compilePathTemplate("/files/{**}").test(`/other/${rest}`)).toBe(false);
        // istio/api Operation.paths: "/foo/{**}/bar" is valid; {**} spans segments.
        expect(compilePathTemplate("/foo/{**}/bar").test(`/foo/${rest}/bar`)).toBe(true);
      }),
    );
  });

  // The examples of istio/api security/v1beta1/authorization_policy.proto (Operation.paths), with
  // Envoy's uri_template regexes (envoyproxy/envoy uri_template_internal.cc) deciding the matches.
  it("matches Istio's documented examples as Envoy's uri_template does", () => {
    expect(compilePathTemplate("/foo/{*}").test("/foo/bar")).toBe(true);
    expect(compilePathTemplate("/foo/{*}").test("/foo/bar/baz")).toBe(false);
    expect(compilePathTemplate("/foo/{**}/").test("/foo/bar/")).toBe(true);
    expect(compilePathTemplate("/foo/{**}/").test("/foo//")).toBe(true);
    expect(compilePathTemplate("/foo/{**}/").test("/foo/bar")).toBe(false);
    expect(compilePathTemplate("/foo/{*}/bar/{**}").test("/foo/buzz/bar/")).toBe(true);
    expect(compilePathTemplate("/foo/{*}/bar/{**}").test("/foo/buzz/bar/baz")).toBe(true);
  });
});
