import { afterEach, describe, expect, it, vi } from "vitest";
import { WriteScheduler } from "./write-scheduler.js";

/** A transport that records writes and completes them only when told to. */
function transport(name: string, log: string[]) {
  const pending: Array<() => void> = [];
  return {
    pending,
    write(bytes: Buffer, done: () => void) {
      log.push(`${name}:${bytes.toString()}`);
      pending.push(done);
    },
    /** Completes the oldest write (as the connection would, asynchronously). */
    complete() {
      pending.shift()?.();
    },
  };
}

const msg = (text: string, size = 100) => Buffer.from(text.padEnd(size, "."));

afterEach(() => {
  vi.useRealTimers();
});

describe("WriteScheduler", () => {
  it("keeps at most maxBytes (plus one message) in flight and starts waiting streams as writes finish", () => {
    const scheduler = new WriteScheduler(250, 60_000);
    const log: string[] = [];
    const ts = ["a", "b", "c", "d", "e"].map((n) => transport(n, log));
    const writers = ts.map((t) => scheduler.writer(t));
    for (const [i, w] of writers.entries()) w.send(msg(`m${i}`));
    // 0 < 250, 100 < 250, 200 < 250 start; 300 does not.
    expect(log.map((l) => l.slice(0, 4))).toEqual(["a:m0", "b:m1", "c:m2"]);
    expect(scheduler.bytesInFlight).toBe(300);
    expect(scheduler.waitingStreams).toBe(2);
    ts[1]?.complete();
    expect(log.map((l) => l.slice(0, 4))).toEqual(["a:m0", "b:m1", "c:m2", "d:m3"]);
    ts[0]?.complete();
    ts[2]?.complete();
    ts[3]?.complete();
    expect(log).toHaveLength(5);
    ts[4]?.complete();
    expect(scheduler.bytesInFlight).toBe(0);
    expect(scheduler.waitingStreams).toBe(0);
  });

  it("writes each stream's messages in order, one at a time", () => {
    const scheduler = new WriteScheduler(1_000_000, 60_000);
    const log: string[] = [];
    const t = transport("s", log);
    const w = scheduler.writer(t);
    w.send(msg("1", 10));
    w.send(msg("2", 10));
    w.send(msg("3", 10));
    expect(log).toHaveLength(1);
    expect(w.pending).toBe(2);
    t.complete();
    t.complete();
    t.complete();
    expect(log.map((l) => l.slice(0, 3))).toEqual(["s:1", "s:2", "s:3"]);
    expect(scheduler.bytesInFlight).toBe(0);
  });

  it("stops counting a write that stalls (a client not reading), so the others go on", () => {
    vi.useFakeTimers();
    const scheduler = new WriteScheduler(150, 1_000, () => Date.now());
    const log: string[] = [];
    const stuck = transport("stuck", log);
    const other = transport("other", log);
    scheduler.writer(stuck).send(msg("x", 200));
    scheduler.writer(other).send(msg("y", 100));
    expect(log).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(log).toHaveLength(1);
    vi.advanceTimersByTime(600);
    expect(log.map((l) => l.slice(0, 7))).toEqual(["stuck:x", "other:y"]);
    expect(scheduler.bytesInFlight).toBe(100);
    expect(scheduler.stalledWrites).toBe(1);
    // The stalled write completing later does not free its bytes a second time.
    stuck.complete();
    expect(scheduler.bytesInFlight).toBe(100);
    other.complete();
    expect(scheduler.bytesInFlight).toBe(0);
  });

  it("gives back a closed stream's budget and drops what it had not written", () => {
    const scheduler = new WriteScheduler(150, 60_000);
    const log: string[] = [];
    const a = transport("a", log);
    const b = transport("b", log);
    const wa = scheduler.writer(a);
    wa.send(msg("1", 200));
    wa.send(msg("2", 200));
    scheduler.writer(b).send(msg("3", 100));
    expect(log).toHaveLength(1);
    wa.close(); // e.g. the client cancelled: its in-flight write never completes
    expect(log.map((l) => l.slice(0, 3))).toEqual(["a:1", "b:3"]);
    expect(scheduler.bytesInFlight).toBe(100);
    wa.send(msg("4", 10));
    expect(log).toHaveLength(2);
  });
});

