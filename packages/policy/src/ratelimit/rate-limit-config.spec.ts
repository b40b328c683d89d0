import { describe, expect, it } from "vitest";
import { PolicyEngine } from "../policy-engine.js";
import { PolicyError } from "../policy-error.js";
import { toRateLimitResponse } from "../server/rate-limit-server.js";
import { parseRateLimitConfig } from "./rate-limit-config.js";

// The cases of envoyproxy/ratelimit's own tests: test/config/*.yaml, with the outcomes
// test/config/config_test.go asserts and src/config/config_impl.go produces (the error texts).

function rejects(yaml: string, message: string) {
  let err: unknown;
  try {
    parseRateLimitConfig(yaml, "case.yaml");
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PolicyError);
  expect((err as PolicyError).code).toBe("invalid-rate-limit-config");
  expect((err as PolicyError).message).toContain(message);
  return (err as PolicyError).message;
}

describe("parseRateLimitConfig refuses what ratelimit refuses, with ratelimit's reason", () => {
  it.each([
    // test/config/empty_domain.yaml
    ["descriptors:\n  - key: k\n", "config file cannot have empty domain"],
    // test/config/empty_key.yaml
    ["domain: test-domain\ndescriptors:\n  - value: v\n", "descriptor has empty key"],
    // test/config/duplicate_key.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n\n  - key: key1\n    value: value1\n",
      "duplicate descriptor composite key 'test-domain.key1_value1'",
    ],
    // test/config/bad_limit_unit.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    rate_limit:\n      unit: foo\n      requests_per_unit: 5\n",
      "invalid rate limit unit 'foo'",
    ],
    // test/config/misspelled_key.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    ratelimit:\n      unit: day\n      requests_per_unit: 5\n",
      "config error, unknown key 'ratelimit'",
    ],
    // test/config/misspelled_key2.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: day\n      requestsperunit: 5\n",
      "config error, unknown key 'requestsperunit'",
    ],
    // test/config/non_string_key.yaml
    [
      "0.25: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    ratelimit:\n      unit: day\n      requests_per_unit: 5",
      "config error, key is not of type string: 0.25",
    ],
    // test/config/non_map_list.yaml
    [
      "domain: test-domain\ndescriptors:\n  - a\n  - b\n  - c\n",
      "config error, yaml file contains list of type other than map: a",
    ],
    // test/config/unlimited_with_unit.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: foo\n    rate_limit:\n      unlimited: true\n      unit: day\n      requests_per_unit: 25\n",
      "should not specify rate limit unit when unlimited",
    ],
    // test/config/replaces_empty.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name:\n          unit: second\n          requests_per_unit: 5\n",
      "should not have an empty replaces entry",
    ],
    // test/config/replaces_self.yaml
    [
      "domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name: self\n          unit: second\n          requests_per_unit: 5\n",
      "replaces should not contain name of same descriptor",
    ],
    // share_threshold without a wildcard (config_impl.go loadDescriptors)
    [
      "domain: d\ndescriptors:\n  - key: k\n    value: v\n    share_threshold: true\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n",
      "share_threshold can only be used with wildcard values",
    ],
    // a unit the service cannot count in (unit_multiplier.yaml's key is not one ratelimit knows either)
    [
      "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: fortnight\n      requests_per_unit: 1\n",
      "invalid rate limit unit 'fortnight'",
    ],
    [
      "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n      requests_per_unit: -1\n",
      "into uint32",
    ],
    ["domain: d\ndescriptors: [\n", "error loading config file"],
    ["domain: a\n---\ndomain: a\n", "duplicate domain 'a' in config file"],
  ])("%j", (yaml, message) => {
    rejects(yaml, message);
  });

  it("names the file and line of the problem", () => {
    expect(
      rejects(
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: fortnight\n      requests_per_unit: 1\n",
        "case.yaml:5",
      ),
    ).toContain("descriptors[0].rate_limit.unit");
  });
});

