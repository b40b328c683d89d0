import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaError } from "../ca-error.js";
import { children, decode, integer, oid, readOid, readTime, sequence, time } from "./der.js";

describe("DER", () => {
  it("round-trips OIDs (property)", () => {
    const arc = fc.bigInt({ min: 0n, max: 2n ** 64n });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(arc, { maxLength: 8 }),
        (a, b, rest) => {
          const dotted = [a, b, ...rest].join(".");
          expect(readOid(decode(oid(dotted), "oid"), "oid")).toBe(dotted);
        },
      ),
    );
  });

  it("encodes INTEGERs minimally and positive (property)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 160n }), (n) => {
        const node = decode(integer(n), "int");
        const bytes = node.content;
        expect((bytes[0] as number) & 0x80).toBe(0);
        if (bytes.length > 1) expect(bytes[0] === 0 && ((bytes[1] as number) & 0x80) === 0).toBe(false);
        expect(BigInt(`0x${bytes.toString("hex")}`)).toBe(n);
      }),
    );
  });

  it("uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5)", () => {
    const d2049 = new Date(Date.UTC(2049, 11, 31, 23, 59, 59));
    const d2050 = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
    expect(time(d2049)[0]).toBe(0x17);
    expect(time(d2050)[0]).toBe(0x18);
    expect(readTime(decode(time(d2049), "t"), "t")).toEqual(d2049);
    expect(readTime(decode(time(d2050), "t"), "t")).toEqual(d2050);
  });

  it("rejects truncated input, indefinite lengths and trailing bytes with malformed-der", () => {
    const good = sequence(integer(1), integer(2));
    for (const bad of [
      good.subarray(0, good.length - 1),
      Buffer.from([0x30, 0x80, 0, 0]),
      Buffer.concat([good, Buffer.from([0])]),
    ]) {
      try {
        children(decode(bad, "input"), "input");
        throw new Error("accepted");
      } catch (error) {
        expect(error).toBeInstanceOf(CaError);
        expect((error as CaError).code).toBe("malformed-der");
      }
    }
  });

  // RFC 5280 4.1.2.5.1/4.1.2.5.2: YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ with real calendar values. A
  // lenient reader rolls "month 13" over into the next year and computes a lifetime that no other
  // parser (which refuses the certificate) agrees with.
  it.each([
    ["UTCTime month 13", 0x17, "301301000000Z"],
    ["UTCTime February 30", 0x17, "300230000000Z"],
    ["UTCTime hour 24", 0x17, "300101240000Z"],
    ["GeneralizedTime second 60", 0x18, "20500101000060Z"],
  ])("refuses a %s", (_name, tag, text) => {
    const node = decode(Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, "ascii")]), "t");
    expect(() => readTime(node, "notAfter")).toThrow(CaError);
  });
});
