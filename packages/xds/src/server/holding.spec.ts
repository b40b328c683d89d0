import { describe, expect, it } from "vitest";
import { Holdings, UNCERTAIN } from "./holding.js";

// What a stream knows its client holds (xDS protocol, "ACK and NACK semantics summary": a NACK
// keeps what the client held before the rejected response). An idle stream keeps one Holding
// per type: `held` and `acked` are one object while they agree, and never alias once they differ.
describe("Holdings", () => {
  it("shares one Holding for held and acked while they agree, and splits it when a response goes out", () => {
    const h = new Holdings();
    expect(h.held).toBe(h.acked);
    h.sent("n1", "v1", [["a"]], (held) => held.set("a", "1"));
    expect(h.held).not.toBe(h.acked);
    expect(h.acked.version("a")).toBeUndefined();
    expect(h.held.version("a")).toBe("1");
    h.answer("n1", false);
    expect(h.held).toBe(h.acked);
    expect(h.acked.version("a")).toBe("1");

    // The next response changes what is held, not what was ACKed.
    h.sent("n2", "v2", [["a"]], (held) => held.set("a", "2"));
    expect(h.acked.version("a")).toBe("1");
    expect(h.held.version("a")).toBe("2");
    // Rejected: the client is unsure of `a` (Envoy may have applied part of the response).
    h.answer("n2", true);
    expect(h.acked.version("a")).toBe(UNCERTAIN);
    expect(h.held.version("a")).toBe(UNCERTAIN);
  });

  it("keeps acked at the answered response while a later one is in flight", () => {
    const h = new Holdings();
    h.sent("n1", "v1", [["a"]], (held) => held.set("a", "1"));
    h.sent("n2", "v2", [["b"]], (held) => held.set("b", "1"));
    h.answer("n1", false);
    expect(h.held).not.toBe(h.acked);
    expect(h.acked.version("a")).toBe("1");
    expect(h.acked.version("b")).toBeUndefined();
    expect(h.held.version("b")).toBe("1");
    h.answer("n2", false);
    expect(h.held).toBe(h.acked);
    expect([...h.acked.names()].sort()).toEqual(["a", "b"]);
  });

  it("applies what the client says about itself to both views, shared or not", () => {
    const h = new Holdings();
    h.claim("a", "1");
    expect(h.acked.version("a")).toBe("1");
    h.sent("n1", "v1", [["b"]], (held) => held.set("b", "1"));
    h.forget(["a"]);
    expect(h.held.version("a")).toBeUndefined();
    expect(h.acked.version("a")).toBeUndefined();
    h.answer("n1", false);
    expect(h.acked.version("a")).toBeUndefined();
    expect(h.acked.version("b")).toBe("1");
  });
});
