import { KubeConfig } from "@kubernetes/client-node";
import { BehaviorSubject, filter, firstValueFrom, type Observable, tap } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publishRootCert, type RootCertEvent, type RootCertPublisher } from "../src/index.js";
import { createTestCa, type TestCa } from "./support/certs.js";
import { FakeKubeApi } from "./support/fake-kube-api.js";

// publishRootCert against FakeKubeApi (test/support/fake-kube-api.ts): a fake, since no Kubernetes
// API server can run here. It speaks the REST shapes the publisher relies on (list, watch, create,
// replace, Status errors). The expected behaviour is istiod's namespace controller
// (pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go) and security/pkg/k8s
// InsertDataToConfigMap.

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
    users: [{ name: "meshletd", token: "t0ken" }],
    contexts: [{ name: "fake", cluster: "fake", user: "meshletd" }],
    currentContext: "fake",
  });
  return kc;
}

const until = (events$: Observable<RootCertEvent>, predicate: (e: RootCertEvent) => boolean) =>
  firstValueFrom(events$.pipe(filter(predicate)));

/** Records every event in `seen` and resolves once `done(seen)` holds. */
const record = (
  events$: Observable<RootCertEvent>,
  seen: RootCertEvent[],
  done: (seen: RootCertEvent[]) => boolean,
) =>
  firstValueFrom(
    events$.pipe(
      tap((e) => seen.push(e)),
      filter(() => done(seen)),
    ),
  );
const namespacesOf = (seen: RootCertEvent[], type: RootCertEvent["type"]) =>
  new Set(
    seen.flatMap((e) =>
      e.type === type && "namespace" in e && e.namespace !== undefined ? [e.namespace] : [],
    ),
  );

describe("publishRootCert", () => {
  let api: FakeKubeApi;
  let ca1: TestCa;
  let ca2: TestCa;
  let publisher: RootCertPublisher | undefined;

  beforeEach(async () => {
    api = await new FakeKubeApi().start();
    ca1 = createTestCa("root one");
    ca2 = createTestCa("root two");
  });
  afterEach(async () => {
    await publisher?.stop();
    publisher = undefined;
    await api.close();
    ca1.cleanup();
    ca2.cleanup();
  });

  function start(bundle$: Observable<string | { roots: readonly string[] }>) {
    publisher = publishRootCert({ kubeConfig: kubeConfig(api.url), trustBundle$: bundle$, retryBaseMs: 10 });
    return publisher;
  }

  it("publishes istio-ca-root-cert in every namespace but the ignored ones, and in new namespaces", async () => {
    for (const ns of ["default", "shop", "kube-system", "kube-public", "kube-node-lease"])
      api.putNamespace(ns);
    const p = start(new BehaviorSubject(ca1.caCert));
    const seen: RootCertEvent[] = [];
    await record(p.events$, seen, (s) => namespacesOf(s, "created").size === 3);
    expect([...namespacesOf(seen, "created")].sort()).toEqual(["default", "kube-system", "shop"]);
    const cm = api.configMap("shop", "istio-ca-root-cert");
    expect(cm?.data).toEqual({ "root-cert.pem": ca1.caCert });
    expect(cm?.metadata.labels).toEqual({ "istio.io/config": "true" });
    expect(api.configMap("kube-public", "istio-ca-root-cert")).toBeUndefined();

    const later = until(p.events$, (e) => e.type === "created" && e.namespace === "payments");
    api.putNamespace("payments");
    await later;
    expect(api.configMap("payments", "istio-ca-root-cert")?.data).toEqual({ "root-cert.pem": ca1.caCert });
  });

  it("rolls a new trust bundle out to every namespace (both roots during a rotation, from @meshlet/ca's TrustBundle shape)", async () => {
    api.putNamespace("a");
    api.putNamespace("b");
    const bundle$ = new BehaviorSubject<string | { roots: readonly string[] }>(ca1.caCert);
    const p = start(bundle$);
    await until(p.events$, (e) => e.type === "created" && e.namespace === "b");
    const seen: RootCertEvent[] = [];
    const both = record(p.events$, seen, (s) => namespacesOf(s, "updated").size === 2);
    bundle$.next({ roots: [ca2.caCert.trimEnd(), ca1.caCert] });
    await both;
    expect(
      (api.configMap("a", "istio-ca-root-cert")?.data as Record<string, string> | undefined)?.[
        "root-cert.pem"
      ],
    ).toBe(`${ca2.caCert.trimEnd()}\n${ca1.caCert}`);
  });

  it("repairs a ConfigMap someone edited, keeping their other keys, and recreates a deleted one", async () => {
    api.putNamespace("shop");
    const p = start(new BehaviorSubject(ca1.caCert));
    await until(p.events$, (e) => e.type === "created");
    const repaired = until(p.events$, (e) => e.type === "updated" && e.namespace === "shop");
    api.putConfigMap("shop", "istio-ca-root-cert", { "root-cert.pem": "tampered", "notes.txt": "hello" });
    await repaired;
    expect(api.configMap("shop", "istio-ca-root-cert")?.data).toEqual({
      "root-cert.pem": ca1.caCert,
      "notes.txt": "hello",
    });
    const recreated = until(p.events$, (e) => e.type === "created" && e.namespace === "shop");
    api.deleteConfigMap("shop", "istio-ca-root-cert");
    await recreated;
    expect(api.configMap("shop", "istio-ca-root-cert")?.data).toEqual({ "root-cert.pem": ca1.caCert });
  });

  it("skips terminating and forbidden namespaces without retrying, and retries server errors", async () => {
    api.putNamespace("leaving", "Terminating");
    api.putNamespace("locked");
    api.forbidden.add("locked");
    api.putNamespace("flaky");
    api.failWrites(2);
    const seen: RootCertEvent[] = [];
    const p = start(new BehaviorSubject(ca1.caCert));
    const has = (type: RootCertEvent["type"], ns: string) =>
      seen.some((e) => e.type === type && "namespace" in e && e.namespace === ns);
    const settled = record(
      p.events$,
      seen,
      (s) =>
        has("created", "flaky") &&
        has("skipped", "locked") &&
        s.filter((x) => x.type === "error").length === 2,
    );
    await settled;
    const about = (ns: string) =>
      seen.filter(
        (e) =>
          "namespace" in e && e.namespace === ns && !("reason" in e && e.reason === "no trust bundle yet"),
      );
    expect(about("leaving").map((e) => e.type)).toEqual(["skipped"]);
    expect(about("leaving")[0]).toMatchObject({ reason: "namespace is terminating" });
    // Forbidden is final: after the 403 nothing more is sent for that namespace.
    expect(about("locked").at(-1)).toMatchObject({
      type: "skipped",
      reason: "forbidden: check meshletd's RBAC",
    });
    const lockedErrors = about("locked").filter((e) => e.type === "error").length;
    expect(
      api.requests.filter((r) => r.method === "POST" && r.path === "/api/v1/namespaces/locked/configmaps"),
    ).toHaveLength(lockedErrors + 1);
    // Two writes failed with HTTP 500 (whichever namespaces got them) and were retried.
    const errors = seen.filter((e) => e.type === "error");
    expect(errors.map((e) => e.type === "error" && e.reason)).toEqual([
      "HTTP 500 InternalError: etcdserver: request timed out",
      "HTTP 500 InternalError: etcdserver: request timed out",
    ]);
    expect(api.configMap("flaky", "istio-ca-root-cert")?.data).toEqual({ "root-cert.pem": ca1.caCert });
  });
});
