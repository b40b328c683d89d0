import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";

/** Name lists shorter than this (encoded) are decoded as usual: interning would not pay. */
const MIN_INTERNED_BYTES = 512;

/**
 * Encoded bytes of the lists held, at most: a client may send lists as large as the largest
 * request accepted (16 MiB by default), and a count alone would let 256 of them keep gigabytes
 * alive. An Envoy watching 10,000 clusters' endpoints sends about 500 KB.
 */
const MAX_INTERNED_BYTES = 64 * 1024 * 1024;

interface Interned {
  readonly bytes: Buffer;
  readonly names: readonly string[];
}

/**
 * Decodes requests, decoding each distinct list of resource names once.
 *
 * A SotW client repeats its whole subscription in every request, ACKs included: an Envoy that
 * watches the endpoints of 1,000 clusters sends those 1,000 names (≈ 50 KB) with every EDS ACK,
 * and thousands of proxies of one service send the very same list. Decoding it costs ~0.5 ms per
 * ACK; comparing its bytes with a list seen before costs microseconds. Lists are interned by
 * their encoded bytes (a bounded LRU), and every request carrying the same bytes gets the same
 * frozen array, which the stream then recognises by identity. Delta clients send their list once
 * per stream (`resource_names_subscribe`), but a reconnect storm of one service sends the same one
 * thousands of times.
 */
export class InterningDecoder<Desc extends DescMessage> {
  private readonly lists = new Map<string, Interned[]>();
  private count = 0;
  private bytes = 0;

  /**
   * @param schema the request message
   * @param field the repeated string field's number (resource_names: 3; resource_names_subscribe: 3)
   * @param property the same field's property name in the decoded message
   */
  constructor(
    private readonly schema: Desc,
    private readonly field: number,
    private readonly property: keyof MessageShape<Desc> & string,
    maxLists?: number,
  ) {
    this.maxLists = maxLists ?? 256;
  }

  private readonly maxLists: number;

  /** Distinct name lists held (for tests and metrics). */
  get size(): number {
    return this.count;
  }

  /** Encoded bytes of the lists held (for tests and metrics); at most 64 MiB. */
  get retainedBytes(): number {
    return this.bytes;
  }

  /**
   * Decodes one request. With `ephemeral`, `bytes` will be reused after the call: nothing in the
   * result may alias them (protobuf-es decodes `bytes` fields, such as the Any values of
   * error_detail.details, as views of its input), so they are copied first when needed.
   */
  decode(bytes: Uint8Array, ephemeral = false): MessageShape<Desc> {
    const region = namesRegion(bytes, this.field);
    const length = region ? region.end - region.start : 0;
    if (!region || length < MIN_INTERNED_BYTES || length > MAX_INTERNED_BYTES / 4)
      return fromBinary(this.schema, ephemeral ? Uint8Array.prototype.slice.call(bytes) : bytes);
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const encoded = buf.subarray(region.start, region.end);
    const names = this.intern(encoded);
    const rest = Buffer.concat([buf.subarray(0, region.start), buf.subarray(region.end)]);
    const req = fromBinary(this.schema, rest);
    (req as Record<string, unknown>)[this.property] = names;
    return req;
  }

  private intern(encoded: Buffer): readonly string[] {
    const key = sampleKey(encoded);
    let bucket = this.lists.get(key);
    if (bucket) {
      for (const entry of bucket) {
        if (entry.bytes.equals(encoded)) {
          // Most recently used last: re-insert the bucket.
          this.lists.delete(key);
          this.lists.set(key, bucket);
          return entry.names;
        }
      }
    }
    const names = Object.freeze(
      (fromBinary(this.schema, encoded) as Record<string, unknown>)[this.property] as string[],
    ) as readonly string[];
    const entry: Interned = { bytes: Buffer.from(encoded), names };
    if (!bucket) bucket = [];
    bucket.push(entry);
    this.lists.delete(key);
    this.lists.set(key, bucket);
    this.count++;
    this.bytes += entry.bytes.length;
    while (this.count > this.maxLists || this.bytes > MAX_INTERNED_BYTES) {
      const [oldestKey, oldest] = this.lists.entries().next().value as [string, Interned[]];
      const gone = oldest.shift() as Interned;
      this.count--;
      this.bytes -= gone.bytes.length;
      if (oldest.length === 0) this.lists.delete(oldestKey);
    }
    return names;
  }
}

/**
 * Where the resource_names fields sit in an encoded request, when they are contiguous (every
 * encoder writes a repeated field's elements together); undefined otherwise, or when the bytes
 * hold something this scan does not walk (groups, malformed data: fromBinary then reports it).
 * Runs on every SotW request, so it reads varints in place and allocates nothing.
 */
function namesRegion(bytes: Uint8Array, names: number): { start: number; end: number } | undefined {
  const n = bytes.length;
  let pos = 0;
  let start = -1;
  let end = -1;
  while (pos < n) {
    const at = pos;
    const tag = readVarint(bytes, pos);
    if (tag < 0) return undefined;
    pos = varintEnd;
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === 0) {
      if (readVarint(bytes, pos) < 0) return undefined;
      pos = varintEnd;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType === 2) {
      const length = readVarint(bytes, pos);
      if (length < 0) return undefined;
      pos = varintEnd + length;
    } else return undefined;
    if (pos > n) return undefined;
    if (field !== names) continue;
    if (start < 0) start = at;
    else if (at !== end) return undefined;
    end = pos;
  }
  return start < 0 ? undefined : { start, end };
}

/** Where the last varint read by readVarint ended (kept outside to allocate nothing). */
let varintEnd = 0;

/**
 * Reads a varint at `pos`; -1 if it runs past the end or past 35 bits (tags and lengths here
 * fit in 32: a longer one is for fromBinary to reject). Ignores bits beyond 2^53 otherwise.
 */
function readVarint(bytes: Uint8Array, pos: number): number {
  let value = 0;
  let shift = 0;
  let b: number;
  do {
    if (pos >= bytes.length || shift > 28) return -1;
    b = bytes[pos++] as number;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  varintEnd = pos;
  return value;
}

/** A cheap bucket key: the length and a few sampled bytes (equality is checked in full). */
function sampleKey(b: Buffer): string {
  const n = b.length;
  let key = `${n}`;
  for (let i = 1; i <= 16; i++) {
    const at = Math.floor((n * i) / 17);
    key += `:${b[at]}`;
  }
  return `${key}:${b[n - 1]}:${b[n - 2]}`;
}

/** SotW requests: `resource_names` (field 3) interned. */
export const sotwRequestDecoder = (maxLists?: number): InterningDecoder<typeof DiscoveryRequestSchema> =>
  new InterningDecoder(DiscoveryRequestSchema, 3, "resourceNames", maxLists);

/** Delta requests: `resource_names_subscribe` (field 3) interned. */
export const deltaRequestDecoder = (
  maxLists?: number,
): InterningDecoder<typeof DeltaDiscoveryRequestSchema> =>
  new InterningDecoder(DeltaDiscoveryRequestSchema, 3, "resourceNamesSubscribe", maxLists);
