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
  /** A grpc-js cancel: END_STREAM (our side then ends), later RST_STREAM. */
  halfClose(): this {
    this.emit("end");
    return this;
  }
  reset(): void {
    this.rstCode = http2.constants.NGHTTP2_CANCEL;
    this.emit("close");
  }
  /** A reset while our side is open: `aborted` at once. */
  abort(): void {
    this.emit("aborted");
    this.reset();
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

  it("leaves a connection with any number of open streams alone", () => {
    const { session, open } = setup();
    open(10_000);
    expect(session.goaways).toEqual([]);
  });

  it("rotates a connection with one graceful GOAWAY before half-closed streams' resets could spend the budget", () => {
    const { session, open } = setup();
    const streams = open(2000);
    for (const s of streams.slice(0, 899)) s.halfClose();
    expect(session.goaways).toEqual([]);
    streams[899]?.halfClose();
    expect(session.goaways).toEqual([http2.constants.NGHTTP2_NO_ERROR]);
    for (const s of streams) s.halfClose().reset();
    expect(session.goaways).toHaveLength(1);
  });

  it("counts resets seen at once (aborted) and refills the budget at 33 per second", () => {
    const { session, open, tick } = setup();
    for (const s of open(800)) s.abort();
    // 200 tokens left: 100 half-closed streams plus the margin of 100 reach them.
    const next = open(200);
    for (const s of next.slice(0, 99)) s.halfClose();
    expect(session.goaways).toEqual([]);
    tick(1); // +33 tokens
    for (const s of next.slice(99, 132)) s.halfClose();
    expect(session.goaways).toEqual([]);
    next[132]?.halfClose();
    expect(session.goaways).toHaveLength(1);
  });

  it("does not count streams that half-close and end without a reset", () => {
    const { session, open } = setup();
    for (let round = 0; round < 5; round++)
      for (const s of open(800)) {
        s.halfClose();
        s.emit("close");
      }
    expect(session.goaways).toEqual([]);
  });
});

describe("the reset budget on a grpc-js Server (register())", () => {
  // grpc-js has no public accessor for a call's HTTP/2 stream; another version's internals must
  // leave the server serving, and say once that its connections are not rotated.
  it("finds no stream in a call of an unknown shape, and says so once", async () => {
    const { http2StreamOf } = await import("./grpc-js-transport.js");
    for (const shape of [{}, { call: { nextCall: { nextCall: {} } } }, { call: { stream: { session: {} } } }])
      expect(http2StreamOf(shape)).toBeUndefined();
    const warnings: string[] = [];
    const budget = new ResetBudget({ ...silentLogger, warn: (m: string) => warnings.push(m) });
    budget.untracked("grpc-js call");
    budget.untracked("grpc-js call");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not rotated/);
  });
});
