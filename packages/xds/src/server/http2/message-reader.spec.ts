import { describe, expect, it } from "vitest";
import { percentEncode } from "./grpc-headers.js";
import { MessageReader } from "./message-reader.js";

const framed = (body: Buffer, compressed = false) => {
  const prefix = Buffer.from([compressed ? 1 : 0, 0, 0, 0, 0]);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
};

describe("MessageReader", () => {
  it("hands over whole messages however the bytes are split, assembling split ones in the reused scratch buffer", () => {
    const a = Buffer.alloc(3000, "a");
    const b = Buffer.alloc(10, "b");
    const c = Buffer.alloc(2500, "c");
    const stream = Buffer.concat([framed(a), framed(b), framed(c, true)]);
    for (const size of [1, 7, 1000, 4096, stream.length]) {
      const seen: Array<{ text: string; compressed: boolean; ephemeral: boolean }> = [];
      const reader = new MessageReader(1 << 20);
      for (let i = 0; i < stream.length; i += size) {
        // Copy what we are handed: ephemeral bytes are only valid during the call.
        reader.push(stream.subarray(i, i + size), (bytes, compressed, ephemeral) => {
          seen.push({ text: bytes.toString(), compressed, ephemeral });
          return true;
        });
      }
      expect(seen.map((m) => m.text)).toEqual([a.toString(), b.toString(), c.toString()]);
      expect(seen.map((m) => m.compressed)).toEqual([false, false, true]);
      // Only messages that spanned chunks come from the scratch buffer.
      expect(seen[0]?.ephemeral).toBe(size < 3005);
    }
  });

  it("stops when the handler says so, and refuses a message over the limit", () => {
    const reader = new MessageReader(100);
    let calls = 0;
    reader.push(Buffer.concat([framed(Buffer.from("x")), framed(Buffer.from("y"))]), () => {
      calls++;
      return false;
    });
    expect(calls).toBe(1);
    expect(() => new MessageReader(100).push(framed(Buffer.alloc(101)), () => true)).toThrow(
      /received a message of 101 bytes; the limit is 100/,
    );
  });
});

describe("percentEncode", () => {
  it("keeps printable ASCII but %, and encodes every other UTF-8 byte", () => {
    expect(percentEncode("unknown method /a.B/C: 100%")).toBe("unknown method /a.B/C: 100%25");
    expect(percentEncode("é\n")).toBe("%C3%A9%0A");
  });
});
