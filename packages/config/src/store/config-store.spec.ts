import { firstValueFrom, Observable, Subject, VirtualTimeScheduler } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigSnapshot } from "../config-snapshot.js";
import { KindRegistry } from "../kind-registry.js";
import type { ConfigEvent, ConfigSource } from "../sources/config-source.js";
import { MemorySource } from "../sources/memory-source.js";
import type { ConfigStatus } from "./config-status.js";
import { ConfigStore } from "./config-store.js";

const vs = (name: string, host: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name, namespace: "default" },
  spec: { hosts: [host], http: [{ route: [{ destination: { host } }] }], ...extra },
});

const pod = (name: string, labels: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "prod", labels },
  spec: { containers: [{ name: "app" }] },
});

let store: ConfigStore | undefined;
afterEach(() => store?.close());

function collect(s: ConfigStore): { snapshots: ConfigSnapshot[]; statuses: ConfigStatus[] } {
  const snapshots: ConfigSnapshot[] = [];
  const statuses: ConfigStatus[] = [];
  s.snapshots$.subscribe((x) => snapshots.push(x));
  s.status$.subscribe((x) => statuses.push(x));
  return { snapshots, statuses };
}

describe("ConfigStore", () => {
  it("emits nothing until every source has synced, then one snapshot with everything", () => {
    const scheduler = new VirtualTimeScheduler();
    const late = new Subject<ConfigEvent>();
    const lateSource: ConfigSource = { name: "late", events$: late };
    const memory = new MemorySource({ objects: [vs("a", "a")] });
    store = new ConfigStore({ sources: [memory, lateSource], scheduler });
    const { snapshots, statuses } = collect(store.start());
    scheduler.flush();
    expect(snapshots).toHaveLength(0);
    expect(statuses.at(-1)?.sources.map((s) => [s.name, s.synced])).toEqual([
      ["memory", true],
      ["late", false],
    ]);
    late.next({ type: "add", id: "b", object: vs("b", "b"), origin: { source: "late" } });
    late.next({ type: "synced" });
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]?.list("VirtualService").map((r) => r.metadata.name)).toEqual(["a", "b"]);
    expect(statuses.at(-1)?.synced).toBe(true);
  });

  it("coalesces a burst of 1,000 changes into a handful of snapshots holding the final state", () => {
    const scheduler = new VirtualTimeScheduler();
    const memory = new MemorySource();
    store = new ConfigStore({ sources: [memory], scheduler, debounceMs: 100, maxDelayMs: 1000 });
    const { snapshots } = collect(store.start());
    expect(snapshots).toHaveLength(1); // initial, empty
    for (let i = 0; i < 1000; i++) {
      // One change per virtual millisecond: a steady stream, so maxDelayMs must bound the wait.
      scheduler.schedule(() => memory.set(vs(`vs-${i % 50}`, `h${i}`)), i);
    }
    scheduler.flush();
    const after = snapshots.slice(1);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after.length).toBeLessThanOrEqual(3);
    const last = after.at(-1)!;
    expect(last.size).toBe(50);
    expect(last.get("VirtualService", "default", "vs-49")?.spec.hosts).toEqual(["h999"]);
  });

  it("debounces: a change is published debounceMs after the last one, in virtual time", () => {
    const scheduler = new VirtualTimeScheduler();
    const memory = new MemorySource();
    store = new ConfigStore({ sources: [memory], scheduler, debounceMs: 100 });
    const times: number[] = [];
    store.start().snapshots$.subscribe(() => times.push(scheduler.now()));
    scheduler.schedule(() => memory.set(vs("a", "a")), 10);
    scheduler.schedule(() => memory.set(vs("b", "b")), 60);
    scheduler.flush();
    expect(times).toEqual([0, 160]);
  });

  it("keeps the last good version of a resource when an update is invalid, and reports why", async () => {
    const memory = new MemorySource({ objects: [vs("reviews", "reviews")] });
    store = new ConfigStore({ sources: [memory], debounceMs: 1 }).start();
    await store.synced();
    const bad = vs("reviews", "reviews-v2");
    (bad.spec.http[0] as Record<string, unknown>).timeout = "soon";
    memory.set(bad);
    memory.set(vs("ratings", "ratings"));
    const next = await store.waitFor((s) => s.get("VirtualService", "default", "ratings") !== undefined);
    expect(next.get("VirtualService", "default", "reviews")?.spec.hosts).toEqual(["reviews"]);
    const errors = next.diagnostics.filter((d) => d.severity === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: "MC0007",
      source: "memory",
      resource: "VirtualService/default/reviews",
      path: "spec.http[0].timeout",
    });
    const status = await firstValueFrom(store.status$);
    expect(status.errors).toHaveLength(1);
    expect(status.sources[0]).toMatchObject({ name: "memory", resources: 2, errors: 1 });
    // Fixing it replaces the last good version and clears the error.
    memory.set(vs("reviews", "reviews-v2"));
    const fixed = await store.waitFor(
      (s) => s.get("VirtualService", "default", "reviews")?.spec.hosts?.[0] === "reviews-v2",
    );
    expect(fixed.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  it("leaves out a new invalid resource without affecting the others", async () => {
    const memory = new MemorySource({ objects: [vs("a", "a"), { ...vs("b", "b"), spec: { hosts: 7 } }] });
    store = new ConfigStore({ sources: [memory] }).start();
    const snapshot = await store.synced();
    expect(snapshot.list("VirtualService").map((r) => r.metadata.name)).toEqual(["a"]);
    expect(snapshot.diagnostics[0]).toMatchObject({
      resource: "VirtualService/default/b",
      path: "spec.hosts",
    });
  });

  it("lets an earlier source win, and falls back to the later one when the winner is deleted", async () => {
    const override = new MemorySource({ name: "override", objects: [vs("reviews", "from-override")] });
    const base = new MemorySource({
      name: "base",
      objects: [vs("reviews", "from-base"), vs("other", "other")],
    });
    store = new ConfigStore({ sources: [override, base], debounceMs: 1 }).start();
    const first = await store.synced();
    expect(first.get("VirtualService", "default", "reviews")?.spec.hosts).toEqual(["from-override"]);
    expect(first.originOf(first.get("VirtualService", "default", "reviews")!)?.source).toBe("override");
    override.delete("VirtualService", "default", "reviews");
    const next = await store.waitFor((s) => s.version !== first.version);
    expect(next.get("VirtualService", "default", "reviews")?.spec.hosts).toEqual(["from-base"]);
  });

  it("emits immutable snapshots: later changes never alter an earlier one", async () => {
    const memory = new MemorySource({ objects: [vs("a", "a")] });
    store = new ConfigStore({ sources: [memory], debounceMs: 1 }).start();
    const first = await store.synced();
    const a = first.get("VirtualService", "default", "a")!;
    expect(() => {
      (a.spec as { hosts: string[] }).hosts.push("evil");
    }).toThrow(TypeError);
    memory.set(vs("a", "changed"));
    memory.delete("VirtualService", "default", "a");
    memory.set(vs("z", "z"));
    await store.waitFor((s) => s.get("VirtualService", "default", "z") !== undefined);
    expect(first.get("VirtualService", "default", "a")?.spec.hosts).toEqual(["a"]);
    expect(first.size).toBe(1);
  });

  it("indexes VirtualServices by host (short names, FQDNs, wildcards) and workloads by labels", async () => {
    const memory = new MemorySource({
      objects: [
        vs("short", "reviews"),
        vs("wild", "*.example.com"),
        vs("exact", "api.example.com"),
        pod("p1", { app: "reviews", version: "v1" }),
        pod("p2", { app: "reviews", version: "v2" }),
        {
          apiVersion: "networking.istio.io/v1",
          kind: "WorkloadEntry",
          metadata: { name: "vm", namespace: "prod" },
          spec: { address: "10.0.0.1", labels: { app: "reviews", version: "v1" } },
        },
      ],
    });
    store = new ConfigStore({ sources: [memory] }).start();
    const s = await store.synced();
    expect(s.virtualServicesForHost("reviews.default.svc.cluster.local").map((v) => v.metadata.name)).toEqual(
      ["short"],
    );
    expect(s.virtualServicesForHost("reviews", "default").map((v) => v.metadata.name)).toEqual(["short"]);
    expect(s.virtualServicesForHost("api.example.com").map((v) => v.metadata.name)).toEqual([
      "exact",
      "wild",
    ]);
    expect(s.virtualServicesForHost("www.example.com").map((v) => v.metadata.name)).toEqual(["wild"]);
    expect(s.virtualServicesForHost("example.com")).toEqual([]);
    expect(
      s
        .workloadsMatching({ app: "reviews", version: "v1" })
        .map((w) => `${w.resource.kind}/${w.resource.metadata.name}`),
    ).toEqual(["Pod/p1", "WorkloadEntry/vm"]);
    expect(s.workloadsMatching({ app: "reviews" }, "other")).toEqual([]);
  });

  it("reports duplicates inside one source and keeps the first by id", async () => {
    const dupes: ConfigSource = {
      name: "dupes",
      events$: new Observable<ConfigEvent>((sub) => {
        sub.next({
          type: "add",
          id: "b.yaml#x",
          object: vs("x", "second"),
          origin: { source: "dupes", file: "b.yaml", position: { line: 3, column: 1 } },
        });
        sub.next({
          type: "add",
          id: "a.yaml#x",
          object: vs("x", "first"),
          origin: { source: "dupes", file: "a.yaml", position: { line: 1, column: 1 } },
        });
        sub.next({ type: "synced" });
      }),
    };
    store = new ConfigStore({ sources: [dupes] }).start();
    const s = await store.synced();
    expect(s.get("VirtualService", "default", "x")?.spec.hosts).toEqual(["first"]);
    expect(s.diagnostics).toEqual([
      expect.objectContaining({
        code: "MC0005",
        file: "b.yaml",
        line: 3,
        message: expect.stringContaining("a.yaml:1 wins"),
      }),
    ]);
  });

  it("resubscribes to a failed source with backoff, keeping its resources, and drops what the relist no longer has", () => {
    const scheduler = new VirtualTimeScheduler();
    let attempt = 0;
    const flaky: ConfigSource = {
      name: "flaky",
      events$: new Observable<ConfigEvent>((sub) => {
        attempt++;
        if (attempt === 1) {
          sub.next({ type: "add", id: "a", object: vs("a", "a"), origin: { source: "flaky" } });
          sub.next({ type: "add", id: "b", object: vs("b", "b"), origin: { source: "flaky" } });
          sub.next({ type: "synced" });
          scheduler.schedule(() => sub.error(new Error("connection reset")), 500);
        } else {
          sub.next({ type: "add", id: "a", object: vs("a", "a2"), origin: { source: "flaky" } });
          sub.next({ type: "synced" });
        }
      }),
    };
    store = new ConfigStore({ sources: [flaky], scheduler, debounceMs: 10 });
    const { snapshots, statuses } = collect(store.start());
    scheduler.maxFrames = 700;
    scheduler.flush();
    expect(snapshots.at(-1)?.size).toBe(2);
    expect(statuses.at(-1)?.sources[0]).toMatchObject({ connected: false, lastError: "connection reset" });
    expect(statuses.at(-1)?.errors[0]?.code).toBe("MC0006");
    scheduler.maxFrames = Number.POSITIVE_INFINITY;
    scheduler.flush();
    expect(attempt).toBe(2);
    const last = snapshots.at(-1)!;
    expect(last.list("VirtualService").map((v) => v.spec.hosts?.[0])).toEqual(["a2"]);
    expect(statuses.at(-1)?.sources[0]).toMatchObject({ connected: true, synced: true });
    expect(statuses.at(-1)?.errors).toEqual([]);
  });

  it("starts on the first subscription to snapshots$, and start() is idempotent", async () => {
    store = new ConfigStore({ sources: [new MemorySource({ objects: [vs("a", "a")] })] });
    const first = await firstValueFrom(store.snapshots$);
    expect(first.size).toBe(1);
    expect(store.start().current()).toBe(first);
  });

  it("survives a custom schema that throws, reporting it as an error on that resource", async () => {
    const registry = new KindRegistry().register({
      kind: "Flaky",
      group: "example.com",
      versions: ["v1"],
      plural: "flakies",
      namespaced: true,
      schema: {
        "~standard": {
          version: 1,
          vendor: "test",
          validate: () => {
            throw new Error("boom");
          },
        },
      },
    });
    const memory = new MemorySource({
      objects: [
        vs("a", "a"),
        { apiVersion: "example.com/v1", kind: "Flaky", metadata: { name: "f" }, spec: {} },
      ],
    });
    store = new ConfigStore({ sources: [memory], registry }).start();
    const snapshot = await store.synced();
    expect(snapshot.size).toBe(1);
    expect(snapshot.diagnostics[0]).toMatchObject({ code: "MC0004", message: "validation failed: boom" });
  });

  it("refuses two sources with the same name", () => {
    expect(() => new ConfigStore({ sources: [new MemorySource(), new MemorySource()] })).toThrow(
      /INVALID_ARGUMENT/,
    );
  });
});