describe("parseRateLimitConfig accepts what ratelimit accepts", () => {
  it("reads replaces under rate_limit, units up to year, shadow_mode, unlimited, detailed_metric, value_to_metric, share_threshold", () => {
    const [c] = parseRateLimitConfig(`
domain: edge
descriptors:
  - key: a
    rate_limit: { unit: SECOND, requests_per_unit: 1 }
  - key: b
    rate_limit: { unit: week, requests_per_unit: 1 }
  - key: c
    rate_limit: { unit: month, requests_per_unit: 1 }
  - key: d
    rate_limit: { unit: year, requests_per_unit: 1, name: yearly, replaces: [{ name: other }] }
    shadow_mode: true
    detailed_metric: true
    value_to_metric: true
  - key: e
    rate_limit: { unlimited: true }
  - key: files
    value: files/*
    share_threshold: true
    rate_limit: { unit: minute, requests_per_unit: 100 }
`);
    expect(c?.domain).toBe("edge");
    expect(c?.descriptors).toHaveLength(6);
  });

  it("reads several domains from one file separated by --- (a meshlet extension)", () => {
    const c = parseRateLimitConfig("domain: a\n---\ndomain: b\ndescriptors:\n  - key: k\n");
    expect(c.map((x) => x.domain)).toEqual(["a", "b"]);
  });

  it("answers Envoy with the unit it configured, WEEK (7) included", () => {
    const res = toRateLimitResponse({
      domain: "d",
      overallCode: "OK",
      statuses: [
        {
          code: "OK",
          currentLimit: { requestsPerUnit: 1, unit: "week" },
          limitRemaining: 0,
          durationUntilResetSeconds: 1,
        },
      ],
      headers: {},
      adapterFailures: [],
      time: 0,
      durationMs: 0,
    });
    expect(res.statuses[0]?.currentLimit?.unit).toBe(7);
  });

  it("loads a rate_limit-less descriptor (a whitelist) and ratelimit's basic_config.yaml", () => {
    expect(() => parseRateLimitConfig(BASIC_CONFIG)).not.toThrow();
  });

  it("keeps keys ratelimit accepts but ignores, and says so", () => {
    const warnings: string[] = [];
    const [c] = parseRateLimitConfig(
      "domain: d\ndescriptors:\n  - key: k\n    replaces:\n      - name: x\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n",
      "case.yaml",
      { onWarning: (w) => warnings.push(w) },
    );
    expect(c?.domain).toBe("d");
    expect(warnings[0]).toMatch(
      /case\.yaml:\d+: key 'replaces' has no effect on a descriptor \(write it under rate_limit\)/,
    );
  });
});

// envoyproxy/ratelimit test/config/basic_config.yaml, and TestBasicConfig's lookups.
const BASIC_CONFIG = `
domain: test-domain
descriptors:
  - key: key1
    value: value1
    descriptors:
      - key: subkey1
        rate_limit:
          unit: second
          requests_per_unit: 5
      - key: subkey1
        value: subvalue1
        rate_limit:
          unit: second
          requests_per_unit: 10
  - key: key2
    rate_limit:
      unit: minute
      requests_per_unit: 20
  - key: key2
    value: value2
    rate_limit:
      unit: minute
      requests_per_unit: 30
  - key: key2
    value: value3
  - key: key3
    rate_limit:
      unit: hour
      requests_per_unit: 1
  - key: key4
    rate_limit:
      unit: day
      requests_per_unit: 1
  - key: key5
    value: value5
    rate_limit:
      unit: day
      requests_per_unit: 15
    descriptors:
      - key: subkey5
        value: subvalue5
        rate_limit:
          unit: day
          requests_per_unit: 25
`;

describe("the descriptor lookup is ratelimit's GetLimit", () => {
  const engine = new PolicyEngine({ rateLimits: parseRateLimitConfig(BASIC_CONFIG) });
  const limit = async (...kv: [string, string][]) => {
    const r = await engine.rateLimiter.shouldRateLimit({
      domain: "test-domain",
      descriptors: [{ entries: kv.map(([key, value]) => ({ key, value })) }],
    });
    const l = r.statuses[0]?.currentLimit;
    return l && `${l.requestsPerUnit}/${l.unit}`;
  };

  it.each([
    [[["key1", "something"]], undefined],
    [[["key1", "value1"]], undefined],
    [
      [
        ["key2", "value2"],
        ["subkey", "subvalue"],
      ],
      undefined,
    ],
    [
      [
        ["key5", "value5"],
        ["subkey5", "subvalue"],
      ],
      undefined,
    ],
    [
      [
        ["key1", "value1"],
        ["subkey1", "something"],
      ],
      "5/second",
    ],
    [
      [
        ["key1", "value1"],
        ["subkey1", "subvalue1"],
      ],
      "10/second",
    ],
    [[["key2", "something"]], "20/minute"],
    [[["key2", "value2"]], "30/minute"],
    [[["key2", "value3"]], undefined],
    [[["key3", "foo"]], "1/hour"],
    [[["key4", "foo"]], "1/day"],
  ] as [[string, string][], string | undefined][])("%j → %s", async (entries, expected) => {
    expect(await limit(...entries)).toBe(expected);
  });

  it("matches wildcard values (test/config/wildcard.yaml): a trailing * is a prefix", async () => {
    const wild = new PolicyEngine({
      rateLimits: parseRateLimitConfig(
        "domain: w\ndescriptors:\n  - key: wild\n    value: foo*\n    rate_limit:\n      unit: minute\n      requests_per_unit: 20\n  - key: noWild\n    value: foo\n    rate_limit:\n      unit: minute\n      requests_per_unit: 20\n",
      ),
    });
    const check = async (key: string, value: string) =>
      (await wild.rateLimiter.shouldRateLimit({ domain: "w", descriptors: [{ entries: [{ key, value }] }] }))
        .statuses[0]?.currentLimit?.requestsPerUnit;
    expect(await check("wild", "foo1")).toBe(20);
    expect(await check("wild", "foo")).toBe(20);
    expect(await check("wild", "bar")).toBeUndefined();
    expect(await check("noWild", "foo1")).toBeUndefined();
  });
});

