import type http2 from "node:http2";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../logger.js";
import { Keepalive, type KeepaliveEntry, MAX_TIMER_MS } from "./keepalive.js";

/** A connection whose PINGs are recorded and answered (or not) by the test. */
class FakeConnection implements KeepaliveEntry {
  keepaliveDue = 0;
  keepalivePrev: KeepaliveEntry | undefined = undefined;
  keepaliveNext: KeepaliveEntry | undefined = undefined;
  readonly pings: number[] = [];
  readonly pending: Array<(err: Error | null) => void> = [];
  destroyedAt: number | undefined;
  readonly session: http2.ServerHttp2Session;

  constructor(answer: boolean) {
    const self = this;
    this.session = {
      closed: false,
      get destroyed() {
        return self.destroyedAt !== undefined;
      },
      ping(callback: (err: Error | null) => void) {
        self.pings.push(Date.now());
        if (answer) setTimeout(() => callback(null), 5);
        else self.pending.push(callback);
        return true;
      },
      destroy() {
        self.destroyedAt ??= Date.now();
      },
    } as unknown as http2.ServerHttp2Session;
  }
}

describe("Keepalive", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("pings each connection every interval from when it was added, with one timer for all", () => {
    const keepalive = new Keepalive(1000, 500, silentLogger, () => Date.now());
    const a = new FakeConnection(true);
    const b = new FakeConnection(true);
    keepalive.add(a);
    vi.advanceTimersByTime(300);
    keepalive.add(b);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(3000);
    expect(a.pings).toEqual([1000, 2000, 3000]);
    expect(b.pings).toEqual([1300, 2300, 3300]);
    expect([a.destroyedAt, b.destroyedAt]).toEqual([undefined, undefined]);
  });

  it("destroys a connection whose PING is not answered within the timeout, and only it", () => {
    const keepalive = new Keepalive(1000, 500, silentLogger, () => Date.now());
    const silent = new FakeConnection(false);
    const live = new FakeConnection(true);
    keepalive.add(silent);
    keepalive.add(live);
    vi.advanceTimersByTime(1499);
    expect(silent.destroyedAt).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(silent.destroyedAt).toBe(1500);
    expect(live.destroyedAt).toBeUndefined();
  });

  it("stops pinging a removed connection, and keeps no timer once none is left", () => {
    const keepalive = new Keepalive(1000, 500, silentLogger, () => Date.now());
    const a = new FakeConnection(true);
    const b = new FakeConnection(true);
    keepalive.add(a);
    keepalive.add(b);
    vi.advanceTimersByTime(1500);
    keepalive.remove(a);
    expect(keepalive.entries()).toEqual([b]);
    vi.advanceTimersByTime(1000);
    expect(a.pings).toEqual([1000]);
    expect(b.pings).toEqual([1000, 2000]);
    keepalive.remove(b);
    keepalive.remove(b);
    expect(keepalive.entries()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  // A Node timer holds at most 2^31 - 1 ms; asked for more (Infinity, "never"), it fires after
  // 1 ms. grpc-js's server sends keepalive PINGs only while keepaliveTimeMs < 2^31 - 1
  // (grpc/grpc-node packages/grpc-js/src/server.ts: KEEPALIVE_MAX_TIME_MS, canSendPing), so an
  // interval that long means no PINGs on either transport, not a timer re-armed every millisecond.
  it("sends no PINGs and keeps no timer for an interval no Node timer holds (Infinity, ≥ 2^31 - 1 ms)", () => {
    for (const interval of [Number.POSITIVE_INFINITY, MAX_TIMER_MS, 2 ** 32]) {
      const keepalive = new Keepalive(interval, 500, silentLogger, () => Date.now());
      const a = new FakeConnection(true);
      keepalive.add(a);
      expect(vi.getTimerCount()).toBe(0);
      vi.advanceTimersByTime(10_000);
      expect(a.pings).toEqual([]);
      // Still listed: close() ends every connection of the list.
      expect(keepalive.entries()).toEqual([a]);
      keepalive.remove(a);
    }
  });

  it("waits out a PING timeout no Node timer holds instead of destroying the connection after 1 ms", () => {
    const keepalive = new Keepalive(1000, Number.POSITIVE_INFINITY, silentLogger, () => Date.now());
    const silent = new FakeConnection(false);
    keepalive.add(silent);
    vi.advanceTimersByTime(1000);
    expect(silent.pings).toEqual([1000]);
    vi.advanceTimersByTime(60_000);
    expect(silent.destroyedAt).toBeUndefined();
    keepalive.remove(silent);
  });
});
