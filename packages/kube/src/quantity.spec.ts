import { describe, expect, it } from "vitest";
import { canonicalQuantity, cpuCores, parseQuantity } from "./quantity.js";

// Expected canonical forms are Kubernetes' (apimachinery resource.Quantity String()); the first two
// are the ones istio/istio pkg/kube/inject/testdata/inject/traffic-annotations.yaml.injected shows
// for `sidecar.istio.io/proxyCPU: 4000m` and Istio's default proxy resources.
describe("canonicalQuantity", () => {
  it.each([
    ["4000m", "4"],
    ["100m", "100m"],
    ["2", "2"],
    ["0.5", "500m"],
    ["1.5", "1500m"],
    ["1000", "1k"],
    ["128Mi", "128Mi"],
    ["1024Mi", "1Gi"],
    ["1.5Gi", "1536Mi"],
    ["0.5Ki", "512"],
    ["1e3", "1e3"],
    ["0", "0"],
    ["0.0000000001", "1n"],
  ])("%s becomes %s", (input, expected) => {
    expect(canonicalQuantity(input)).toBe(expected);
  });

  it("refuses what is not a quantity, naming the field", () => {
    expect(() => canonicalQuantity("2 cores", "sidecar.istio.io/proxyCPU")).toThrow(
      /sidecar\.istio\.io\/proxyCPU: "2 cores" is not a Kubernetes quantity/,
    );
    expect(() => parseQuantity("")).toThrow(/not a Kubernetes quantity/);
    expect(() => parseQuantity("1Gb")).toThrow(/not a Kubernetes quantity/);
  });
});

describe("cpuCores", () => {
  it("rounds up to whole CPUs", () => {
    expect(cpuCores("100m")).toBe(1);
    expect(cpuCores("2")).toBe(2);
    expect(cpuCores("2500m")).toBe(3);
    expect(cpuCores("4000m")).toBe(4);
  });
});