describe("ratelimit semantics of newer keys", () => {
  const engine = (yaml: string) =>
    new PolicyEngine({ clock: { now: () => Date.UTC(2026, 0, 1) }, rateLimits: parseRateLimitConfig(yaml) });
  const hit = async (e: PolicyEngine, domain: string, key: string, value: string) =>
    (await e.rateLimiter.shouldRateLimit({ domain, descriptors: [{ entries: [{ key, value }] }] }))
      .statuses[0];

  // test/config/share_threshold.yaml: every value a share_threshold wildcard matches counts
  // against one counter; without it, each value has its own.
  it("share_threshold: values matching one wildcard share its counter", async () => {
    const shared = engine(
      "domain: s\ndescriptors:\n  - key: files\n    value: files/*\n    share_threshold: true\n    rate_limit:\n      unit: minute\n      requests_per_unit: 2\n",
    );
    expect((await hit(shared, "s", "files", "files/a"))?.code).toBe("OK");
    expect((await hit(shared, "s", "files", "files/b"))?.code).toBe("OK");
    expect((await hit(shared, "s", "files", "files/c"))?.code).toBe("OVER_LIMIT");
    const apart = engine(
      "domain: s\ndescriptors:\n  - key: files\n    value: files/*\n    rate_limit:\n      unit: minute\n      requests_per_unit: 2\n",
    );
    for (const v of ["files/a", "files/b", "files/c"])
      expect((await hit(apart, "s", "files", v))?.code).toBe("OK");
  });

  it("wildcards anywhere in a value (share_threshold.yaml's /api*v1), exact values first", async () => {
    const e = engine(
      "domain: m\ndescriptors:\n  - key: route\n    value: /api*v1\n    rate_limit:\n      unit: minute\n      requests_per_unit: 5\n  - key: route\n    value: /api/x/v1\n    rate_limit:\n      unit: minute\n      requests_per_unit: 50\n",
    );
    expect((await hit(e, "m", "route", "/api/users/v1"))?.currentLimit?.requestsPerUnit).toBe(5);
    expect((await hit(e, "m", "route", "/api/x/v1"))?.currentLimit?.requestsPerUnit).toBe(50);
    expect((await hit(e, "m", "route", "/api/users/v2"))?.currentLimit).toBeUndefined();
  });

  it("counts week, month and year windows as ratelimit's UnitToDivider (7, 30, 365 days)", async () => {
    const e = engine(
      "domain: u\ndescriptors:\n  - key: w\n    rate_limit: { unit: week, requests_per_unit: 1 }\n  - key: mo\n    rate_limit: { unit: month, requests_per_unit: 1 }\n  - key: y\n    rate_limit: { unit: year, requests_per_unit: 1 }\n",
    );
    const now = Date.UTC(2026, 0, 1) / 1000;
    for (const [key, seconds] of [
      ["w", 604_800],
      ["mo", 2_592_000],
      ["y", 31_536_000],
    ] as const) {
      const s = await hit(e, "u", key, "x");
      expect(s?.durationUntilResetSeconds).toBe(seconds - (now % seconds));
      expect((await hit(e, "u", key, "x"))?.code).toBe("OVER_LIMIT");
    }
  });
});
