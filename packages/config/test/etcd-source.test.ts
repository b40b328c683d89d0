import { Etcd3 } from "etcd3";
import { filter, firstValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigStore, EtcdSource } from "../src/index.js";
import { type EtcdServer, startEtcd } from "./support/etcd-server.js";

// EtcdSource against a real etcd-server (Debian package `etcd-server`) started on loopback by the
// test, with a temporary data dir and free ports; it is stopped and removed afterwards.

const PREFIX = "/meshlet/config/";
const vs = (name: string, host: string) =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: prod}\nspec:\n  hosts: [${host}]\n  http: [{route: [{destination: {host: ${host}}}]}]\n`;

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoint });
}, 60_000);

afterAll(async () => {
  client?.close();
  await etcd?.close();
});

describe("EtcdSource", () => {
  it("lists the prefix, watches puts and deletes, and keeps the last good value of a key", async () => {
    await client.put(`${PREFIX}vs/reviews`).value(vs("reviews", "reviews"));
    await client.put(`${PREFIX}vs/broken`).value("kind: [unclosed");
    await client.put("/elsewhere/ignored").value(vs("ignored", "ignored"));
    const store = new ConfigStore({
      sources: [new EtcdSource({ prefix: PREFIX, etcd: { hosts: etcd.endpoint } })],
      debounceMs: 10,
    }).start();
    try {
      const first = await store.synced();
      expect(first.list("VirtualService").map((r) => r.metadata.name)).toEqual(["reviews"]);
      expect(first.diagnostics).toEqual([
        expect.objectContaining({ code: "MC0001", source: "etcd", file: `${PREFIX}vs/broken` }),
      ]);

      await client.put(`${PREFIX}vs/ratings`).value(
        JSON.stringify({
          apiVersion: "networking.istio.io/v1",
          kind: "VirtualService",
          metadata: { name: "ratings", namespace: "prod" },
          spec: { hosts: ["ratings"], http: [{ route: [{ destination: { host: "ratings" } }] }] },
        }),
      );
      await store.waitFor((s) => s.get("VirtualService", "prod", "ratings") !== undefined);

      // An invalid update keeps the last good version and is reported with line:column in the value.
      await client
        .put(`${PREFIX}vs/reviews`)
        .value(vs("reviews", "reviews").replace("hosts: [reviews]", "hosts: [reviews]\n  tcp: nope"));
      const status = await firstValueFrom(
        store.status$.pipe(filter((s) => s.errors.some((e) => e.code === "MC0004"))),
      );
      expect(status.errors.find((e) => e.code === "MC0004")).toMatchObject({
        file: `${PREFIX}vs/reviews`,
        line: 6,
        path: "spec.tcp",
      });
      expect(store.current()?.get("VirtualService", "prod", "reviews")?.spec.hosts).toEqual(["reviews"]);

      await client.delete().key(`${PREFIX}vs/ratings`);
      const afterDelete = await store.waitFor(
        (s) => s.get("VirtualService", "prod", "ratings") === undefined,
      );
      expect(afterDelete.get("VirtualService", "prod", "reviews")).toBeDefined();
    } finally {
      store.close();
      await client.delete().prefix(PREFIX);
    }
  });

  it("reports the outage while etcd is down and resumes watching from its revision when it is back", async () => {
    await client.put(`${PREFIX}vs/a`).value(vs("a", "a"));
    const store = new ConfigStore({
      sources: [new EtcdSource({ prefix: PREFIX, etcd: { hosts: etcd.endpoint } })],
      debounceMs: 10,
    }).start();
    try {
      await store.synced();
      await etcd.stop();
      const down = await firstValueFrom(store.status$.pipe(filter((s) => s.sources[0]?.connected === false)));
      expect(down.sources[0]?.lastError).toBeTruthy();
      // The last good config is still served while the source is down.
      expect(store.current()?.get("VirtualService", "prod", "a")).toBeDefined();
      await etcd.restart();
      const writer = new Etcd3({ hosts: etcd.endpoint });
      try {
        await writer.put(`${PREFIX}vs/b`).value(vs("b", "b"));
      } finally {
        writer.close();
      }
      const after = await store.waitFor((s) => s.get("VirtualService", "prod", "b") !== undefined);
      expect(after.get("VirtualService", "prod", "a")).toBeDefined();
      const up = await firstValueFrom(store.status$.pipe(filter((s) => s.sources[0]?.connected === true)));
      expect(up.sources[0]?.synced).toBe(true);
    } finally {
      store.close();
      await client.delete().prefix(PREFIX);
    }
  }, 120_000);
});
