/**
 * `google.protobuf.Any` payloads found valid, by type and bytes: a payload that many resources
 * embed (the same TLS context in every filter chain and every proxy's inbound listener, the
 * router's empty config) is decoded and checked once. Only payloads whose check depends on
 * nothing but their bytes are remembered (a timestamp rule against "now" is not). Bounded: the
 * oldest entries go first once it holds `maxBytes` of payloads.
 */
export class PayloadMemo {
  private readonly valid = new Set<string>();
  private bytes = 0;

  constructor(private readonly maxBytes = 4 * 1024 * 1024) {}

  /** The key of a payload (its type and its bytes, one character per byte). */
  key(typeName: string, value: Uint8Array): string {
    return `${typeName}\u0000${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1")}`;
  }

  has(key: string): boolean {
    return this.valid.has(key);
  }

  add(key: string): void {
    if (this.valid.has(key) || key.length > this.maxBytes) return;
    this.valid.add(key);
    this.bytes += key.length;
    for (const old of this.valid) {
      if (this.bytes <= this.maxBytes) break;
      this.valid.delete(old);
      this.bytes -= old.length;
    }
  }
}
