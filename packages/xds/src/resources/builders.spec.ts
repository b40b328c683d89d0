import { describe, expect, it } from "vitest";
import * as xds from "../index.js";
import { cluster, listener, loadAssignment, route, routeConfiguration } from "./builders.js";
import { clusterEndpointName, listenerRouteNames } from "./references.js";

describe("resources builders", () => {
  it("listener() builds a gRPC API listener without an address and an Envoy listener with one", () => {
    const api = listener({ name: "greeter", routeConfigName: "r1" });
    expect(api.apiListener).toBeDefined();
    expect(listenerRouteNames(api)).toEqual(["r1"]);
    const envoy = listener({ name: "ingress", routeConfigName: "r2", address: "0.0.0.0", port: 8080 });
    expect(envoy.address?.address.case).toBe("socketAddress");
    expect(listenerRouteNames(envoy)).toEqual(["r2"]);
    expect(() => listener({ name: "half", routeConfigName: "r", address: "0.0.0.0" })).toThrow(
      /both address and port/,
    );
  });

  it("route() is routeConfiguration()", () => {
    expect(route).toBe(routeConfiguration);
    expect(() =>
      route({ name: "r", virtualHosts: [{ name: "v", domains: ["*"], routes: [{ weightedClusters: [] }] }] }),
    ).toThrow(/weightedClusters must not be empty/);
  });

  it("gives every locality a weight (gRPC drops localities without one) and validates ports", () => {
    const cla = loadAssignment({
      clusterName: "c",
      endpoints: [
        { address: "10.0.0.1", port: 80, locality: { zone: "a" } },
        { address: "10.0.0.2", port: 80, locality: { zone: "b" }, weight: 3 },
      ],
    });
    expect(cla.endpoints.map((l) => l.loadBalancingWeight)).toEqual([1, 1]);
    expect(cla.endpoints[1]?.lbEndpoints[0]?.loadBalancingWeight).toBe(3);
    expect(() => loadAssignment({ clusterName: "c", endpoints: [{ address: "x", port: 70000 }] })).toThrow(
      /port 70000/,
    );
  });

  it("names the EDS resource an EDS cluster needs", () => {
    expect(clusterEndpointName(cluster({ name: "c" }))).toBe("c");
    expect(clusterEndpointName(cluster({ name: "c", edsServiceName: "c-eds" }))).toBe("c-eds");
    expect(
      clusterEndpointName(
        cluster({ name: "s", type: "STATIC", endpoints: [{ address: "10.0.0.1", port: 1 }] }),
      ),
    ).toBeUndefined();
  });

  it("exports the test client as `testing` from the package root", () => {
    expect(typeof xds.testing.AdsClient.connect).toBe("function");
  });
});
