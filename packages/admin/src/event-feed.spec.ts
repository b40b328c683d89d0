import { EventKind } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { describe, expect, it } from "vitest";
import { EventFeed } from "./event-feed.js";

const push = (v: string) => ({ case: "push" as const, value: { cause: "manual", configVersion: v } });
const nack = (p: string) => ({ case: "nack" as const, value: { proxy: p } });

describe("EventFeed", () => {
  it("numbers events, filters by kind and replays the newest on request", async () => {
    const feed = new EventFeed({ replaySize: 3, now: () => 5000 });
    for (const v of ["1", "2", "3", "4"]) feed.publish(push(v));
    feed.publish(nack("p"));
    const abort = new AbortController();
    const it = feed.subscribe({ kinds: [EventKind.PUSH], replay: 3, signal: abort.signal });
    const first = await it.next();
    // The ring keeps the last 3 (3, 4, nack); the nack is not a push.
    expect(first.value?.event).toMatchObject({ case: "push", value: { configVersion: "3" } });
    expect(first.value?.sequence).toBe(3n);
    expect(first.value?.time?.seconds).toBe(5n);
    expect((await it.next()).value?.event.value).toMatchObject({ configVersion: "4" });
    feed.publish(nack("q"));
    feed.publish(push("5"));
    expect((await it.next()).value?.event.value).toMatchObject({ configVersion: "5" });
    abort.abort();
    expect((await it.next()).done).toBe(true);
    expect(feed.subscribers()).toEqual([]);
  });

  it("keeps at most bufferSize events for a reader that is behind, then tells it how many it lost", async () => {
    const feed = new EventFeed({ bufferSize: 2 });
    const it = feed.subscribe();
    const pending = it.next(); // subscribed, waiting
    feed.publish(push("1"));
    expect((await pending).value?.event.value).toMatchObject({ configVersion: "1" });
    for (const v of ["2", "3", "4", "5", "6"]) feed.publish(push(v));
    expect(feed.subscribers()).toEqual([{ buffered: 2, dropped: 3, delivered: 1 }]);
    expect((await it.next()).value?.event).toMatchObject({ case: "dropped", value: { count: 3n } });
    expect((await it.next()).value?.event.value).toMatchObject({ configVersion: "5" });
    expect((await it.next()).value?.event.value).toMatchObject({ configVersion: "6" });
    feed.close();
    expect((await it.next()).done).toBe(true);
  });
});
