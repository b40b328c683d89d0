import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConfigSnapshot, Resource } from "@meshlet/config";
import { type Proxy, parseProxy } from "../proxy/proxy.js";
import { snapshotOf } from "./config.js";

// Test support (not part of the public API): the Bookinfo fixtures of src/envoy/testdata/bookinfo
// (see its README for the upstream file of each), and the proxies of its workloads as Istio's
// agent identifies them.

const DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "envoy", "testdata", "bookinfo");

/** The text of one fixture file. */
export function bookinfoFile(name: string): string {
  return readFileSync(join(DIR, name), "utf8");
}

/**
 * A snapshot of the Bookinfo workloads (`bookinfo.yaml`, `ingressgateway.yaml`) plus the named
 * Istio config fixtures and any extra YAML (resources without a namespace land in `default`).
 */
export function bookinfoSnapshot(
  files: readonly string[] = [],
  extraYaml = "",
  raw: readonly Resource[] = [],
): ConfigSnapshot {
  const docs = ["bookinfo.yaml", "ingressgateway.yaml", ...files].map((f) =>
    withDefaultNamespace(bookinfoFile(f)),
  );
  return snapshotOf([...docs, withDefaultNamespace(extraYaml)].join("\n---\n"), { raw });
}

/**
 * {@link bookinfoSnapshot} with every Bookinfo workload proxyless: its Pods carry Istio's
 * `inject.istio.io/templates: grpc-agent` annotation (no sidecar; the application is the xDS client).
 */
export function proxylessBookinfoSnapshot(files: readonly string[] = [], extraYaml = ""): ConfigSnapshot {
  const workloads = bookinfoFile("bookinfo.yaml").replace(
    /^(kind: Pod\nmetadata:\n)/gm,
    "$1  annotations:\n    inject.istio.io/templates: grpc-agent\n",
  );
  const docs = [workloads, ...files.map(bookinfoFile)].map(withDefaultNamespace);
  return snapshotOf([...docs, withDefaultNamespace(extraYaml)].join("\n---\n"));
}

/** Adds `namespace: default` to documents that name none (as `kubectl apply` in `default` does). */
function withDefaultNamespace(yaml: string): string {
  return yaml
    .split(/^---\s*$/m)
    .map((doc) =>
      /^\s{2}namespace:/m.test(doc) || !/^metadata:/m.test(doc)
        ? doc
        : doc.replace(/^metadata:\n/m, "metadata:\n  namespace: default\n"),
    )
    .join("---\n");
}

/** The sidecar proxy of a pod, with the node id and metadata Istio's agent sends. */
export function sidecarOf(
  pod: string,
  namespace: string,
  ip: string,
  labels: Record<string, string>,
  serviceAccount: string,
): Proxy {
  return parseProxy({
    id: `sidecar~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: labels,
      SERVICE_ACCOUNT: serviceAccount,
      INSTANCE_IPS: ip,
      ISTIO_VERSION: "1.27.0",
    },
  });
}

/** The Bookinfo sidecars and the ingress gateway. */
export const BookinfoProxies = {
  productpage: () =>
    sidecarOf(
      "productpage-v1-0",
      "default",
      "10.244.1.10",
      { app: "productpage", version: "v1" },
      "bookinfo-productpage",
    ),
  details: () =>
    sidecarOf(
      "details-v1-0",
      "default",
      "10.244.1.11",
      { app: "details", version: "v1" },
      "bookinfo-details",
    ),
  ratings: () =>
    sidecarOf(
      "ratings-v1-0",
      "default",
      "10.244.1.12",
      { app: "ratings", version: "v1" },
      "bookinfo-ratings",
    ),
  reviewsV1: () =>
    sidecarOf(
      "reviews-v1-0",
      "default",
      "10.244.1.13",
      { app: "reviews", version: "v1" },
      "bookinfo-reviews",
    ),
  reviewsV2: () =>
    sidecarOf(
      "reviews-v2-0",
      "default",
      "10.244.1.14",
      { app: "reviews", version: "v2" },
      "bookinfo-reviews",
    ),
  ingressgateway: () =>
    parseProxy({
      id: "router~10.244.2.10~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
      metadata: {
        NAMESPACE: "istio-system",
        LABELS: { app: "istio-ingressgateway", istio: "ingressgateway" },
        SERVICE_ACCOUNT: "istio-ingressgateway-service-account",
        INSTANCE_IPS: "10.244.2.10",
        ISTIO_VERSION: "1.27.0",
      },
    }),
} as const;

/** Policies of Istio's security tasks on Bookinfo (istio.io tasks/security/authentication/authn-policy, authorization/authz-http). */
export const BookinfoPolicies = {
  /** Namespace-wide STRICT mTLS in `default`. */
  strict: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  mtls:
    mode: STRICT
`,
  /** GET on productpage for the ingress gateway's identity only. */
  productpageViewer: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
    to:
    - operation:
        methods: ["GET"]
`,
} as const;
