import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { BehaviorSubject, type Observable } from "rxjs";
import { describe, expect, it } from "vitest";
import * as resources from "../resources/index.js";
import { type ResourceSet, Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import type { ConfigWatcher } from "./config-watcher.js";
import { LinearCache } from "./linear-cache.js";
import { MuxCache } from "./mux-cache.js";
import { SnapshotCache } from "./snapshot-cache.js";
import { type CacheWatch, listenTo, type WatchListener } from "./watch-listener.js";

const node = (id: string, cluster = "") => create(NodeSchema, { id, cluster });

/** A fast-path listener that records the names of each set it is told. */
function listener(onNext?: () => void): WatchListener & { seen: string[][] } {
  const seen: string[][] = [];
  return {
    seen,
    next(set: ResourceSet) {
      seen.push([...set.resources.keys()].sort());
      onNext?.();
    },
  };
}

/** The same, through ConfigWatcher.watch (the Observable every cache must keep offering). */
function subscribed(cache: ConfigWatcher, n: ReturnType<typeof node>, typeUrl: string) {
  const seen: string[][] = [];
  const sub = cache.watch(n, typeUrl).subscribe((set) => seen.push([...set.resources.keys()].sort()));
  return { seen, stop: () => sub.unsubscribe() };
}

function fast(
  cache: ConfigWatcher,
  n: ReturnType<typeof node>,
  typeUrl: string,
  l: WatchListener,
): CacheWatch {
  const watch = listenTo(cache, n, typeUrl, l);
  if (!watch) throw new Error(`no fast path for ${typeUrl}`);
  return watch;
}

const clusters = (...names: string[]) =>
  Snapshot.create({ clusters: names.map((name) => resources.cluster({ name })) });

describe("SnapshotCache's listener fast path", () => {
  it("tells a listener what a watch() subscriber is told, and nothing after unwatch", () => {
    const cache = new SnapshotCache({ nodeKey: (n) => n.cluster });
    cache.setSnapshot("svc", clusters("c1"));
    const l = listener();
    const watch = fast(cache, node("pod-1", "svc"), TypeUrl.Cluster, l);
    const s = subscribed(cache, node("pod-2", "svc"), TypeUrl.Cluster);
    cache.setSnapshot("svc", clusters("c1", "c2"));
    // Only listeners change: the CDS watchers stay quiet.
    cache.setSnapshot(
      "svc",
      Snapshot.create({
        clusters: [resources.cluster({ name: "c1" }), resources.cluster({ name: "c2" })],
        listeners: [resources.listener({ name: "l1", routeConfigName: "r1" })],
      }),
    );
    expect(l.seen).toEqual([["c1"], ["c1", "c2"]]);
    expect(l.seen).toEqual(s.seen);
    watch.unwatch(l);
    cache.setSnapshot("svc", clusters("c3"));
    expect(l.seen).toHaveLength(2);
    expect(s.seen.at(-1)).toEqual(["c3"]);
  });

  it("tells watchers from a copy: one that unwatches itself while told makes no other miss the change", () => {
    const cache = new SnapshotCache();
    let own: CacheWatch | undefined;
    const quitter = listener(() => own?.unwatch(quitter));
    own = fast(cache, node("a"), TypeUrl.Cluster, quitter);
    const stays = listener();
    const stay = fast(cache, node("a"), TypeUrl.Cluster, stays);
    cache.setSnapshot("a", clusters("c1"));
    cache.setSnapshot("a", clusters("c2"));
    expect(quitter.seen).toEqual([["c1"]]);
    expect(stays.seen).toEqual([["c1"], ["c2"]]);
    // The last listener gone and the snapshot cleared, the key is forgotten: a new listener starts
    // with nothing and gets the next snapshot.
    stay.unwatch(stays);
    cache.clearSnapshot("a");
    expect(cache.keys()).toEqual([]);
    const late = listener();
    fast(cache, node("a"), TypeUrl.Cluster, late);
    expect(late.seen).toEqual([]);
    cache.setSnapshot("a", clusters("c3"));
    expect(late.seen).toEqual([["c3"]]);
  });

  it("keeps a type's watchers through one, several and none, fast path and watch() mixed", () => {
    // A key's type holds its one listener itself, an array from the second on, and is dropped
    // when the last one leaves (snapshot-cache.ts KeyEntry): each step must tell the same.
    const cache = new SnapshotCache({ nodeKey: (n) => n.cluster });
    const withEndpoints = (...names: string[]) =>
      Snapshot.create({
        clusters: names.map((name) => resources.cluster({ name })),
        endpoints: names.map((clusterName) => resources.loadAssignment({ clusterName, endpoints: [] })),
      });
    const first = listener();
    const firstWatch = fast(cache, node("pod-1", "svc"), TypeUrl.Cluster, first);
    const second = subscribed(cache, node("pod-2", "svc"), TypeUrl.Cluster);
    const eds = listener();
    fast(cache, node("pod-3", "svc"), TypeUrl.ClusterLoadAssignment, eds);
    cache.setSnapshot("svc", withEndpoints("c1"));
    expect([first.seen, second.seen, eds.seen]).toEqual([[["c1"]], [["c1"]], [["c1"]]]);
    // Back to one listener of the type (the array kept), then a listener not watching: ignored.
    firstWatch.unwatch(first);
    firstWatch.unwatch(listener());
    cache.setSnapshot("svc", withEndpoints("c2"));
    expect([first.seen, second.seen, eds.seen]).toEqual([[["c1"]], [["c1"], ["c2"]], [["c1"], ["c2"]]]);
    // None left: the type is no longer watched, the other type still is.
    second.stop();
    cache.setSnapshot("svc", withEndpoints("c3"));
    expect(second.seen).toHaveLength(2);
    expect(eds.seen.at(-1)).toEqual(["c3"]);
    // Watched again: the current set at once, then each change.
    const again = listener();
    fast(cache, node("pod-1", "svc"), TypeUrl.Cluster, again);
    cache.setSnapshot("svc", withEndpoints("c4"));
    expect(again.seen).toEqual([["c3"], ["c4"]]);
    expect(eds.seen).toEqual([["c1"], ["c2"], ["c3"], ["c4"]]);
  });

  it("does not tell a type's only listener a change after another listener unwatched it", () => {
    const cache = new SnapshotCache();
    let ldsWatch: CacheWatch | undefined;
    const lds = listener();
    // Told first (its type was watched first), it ends the LDS watch before LDS is told.
    const cds = listener(() => ldsWatch?.unwatch(lds));
    fast(cache, node("a"), TypeUrl.Cluster, cds);
    ldsWatch = fast(cache, node("a"), TypeUrl.Listener, lds);
    cache.setSnapshot(
      "a",
      Snapshot.create({
        clusters: [resources.cluster({ name: "c1" })],
        listeners: [resources.listener({ name: "l1", routeConfigName: "r1" })],
      }),
    );
    expect(cds.seen).toEqual([["c1"]]);
    expect(lds.seen).toEqual([]);
  });

  it("does not tell a type's only listener a change after it was unwatched, though a type was added first", () => {
    const cache = new SnapshotCache();
    let ldsWatch: CacheWatch | undefined;
    const lds = listener();
    const rds = listener();
    // Told first, it starts an RDS watch (a new type: the key's watcher arrays are replaced) and
    // then ends the LDS watch before LDS is told.
    const cds = listener(() => {
      if (rds.seen.length > 0) return;
      fast(cache, node("a"), TypeUrl.RouteConfiguration, rds);
      ldsWatch?.unwatch(lds);
    });
    fast(cache, node("a"), TypeUrl.Cluster, cds);
    ldsWatch = fast(cache, node("a"), TypeUrl.Listener, lds);
    cache.setSnapshot(
      "a",
      Snapshot.create({
        clusters: [resources.cluster({ name: "c1" })],
        listeners: [resources.listener({ name: "l1", routeConfigName: "r1" })],
      }),
    );
    expect(cds.seen).toEqual([["c1"]]);
    expect(rds.seen).toEqual([[]]);
    expect(lds.seen).toEqual([]);
  });

  it("tells a subscriber added to a type during a change the same, whether or not a type was added first", () => {
    // What a watch() subscriber added (as a type's second) while another is told gets must not
    // depend on whether the key's watcher arrays were replaced before it came.
    const run = (addTypeFirst: boolean) => {
      const cache = new SnapshotCache();
      const n = node("a");
      const second: string[][] = [];
      let added = false;
      const cds = cache.watch(n, TypeUrl.Cluster).subscribe(() => {
        if (added || cache.getSnapshot("a") === undefined) return;
        added = true;
        if (addTypeFirst) cache.watch(n, TypeUrl.RouteConfiguration).subscribe(() => {});
        cache.watch(n, TypeUrl.Listener).subscribe((set) => second.push([...set.resources.keys()]));
      });
      const first = subscribed(cache, n, TypeUrl.Listener);
      cache.setSnapshot(
        "a",
        Snapshot.create({
          clusters: [resources.cluster({ name: "c1" })],
          listeners: [resources.listener({ name: "l1", routeConfigName: "r1" })],
        }),
      );
      cds.unsubscribe();
      return { first: first.seen, second };
    };
    expect(run(true)).toEqual(run(false));
    expect(run(true).first).toEqual([["l1"]]);
  });

  it("is refused for a subclass that overrides watch(), which must see every watch", () => {
    class Custom extends SnapshotCache {
      override watch(n: ReturnType<typeof node>, typeUrl: string): Observable<ResourceSet> {
        return super.watch(n, typeUrl);
      }
    }
    expect(listenTo(new Custom(), node("a"), TypeUrl.Cluster, listener())).toBeUndefined();
    expect(listenTo(new SnapshotCache(), node("a"), TypeUrl.Cluster, listener())).toBeDefined();
  });
});

describe("LinearCache's listener fast path", () => {
  it("tells the current set at once, then each change; nothing after unwatch or for another type", () => {
    const cache = new LinearCache(TypeUrl.ClusterLoadAssignment);
    cache.update(resources.loadAssignment({ clusterName: "a", endpoints: [] }));
    let own: CacheWatch | undefined;
    const quitter = listener(() => {
      if (quitter.seen.length === 2) own?.unwatch(quitter);
    });
    own = fast(cache, node("x"), TypeUrl.ClusterLoadAssignment, quitter);
    const l = listener();
    const watch = fast(cache, node("y"), TypeUrl.ClusterLoadAssignment, l);
    const s = subscribed(cache, node("z"), TypeUrl.ClusterLoadAssignment);
    const other = listener();
    fast(cache, node("y"), TypeUrl.Cluster, other);
    cache.update(resources.loadAssignment({ clusterName: "b", endpoints: [] }));
    cache.delete("a");
    expect(l.seen).toEqual([["a"], ["a", "b"], ["b"]]);
    expect(s.seen).toEqual(l.seen);
    expect(quitter.seen).toEqual([["a"], ["a", "b"]]);
    watch.unwatch(l);
    cache.set([]);
    expect(l.seen).toHaveLength(3);
    expect(s.seen.at(-1)).toEqual([]);
    expect(other.seen).toEqual([]);
  });
});

describe("MuxCache's listener fast path", () => {
  it("goes through the fast path of the cache serving the type, and is refused for a cache without one", () => {
    const snapshots = new SnapshotCache();
    snapshots.setSnapshot("a", clusters("c1"));
    const endpoints = new LinearCache(TypeUrl.ClusterLoadAssignment);
    // A third-party cache: only watch(), an Observable. It may read names$, so it keeps getting
    // every watch through watch().
    const thirdParty: ConfigWatcher = {
      watch: (_n, typeUrl) => new BehaviorSubject(Snapshot.create({}).resourceSet(typeUrl)),
    };
    const mux = new MuxCache({
      caches: { [TypeUrl.ClusterLoadAssignment]: endpoints, [TypeUrl.Secret]: thirdParty },
      classify: (t) => (t === TypeUrl.Listener ? "nobody" : t),
      fallback: snapshots,
    });
    const cds = listener();
    fast(mux, node("a"), TypeUrl.Cluster, cds);
    const eds = listener();
    fast(mux, node("a"), TypeUrl.ClusterLoadAssignment, eds);
    endpoints.update(resources.loadAssignment({ clusterName: "c1", endpoints: [] }));
    expect(cds.seen).toEqual([["c1"]]);
    expect(eds.seen).toEqual([[], ["c1"]]);
    expect(listenTo(mux, node("a"), TypeUrl.Secret, listener())).toBeUndefined();
  });

  it("watches nothing for a type no cache serves, as watch() does", () => {
    const mux = new MuxCache({ caches: {} });
    const l = listener();
    const watch = fast(mux, node("a"), TypeUrl.Cluster, l);
    watch.unwatch(l);
    expect(l.seen).toEqual([]);
    expect(subscribed(mux, node("a"), TypeUrl.Cluster).seen).toEqual([]);
  });
});
