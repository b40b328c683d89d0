import { EventEmitter } from "node:events";
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { silentLogger } from "./logger.js";
import { NGHTTP2_RESET_BURST, NGHTTP2_RESET_RATE, ResetBudget } from "./reset-budget.js";

// nghttp2's reset budget (lib/nghttp2_session.c: NGHTTP2_DEFAULT_STREAM_RESET_BURST 1000,
// NGHTTP2_DEFAULT_STREAM_RESET_RATE 33 per second) as ResetBudget mirrors it.
class FakeSession {
  destroyed = false;
  closed = false;
  readonly goaways: number[] = [];
  goaway(code: number): void {
    this.goaways.push(code);
  }
}

class FakeStream extends EventEmitter {
  rstCode = http2.constants.NGHTTP2_NO_ERROR;
  constructor(readonly session: FakeSession) {
    super();
  }
  reset(code = http2.constants.NGHTTP2_CANCEL): void {
    this.rstCode = code;
    this.emit("close");
  }
}

function setup() {
  let seconds = 0;
  const budget = new ResetBudget(silentLogger, () => seconds);
  const session = new FakeSession();
  const open = (n: number) =>
    Array.from({ length: n }, () => {
      const s = new FakeStream(session);
      budget.track(s as unknown as http2.ServerHttp2Stream);
      return s;
    });
  return { session, open, tick: (s: number) => (seconds += s) };
}

describe("ResetBudget", () => {
  it("matches nghttp2's defaults", () => {
    expect([NGHTTP2_RESET_BURST, NGHTTP2_RESET_RATE]).toEqual([1000, 33]);
  });

  it("sends one graceful GOAWAY once a connection's open streams could spend what is left of the budget", () => {
    const { session, open } = setup();
    open(899);
    expect(session.goaways).toEqual([]);
    open(1);
    expect(session.goaways).toEqual([http2.constants.NGHTTP2_NO_ERROR]);
    open(500);
    expect(session.goaways).toHaveLength(1);
  });

  it("counts resets against the budget and refills it at 33 per second", () => {
    const { session, open, tick } = setup();
    for (const s of open(400)) s.reset();
    // 600 tokens left: 500 open streams plus the margin of 100 reach them.
    open(499);
    expect(session.goaways).toEqual([]);
    tick(2); // +66 tokens
    open(60);
    expect(session.goaways).toEqual([]);
    open(7);
    expect(session.goaways).toHaveLength(1);
  });

  it("does not count streams that end without a reset", () => {
    const { session, open } = setup();
    for (let i = 0; i < 5; i++) for (const s of open(800)) s.emit("close");
    expect(session.goaways).toEqual([]);
  });
});
