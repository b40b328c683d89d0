import { Snapshot } from "@meshlet/xds";
import { expect } from "vitest";
import type { EnvoyGeneratorOptions } from "../envoy/context.js";
import { envoySnapshotInput, generateEnvoy } from "../envoy/generate.js";
import { envoyRegistry } from "../envoy/istio-extensions.js";
import { type EnvoyResources, referencedEnvoyClusters } from "../envoy/resources.js";
import type { WalkError, WalkResult } from "../explain/walker.js";
import { type Proxy, parseProxy } from "../proxy/proxy.js";
import { PushContext, type PushContextInit } from "../push/push-context.js";
import { sidecarOf } from "./bookinfo.js";
import { snapshotOf } from "./config.js";

// Test support (not part of the public API): the harness of the walk tests, after Istio's
// pilot/pkg/simulation (traffic.go `Result.Matches`) and pilot/pkg/networking/core
// `runSimulationTest` (config from YAML, generated config validated, then calls walked).

/** What a walk is expected to reach (Istio `simulation.Result`). */
export interface Want {
  readonly error?: WalkError;
  readonly listenerMatched?: string;
  readonly filterChainMatched?: string;
  readonly routeConfigMatched?: string;
  readonly virtualHostMatched?: string;
  readonly routeMatched?: string;
  readonly clusterMatched?: string;
  /** Compare every field, empty ones included (Istio `StrictMatch`). */
  readonly strict?: boolean;
}

const FIELDS = [
  "listenerMatched",
  "filterChainMatched",
  "routeConfigMatched",
  "virtualHostMatched",
  "routeMatched",
  "clusterMatched",
] as const;

/**
 * Istio `Result.Matches`: the error always compares; the other fields only when the expectation
 * sets them, unless strict.
 */
export function expectWalk(got: WalkResult, want: Want, name = ""): void {
  const pick = (r: WalkResult | Want, all: boolean) => {
    const o: Record<string, string | undefined> = { error: r.error };
    for (const f of FIELDS) if (all || want[f] !== undefined) o[f] = r[f] === "" ? undefined : r[f];
    return o;
  };
  expect(pick(got, want.strict === true), name).toEqual(pick(want, want.strict === true));
}

/** Checks Istio's harness makes on every generated config, plus ours: Envoy's field rules and no dangling cluster. */
export function expectWellFormed(r: EnvoyResources): void {
  const snap = Snapshot.create(envoySnapshotInput(r), { registry: envoyRegistry });
  snap.consistent();
  const clusters = new Set(r.clusters.map((c) => c.name));
  for (const name of referencedEnvoyClusters(r.listeners, r.routes))
    expect(clusters, `cluster ${name}`).toContain(name);
}

/** Istio's simulation default proxy: a sidecar at 1.1.1.1 in `default` (labels as given). */
export function simSidecar(
  labels: Record<string, string> = {},
  namespace = "default",
  ip = "1.1.1.1",
): Proxy {
  return sidecarOf("app-0", namespace, ip, labels, "default");
}

/** Istio's `runGatewayTest` proxy: a router in istio-system labelled `istio: ingressgateway`. */
export function simGateway(ip = "1.1.1.1"): Proxy {
  return parseProxy({
    id: `router~${ip}~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local`,
    metadata: { NAMESPACE: "istio-system", LABELS: { istio: "ingressgateway" }, ISTIO_VERSION: "1.27.0" },
  });
}

/** Generates a proxy's config from YAML and checks it is well formed (Istio `runSimulationTest`). */
export function simulate(
  yaml: string,
  proxy: Proxy,
  mesh: PushContextInit["mesh"] = {},
  options: EnvoyGeneratorOptions = {},
): EnvoyResources {
  const push = PushContext.create({ snapshot: snapshotOf(yaml), mesh });
  const r = generateEnvoy(proxy, push, options);
  expectWellFormed(r);
  return r;
}

/** Istio's `createGateway`: a Gateway selecting `istio: ingressgateway` with the given servers (YAML). */
export function createGateway(name: string, namespace: string, ...servers: string[]): string {
  const body = servers.map((s) => `  -\n${s.trim().replace(/^/gm, "    ")}`).join("\n");
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: "${name || "default"}"
  namespace: "${namespace || "default"}"
spec:
  selector:
    istio: ingressgateway
  servers:
${body}
---
`;
}
