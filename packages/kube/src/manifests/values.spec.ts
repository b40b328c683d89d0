import { describe, expect, it } from "vitest";
import { defaultValues, VALUE_KEYS, valuesFromSets } from "./values.js";

describe("valuesFromSets", () => {
  it("sets values by path, parsing each by its kind", () => {
    const v = valuesFromSets([
      "meshletd.replicas=3",
      "meshletd.autoscale.enabled=false",
      "global.imagePullSecrets=acr-pull,other",
      "meshletd.nodeSelector=agentpool=system,kubernetes.io/os=linux",
      "gateway.service.azureInternal=true",
      "proxy.resources.limits.memory=2Gi",
    ]);
    expect(v.meshletd.replicas).toBe(3);
    expect(v.meshletd.autoscale.enabled).toBe(false);
    expect(v.global.imagePullSecrets).toEqual(["acr-pull", "other"]);
    expect(v.meshletd.nodeSelector).toEqual({ agentpool: "system", "kubernetes.io/os": "linux" });
    expect(v.gateway.service.azureInternal).toBe(true);
    expect(v.proxy.resources.limits.memory).toBe("2Gi");
    // The defaults are not touched.
    expect(defaultValues().meshletd.replicas).toBe(2);
  });

  it("refuses an unknown key and lists every valid one", () => {
    expect(() => valuesFromSets(["meshletd.replica=3"])).toThrow(
      /unknown value "meshletd\.replica"; valid keys:\n {2}namespace\n/,
    );
    try {
      valuesFromSets(["pilot.enabled=true"]);
    } catch (error) {
      for (const key of VALUE_KEYS) expect((error as Error).message).toContain(`\n  ${key}`);
    }
  });

  it("says what a value should have been", () => {
    expect(() => valuesFromSets(["meshletd.replicas=two"])).toThrow(
      "--set meshletd.replicas=two: expected an integer from 1 to 100",
    );
    expect(() => valuesFromSets(["global.proxyVersion=1.20.0"])).toThrow("expected one of 1.26.8, 1.27.9");
    expect(() => valuesFromSets(["meshletd.resources.limits.cpu=fast"])).toThrow(
      "expected a Kubernetes quantity",
    );
    expect(() => valuesFromSets(["injection.failurePolicy=fail"])).toThrow("expected one of Ignore, Fail");
    expect(() => valuesFromSets(["gateway.service.loadBalancerSourceRanges=10.0.0.0/8,home"])).toThrow(
      '"home" is not valid',
    );
    expect(() => valuesFromSets(["noequals"])).toThrow("--set noequals: expected key=value");
  });

  it("refuses combinations no single value shows", () => {
    expect(() => valuesFromSets(["meshletd.resources.limits.memory=128Mi"])).toThrow(
      "meshletd.resources.limits.memory (128Mi) is below meshletd.resources.requests.memory (256Mi)",
    );
    expect(() => valuesFromSets(["gateway.autoscale.min=6"])).toThrow(
      "gateway.autoscale.min (6) is above gateway.autoscale.max (5)",
    );
    expect(() => valuesFromSets(["ca.mode=vault"])).toThrow("ca.mode=vault needs ca.vault.address");
  });
});
