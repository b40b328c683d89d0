import type http2 from "node:http2";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../logger.js";
import { Keepalive, type KeepaliveEntry } from "./keepalive.js";

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
});
