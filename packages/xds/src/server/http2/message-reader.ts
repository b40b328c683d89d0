import { GRPC_PREFIX } from "../responses.js";

/**
 * Splits a byte stream into gRPC length-prefixed messages, handing each to `onMessage` as soon as
 * it is complete. A message that arrived in one chunk is a view of that chunk. One that spans
 * chunks is assembled in `scratch`, a buffer shared by every stream of a transport and reused for
 * the next message: such a message is flagged `ephemeral`, valid only during the call (decoders
 * copy what they keep). A SotW ACK listing 1,000 names is ≈ 48 KB, several DATA frames: without
 * the scratch buffer 5,000 of them would allocate 240 MB per push.
 */
export class MessageReader {
  private readonly prefix = Buffer.alloc(GRPC_PREFIX);
  private prefixGot = 0;
  private length = -1;
  private compressed = false;
  private parts: Buffer[] = [];
  private got = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly scratch: ScratchBuffer = new ScratchBuffer(),
  ) {}

  /**
   * Consumes a chunk; `onMessage` returns false to stop reading (the stream was ended).
   * Throws when a message is larger than `maxBytes`.
   */
  push(chunk: Buffer, onMessage: (bytes: Buffer, compressed: boolean, ephemeral: boolean) => boolean): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.length < 0) {
        const take = Math.min(GRPC_PREFIX - this.prefixGot, chunk.length - i);
        chunk.copy(this.prefix, this.prefixGot, i, i + take);
        this.prefixGot += take;
        i += take;
        if (this.prefixGot < GRPC_PREFIX) break;
        this.prefixGot = 0;
        this.compressed = this.prefix[0] === 1;
        this.length = this.prefix.readUInt32BE(1);
        if (this.length > this.maxBytes) {
          throw new Error(`received a message of ${this.length} bytes; the limit is ${this.maxBytes}`);
        }
        this.parts = [];
        this.got = 0;
      }
      const take = Math.min(this.length - this.got, chunk.length - i);
      if (take > 0) this.parts.push(chunk.subarray(i, i + take));
      this.got += take;
      i += take;
      if (this.got === this.length) {
        const parts = this.parts;
        const length = this.length;
        this.parts = [];
        this.length = -1;
        const keepGoing =
          parts.length <= 1
            ? onMessage(parts[0] ?? Buffer.alloc(0), this.compressed, false)
            : onMessage(this.scratch.assemble(parts, length), this.compressed, true);
        if (!keepGoing) return;
      }
    }
  }
}

/** A reusable buffer for assembling messages (see MessageReader); big one-offs are not kept. */
export class ScratchBuffer {
  private buffer = Buffer.allocUnsafe(0);

  constructor(private readonly keepBytes = 1024 * 1024) {}

  assemble(parts: readonly Buffer[], length: number): Buffer {
    let target = this.buffer;
    if (target.length < length) {
      target = Buffer.allocUnsafe(Math.max(length, 64 * 1024));
      if (target.length <= this.keepBytes) this.buffer = target;
    }
    let at = 0;
    for (const p of parts) {
      p.copy(target, at);
      at += p.length;
    }
    return target.subarray(0, length);
  }
}
