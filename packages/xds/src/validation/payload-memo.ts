import { sha256 } from "../hash.js";

/**
 * `google.protobuf.Any` payloads found valid, by type and content hash: a payload that many
 * resources embed (the same TLS context in every filter chain and every proxy's inbound listener,
 * the router's empty config) is decoded and checked once. Only payloads whose check depends on
 * nothing but their bytes are remembered (a timestamp rule against "now" is not). Bounded: the
 * oldest entries go first once it holds `maxEntries`.
 */
export class PayloadMemo {
  /** type name → SHA-256 (base64) of valid payloads: keys of one short flat string each. */
  private readonly valid = new Map<string, Set<string>>();
  private readonly order: [Set<string>, string][] = [];
  private head = 0;

  constructor(private readonly maxEntries = 32_768) {}

  /** The key of a payload's bytes (its type is passed beside it). */
  key(value: Uint8Array): string {
    return sha256(value).toString("base64");
  }

  has(typeName: string, key: string): boolean {
    return this.valid.get(typeName)?.has(key) ?? false;
  }

  add(typeName: string, key: string): void {
    let set = this.valid.get(typeName);
    if (!set) {
      set = new Set();
      this.valid.set(typeName, set);
    }
    if (set.has(key)) return;
    set.add(key);
    this.order.push([set, key]);
    if (this.order.length - this.head > this.maxEntries) {
      const [oldSet, oldKey] = this.order[this.head++]!;
      oldSet.delete(oldKey);
      if (this.head > this.maxEntries) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
    }
  }
}