describe("WriteScheduler: responses count until the client answers them", () => {
  const CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  const EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

  it("keeps a written response in the budget until its nonce is answered", () => {
    const scheduler = new WriteScheduler(150, 60_000);
    const log: string[] = [];
    const a = transport("a", log);
    const b = transport("b", log);
    const wa = scheduler.writer(a);
    wa.send(msg("1", 200), CDS, "n1");
    scheduler.writer(b).send(msg("2", 100), CDS, "n1");
    a.complete(); // in the kernel, not yet read by the client
    expect(log.map((l) => l.slice(0, 3))).toEqual(["a:1"]);
    expect(scheduler.bytesInFlight).toBe(200);
    expect(wa.awaitingAnswer).toBe(1);
    wa.answered(CDS, "n1");
    expect(log.map((l) => l.slice(0, 3))).toEqual(["a:1", "b:2"]);
    expect(scheduler.bytesInFlight).toBe(100);
    expect(wa.awaitingAnswer).toBe(0);
  });

  it("an answer to the newest nonce of a type frees the older ones of that type only", () => {
    const scheduler = new WriteScheduler(1_000_000, 60_000);
    const log: string[] = [];
    const t = transport("s", log);
    const w = scheduler.writer(t);
    w.send(msg("c1", 100), CDS, "1");
    w.send(msg("e1", 10), EDS, "2");
    w.send(msg("c2", 100), CDS, "3");
    t.complete();
    t.complete();
    t.complete();
    expect(scheduler.bytesInFlight).toBe(210);
    w.answered(CDS, "3");
    expect(scheduler.bytesInFlight).toBe(10);
    w.answered(EDS, "unknown");
    w.answered(CDS, "2"); // right nonce, wrong type
    expect(scheduler.bytesInFlight).toBe(10);
    w.answered(EDS, "2");
    expect(scheduler.bytesInFlight).toBe(0);
  });

  it("an answer that arrives before the transport is done frees the budget but keeps the stream's order", () => {
    const scheduler = new WriteScheduler(1_000_000, 60_000);
    const log: string[] = [];
    const t = transport("s", log);
    const w = scheduler.writer(t);
    w.send(msg("1", 100), CDS, "1");
    w.send(msg("2", 100), CDS, "2");
    w.answered(CDS, "1");
    expect(scheduler.bytesInFlight).toBe(0);
    expect(log).toHaveLength(1);
    t.complete();
    expect(log.map((l) => l.slice(0, 3))).toEqual(["s:1", "s:2"]);
    expect(scheduler.bytesInFlight).toBe(100);
  });

  it("stops counting a response that is never answered after stallMs, and forgets it", () => {
    vi.useFakeTimers();
    const scheduler = new WriteScheduler(150, 1_000, () => Date.now());
    const log: string[] = [];
    const silent = transport("silent", log);
    const other = transport("other", log);
    const ws = scheduler.writer(silent);
    ws.send(msg("x", 200), CDS, "1");
    silent.complete();
    scheduler.writer(other).send(msg("y", 100), CDS, "1");
    vi.advanceTimersByTime(999);
    expect(log).toHaveLength(1);
    vi.advanceTimersByTime(600);
    expect(log.map((l) => l.replace(/\.+$/, ""))).toEqual(["silent:x", "other:y"]);
    expect(scheduler.stalledWrites).toBe(1);
    expect(scheduler.bytesInFlight).toBe(100);
    // A late answer frees nothing twice; the next response does not pile up behind the stale one.
    ws.answered(CDS, "1");
    expect(scheduler.bytesInFlight).toBe(100);
    ws.send(msg("z", 10), CDS, "2");
    vi.advanceTimersByTime(1_600);
    ws.send(msg("w", 10), CDS, "3");
    silent.complete();
    expect(ws.awaitingAnswer).toBe(1);
  });

  it("gives back the budget of unanswered responses when the stream closes", () => {
    const scheduler = new WriteScheduler(150, 60_000);
    const log: string[] = [];
    const a = transport("a", log);
    const b = transport("b", log);
    const wa = scheduler.writer(a);
    wa.send(msg("1", 200), CDS, "1");
    a.complete();
    scheduler.writer(b).send(msg("2", 100), CDS, "1");
    expect(log).toHaveLength(1);
    wa.close();
    expect(log.map((l) => l.slice(0, 3))).toEqual(["a:1", "b:2"]);
    expect(scheduler.bytesInFlight).toBe(100);
  });
});
