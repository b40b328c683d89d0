import { GRPC_PREFIX } from "../responses.js";

/**
 * Splits a byte stream into gRPC length-prefixed messages, handing each to `onMessage` as soon as
 * it is complete. A message that arrived in one chunk is a view of that chunk. One that spans
 * chunks is assembled in `scratch`, a buffer shared by every stream of a transport and reused for
 * the next message: such a message is flagged `ephemeral`, valid only during the call (decoders
 * copy what they keep). A SotW ACK listing 1,000 names is ≈ 48 KB, several DATA frames: without
 * the scratch buffer 5,000 of them would allocate 240 MB per push.
 */
/** What limits a {@link MessageReader}. */
export interface ReaderLimits {
  /** Largest message accepted (before decompression: the length in its prefix). */
  readonly maxReceiveMessageBytes: number;
  /** Assembles messages that span chunks. */
  readonly scratch: ScratchBuffer;
}

export class MessageReader {
  /** Bytes of the current 5-byte prefix read so far. */
  private prefixGot = 0;
  /** The current message's length; -1 while its prefix is being read. */
  private length = -1;
  private compressed = false;
  /** The current message's first part, and all its parts once it has more than one. */
  private first: Buffer | undefined = undefined;
  private parts: Buffer[] | undefined = undefined;
  /** Bytes of the message got so far (while reading a prefix: the length read so far). */
  private got = 0;

  /** The limit and the scratch buffer (an object shared by the readers of a transport). */
  protected readonly limits: ReaderLimits;

  constructor(maxBytes: number, scratch?: ScratchBuffer);
  constructor(limits: ReaderLimits);
  constructor(limits: number | ReaderLimits, scratch: ScratchBuffer = new ScratchBuffer()) {
    this.limits = typeof limits === "number" ? { maxReceiveMessageBytes: limits, scratch } : limits;
  }

  /**
   * Consumes a chunk; `onMessage` (called with `this` the reader) returns false to stop reading
   * (the stream was ended). Throws when a message is larger than `maxBytes`.
   */
  push(
    chunk: Buffer,
    onMessage: (this: this, bytes: Buffer, compressed: boolean, ephemeral: boolean) => boolean,
  ): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.length < 0) {
        // The prefix: a compressed flag, then the length (4 bytes, big-endian), read byte by byte
        // so that no buffer is kept per stream for a prefix split across chunks.
        while (this.prefixGot < GRPC_PREFIX && i < chunk.length) {
          const byte = chunk[i++] as number;
          if (this.prefixGot++ === 0) {
            this.compressed = byte === 1;
            this.got = 0;
          } else this.got = this.got * 256 + byte;
        }
        if (this.prefixGot < GRPC_PREFIX) break;
        this.prefixGot = 0;
        this.length = this.got;
        this.got = 0;
        const max = this.limits.maxReceiveMessageBytes;
        if (this.length > max) {
          throw new Error(`received a message of ${this.length} bytes; the limit is ${max}`);
        }
      }
      const take = Math.min(this.length - this.got, chunk.length - i);
      if (take > 0) {
        const part = chunk.subarray(i, i + take);
        if (this.first === undefined) this.first = part;
        else if (this.parts === undefined) this.parts = [this.first, part];
        else this.parts.push(part);
      }
      this.got += take;
      i += take;
      if (this.got === this.length) {
        const first = this.first;
        const parts = this.parts;
        const length = this.length;
        this.first = undefined;
        this.parts = undefined;
        this.length = -1;
        this.got = 0;
        const keepGoing =
          parts === undefined
            ? onMessage.call(this, first ?? EMPTY, this.compressed, false)
            : onMessage.call(this, this.limits.scratch.assemble(parts, length), this.compressed, true);
        if (!keepGoing) return;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);

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
