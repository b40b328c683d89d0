// Just enough protobuf and gRPC framing for the load side: hand-written encoders for the few
// request fields a client sends, and a streaming parser that reads the top-level scalar fields of
// a (Delta)DiscoveryResponse and skips every resource body without copying it.

const utf8 = new TextEncoder();

function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2): tag, length, bytes. */
export function lenField(field, bytes) {
  const body = typeof bytes === "string" ? Buffer.from(utf8.encode(bytes)) : Buffer.from(bytes);
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

/** A string field, or nothing for "" (proto3 default). */
export function stringField(field, value) {
  return value === "" ? Buffer.alloc(0) : lenField(field, value);
}

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message) {
  const header = Buffer.allocUnsafe(5);
  header[0] = 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** envoy.config.core.v3.Node { id = 1, cluster = 2 }. */
export function nodeBytes(id, cluster) {
  return Buffer.concat([stringField(1, id), stringField(2, cluster)]);
}

const HDR = 0;
const TAG = 1;
const LEN = 2;
const VARINT = 3;
const SKIP = 4;
const COLLECT = 5;

/**
 * Parses a stream of gRPC-framed DiscoveryResponse or DeltaDiscoveryResponse messages, chunk by
 * chunk. Fields 1 (version_info / system_version_info), 4 (type_url) and 5 (nonce) are decoded;
 * field 2 (resources) is counted and skipped; everything else is skipped. Both response types put
 * those fields at the same numbers, so one parser serves SotW and Delta.
 */
export class ResponseParser {
  /** @param {(msg: { version: string, typeUrl: string, nonce: string, resources: number, bytes: number }) => void} onMessage */
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.state = HDR;
    this.header = Buffer.alloc(5);
    this.headerGot = 0;
    this.remaining = 0; // bytes left in the current message
    this.acc = 0; // varint accumulator
    this.mul = 1;
    this.field = 0;
    this.wireType = 0;
    this.todo = 0; // bytes left to skip or collect
    this.parts = [];
    this.reset(0);
  }

  reset(length) {
    this.msg = { version: "", typeUrl: "", nonce: "", resources: 0, bytes: length };
  }

  push(chunk) {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case HDR: {
          const take = Math.min(5 - this.headerGot, n - i);
          chunk.copy(this.header, this.headerGot, i, i + take);
          this.headerGot += take;
          i += take;
          if (this.headerGot === 5) {
            this.headerGot = 0;
            if (this.header[0] !== 0) throw new Error("compressed gRPC messages are not supported");
            this.remaining = this.header.readUInt32BE(1);
            this.reset(this.remaining);
            this.toTag();
          }
          break;
        }
        case TAG:
        case LEN:
        case VARINT: {
          const b = chunk[i++];
          this.remaining--;
          this.acc += (b & 127) * this.mul;
          if (b & 128) {
            this.mul *= 128;
            break;
          }
          const value = this.acc;
          this.acc = 0;
          this.mul = 1;
          if (this.state === TAG) {
            this.field = Math.floor(value / 8);
            this.wireType = value & 7;
            if (this.wireType === 2) this.state = LEN;
            else if (this.wireType === 0) this.state = VARINT;
            else if (this.wireType === 1 || this.wireType === 5) this.startSkip(this.wireType === 1 ? 8 : 4);
            else throw new Error(`unsupported wire type ${this.wireType}`);
          } else if (this.state === LEN) {
            if (this.field === 2) this.msg.resources++;
            if (this.field === 1 || this.field === 4 || this.field === 5) {
              this.todo = value;
              this.parts.length = 0;
              this.state = COLLECT;
              if (value === 0) this.endCollect();
            } else this.startSkip(value);
          } else this.toTag();
          break;
        }
        case SKIP: {
          const take = Math.min(this.todo, n - i);
          i += take;
          this.todo -= take;
          this.remaining -= take;
          if (this.todo === 0) this.toTag();
          break;
        }
        case COLLECT: {
          const take = Math.min(this.todo, n - i);
          this.parts.push(chunk.subarray(i, i + take));
          i += take;
          this.todo -= take;
          this.remaining -= take;
          if (this.todo === 0) this.endCollect();
          break;
        }
      }
    }
  }

  startSkip(count) {
    this.todo = count;
    this.state = SKIP;
    if (count === 0) this.toTag();
  }

  endCollect() {
    const text =
      this.parts.length === 1 ? this.parts[0].toString("utf8") : Buffer.concat(this.parts).toString("utf8");
    this.parts.length = 0;
    if (this.field === 1) this.msg.version = text;
    else if (this.field === 4) this.msg.typeUrl = text;
    else this.msg.nonce = text;
    this.toTag();
  }

  toTag() {
    if (this.remaining > 0) {
      this.state = TAG;
      return;
    }
    if (this.remaining < 0) throw new Error("malformed response: a field overruns its message");
    this.state = HDR;
    const msg = this.msg;
    this.onMessage(msg);
  }
}

/** Counts gRPC messages in a byte stream (the raw server's side of the ceiling run). */
export class FrameCounter {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.header = Buffer.alloc(5);
    this.headerGot = 0;
    this.todo = -1;
  }

  push(chunk) {
    let i = 0;
    while (i < chunk.length) {
      if (this.todo < 0) {
        const take = Math.min(5 - this.headerGot, chunk.length - i);
        chunk.copy(this.header, this.headerGot, i, i + take);
        this.headerGot += take;
        i += take;
        if (this.headerGot === 5) {
          this.headerGot = 0;
          this.todo = this.header.readUInt32BE(1);
          if (this.todo === 0) {
            this.todo = -1;
            this.onMessage();
          }
        }
      } else {
        const take = Math.min(this.todo, chunk.length - i);
        i += take;
        this.todo -= take;
        if (this.todo === 0) {
          this.todo = -1;
          this.onMessage();
        }
      }
    }
  }
}
