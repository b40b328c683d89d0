import type { DescMessage, Registry } from "@bufbuild/protobuf";
import { payloadRegistry } from "./validation/validate-resource.js";

/**
 * Protobuf map fields (`Struct` fields, `Metadata.filter_metadata`, `typed_per_filter_config`,
 * RBAC `policies`…) are encoded by protobuf-es in the insertion order of their JavaScript
 * object, so two replicas that build the same resource with keys added in different orders get
 * different bytes, and so different content versions: every proxy would be sent the "change" on
 * failover. Protobuf's own answer is deterministic serialization (map entries sorted by key);
 * protobuf-es has none, so this sorts the encoded bytes instead.
 *
 * The walk is on the wire, guided by the schema: only fields through which a map can be reached
 * (maps, messages holding one, `google.protobuf.Any` payloads whose type the registry knows) are
 * entered; everything else is skipped by its length. Each run of entries of one map field is
 * sorted by key (the key's encoded bytes: UTF-8 for strings, so code-point order, as C++'s
 * deterministic serialization; the varint or fixed bytes for numbers and booleans: an arbitrary
 * but fixed order, which is all a content hash needs). Sorting entries permutes bytes within
 * their run and changes no length, so every enclosing length prefix stays valid and the result
 * is sorted in place in one copy. Bytes already canonical (the common case: keys added in order,
 * or no maps at all) are returned as they are, with nothing allocated.
 *
 * These bytes are both what is hashed and what is sent: a resource's version describes exactly
 * the bytes every client receives.
 *
 * What is not made canonical, so that equal messages may still get different bytes (and
 * versions) — each costs a re-send across replicas, never a wrong config:
 * - an `Any` payload of a type the registry does not know is left as it is (pass `@meshlet/api`'s
 *   `registry` to the snapshot or cache to reach every extension's maps);
 * - bytes inside `Any` payloads that protobuf-es did not write: duplicate map keys stay (sorted
 *   stably, so the last of equal keys stays last and still wins, as protobuf decodes them),
 *   unpacked repeated scalars stay unpacked, default values written stay written, unknown fields
 *   stay where they are;
 * - input nested deeper than protobuf's default recursion limit (100 messages), or not well
 *   formed: left as it is, whole (a client's parser would refuse it anyway).
 */
export function canonicalBytes(schema: DescMessage, bytes: Uint8Array, registry?: Registry): Uint8Array {
  const plan = planFor(schema);
  if (plan.size === 0) return bytes;
  const walk = new Walk(bytes, payloadRegistry(registry));
  try {
    walk.message(0, bytes.length, plan, 0);
  } catch (e) {
    // Bytes protobuf-es wrote are well formed; anything else is sent as it was encoded.
    if (e instanceof MalformedWire) return bytes;
    throw e;
  }
  return walk.buf;
}

type FieldPlan =
  | { readonly kind: "map"; readonly value?: DescMessage }
  | { readonly kind: "message"; readonly schema: DescMessage };

/** Fields (by number) through which a map can be reached; an empty plan: nothing to do. */
type Plan = ReadonlyMap<number, FieldPlan>;

const ANY = "google.protobuf.Any";
const plans = new WeakMap<DescMessage, Plan>();
const reaches = new WeakMap<DescMessage, boolean>();

function planFor(schema: DescMessage): Plan {
  let plan = plans.get(schema);
  if (plan) return plan;
  const fields = new Map<number, FieldPlan>();
  for (const f of schema.fields) {
    if (f.fieldKind === "map") {
      const value = f.mapKind === "message" && reachesMap(f.message) ? f.message : undefined;
      fields.set(f.number, value ? { kind: "map", value } : { kind: "map" });
    } else if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) {
      if (reachesMap(f.message)) fields.set(f.number, { kind: "message", schema: f.message });
    }
  }
  plan = fields;
  plans.set(schema, plan);
  return plan;
}

/** Whether a map field or an `Any` (whose payload may hold one) can be reached from `schema`. */
function reachesMap(schema: DescMessage): boolean {
  const known = reaches.get(schema);
  if (known !== undefined) return known;
  const seen = new Set<DescMessage>();
  const stack = [schema];
  let found = false;
  search: while (stack.length > 0) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    const k = reaches.get(s);
    if (k === false) continue;
    if (k === true || s.typeName === ANY) {
      found = true;
      break;
    }
    for (const f of s.fields) {
      if (f.fieldKind === "map") {
        found = true;
        break search;
      }
      if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message"))
        stack.push(f.message);
    }
  }
  // Nothing found: no type reached from here reaches a map either.
  if (!found) for (const s of seen) reaches.set(s, false);
  reaches.set(schema, found);
  return found;
}

/**
 * How deep messages may nest (map entries count, as they are messages on the wire): protobuf's
 * default recursion limit (C++ CodedInputStream, which Envoy parses with). Deeper input, which
 * only crafted bytes in an `Any` payload can be, is left as it is rather than walked recursively
 * into a stack overflow; a client would refuse it anyway.
 */
const MAX_DEPTH = 100;

/** Bytes that are not well-formed protobuf, or nest deeper than {@link MAX_DEPTH}. */
class MalformedWire extends Error {}

class Walk {
  private copied = false;

  constructor(
    public buf: Uint8Array,
    private readonly registry: Registry,
  ) {}

  /** Walks the fields of one message in [start, end), `depth` messages down. */
  message(start: number, end: number, plan: Plan, depth: number): void {
    if (depth > MAX_DEPTH) throw new MalformedWire();
    let pos = start;
    let runField = -1;
    let run: number[] = []; // entry boundaries: start0, end0, start1, end1, …
    while (pos < end) {
      const tagStart = pos;
      const tag = this.varint(pos);
      pos = this.next;
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (wireType !== 2) {
        pos = this.skip(pos, wireType);
        if (run.length > 0) run = this.sortRun(run);
        runField = -1;
        continue;
      }
      const len = this.varint(pos);
      const valueStart = this.next;
      const valueEnd = valueStart + len;
      if (valueEnd > end) throw new MalformedWire();
      pos = valueEnd;
      const fp = plan.get(field);
      if (fp?.kind === "map") {
        if (runField !== field && run.length > 0) run = this.sortRun(run);
        runField = field;
        run.push(tagStart, valueEnd);
        if (fp.value) this.mapValue(valueStart, valueEnd, fp.value, depth + 1);
        continue;
      }
      if (run.length > 0) run = this.sortRun(run);
      runField = -1;
      if (fp) this.sub(valueStart, valueEnd, fp.schema, depth + 1);
    }
    if (pos !== end) throw new MalformedWire(); // a fixed-size value ran past the end
    if (run.length > 0) this.sortRun(run);
  }

  private sub(start: number, end: number, schema: DescMessage, depth: number): void {
    if (schema.typeName === ANY) this.any(start, end, depth);
    else this.message(start, end, planFor(schema), depth);
  }

  /** Calls `visit` with each length-delimited field in [start, end) (others are skipped). */
  private fields(start: number, end: number, visit: (field: number, s: number, e: number) => void): void {
    let pos = start;
    while (pos < end) {
      const tag = this.varint(pos);
      pos = this.next;
      if ((tag & 7) !== 2) {
        pos = this.skip(pos, tag & 7);
        continue;
      }
      const len = this.varint(pos);
      const s = this.next;
      pos = s + len;
      if (pos > end) throw new MalformedWire();
      visit(tag >>> 3, s, pos);
    }
    if (pos !== end) throw new MalformedWire();
  }

  /** A map entry's value (field 2), when it is a message. */
  private mapValue(start: number, end: number, schema: DescMessage, depth: number): void {
    if (depth > MAX_DEPTH) throw new MalformedWire();
    this.fields(start, end, (field, s, e) => {
      if (field === 2) this.sub(s, e, schema, depth + 1);
    });
  }

  /** google.protobuf.Any { type_url = 1; value = 2 }: the payload, when its type is known. */
  private any(start: number, end: number, depth: number): void {
    let typeUrl = "";
    let valueStart = -1;
    let valueEnd = -1;
    this.fields(start, end, (field, s, e) => {
      if (field === 1) typeUrl = decoder.decode(this.buf.subarray(s, e));
      else if (field === 2) {
        valueStart = s;
        valueEnd = e;
      }
    });
    if (valueStart < 0) return;
    const schema = this.registry.getMessage(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
    if (schema) this.message(valueStart, valueEnd, planFor(schema), depth + 1);
  }

  /** Sorts one run of map entries by key, in place (in the copy); returns a fresh run. */
  private sortRun(run: number[]): number[] {
    const n = run.length / 2;
    if (n < 2) return [];
    const entries: { start: number; end: number; key: Uint8Array }[] = [];
    for (let i = 0; i < n; i++) {
      const start = run[2 * i]!;
      const end = run[2 * i + 1]!;
      entries.push({ start, end, key: this.entryKey(start, end) });
    }
    let sorted = true;
    for (let i = 1; i < n && sorted; i++)
      if (compareBytes(entries[i - 1]!.key, entries[i]!.key) > 0) sorted = false;
    if (sorted) return [];
    const from = entries[0]!.start;
    const to = entries[n - 1]!.end;
    const region = this.buf.slice(from, to);
    entries.sort((a, b) => compareBytes(a.key, b.key));
    if (!this.copied) {
      this.buf = this.buf.slice();
      this.copied = true;
    }
    let o = from;
    for (const e of entries) {
      this.buf.set(region.subarray(e.start - from, e.end - from), o);
      o += e.end - e.start;
    }
    return [];
  }

  /** The key (field 1) of the map entry whose tag starts at `start`: its encoded value bytes. */
  private entryKey(start: number, end: number): Uint8Array {
    this.varint(start); // the entry's tag
    const len = this.varint(this.next);
    let pos = this.next;
    const stop = Math.min(end, pos + len);
    while (pos < stop) {
      const tag = this.varint(pos);
      pos = this.next;
      const wireType = tag & 7;
      let s = pos;
      let e: number;
      if (wireType === 2) {
        const n = this.varint(pos);
        s = this.next;
        e = s + n;
      } else e = this.skip(pos, wireType);
      if (tag >>> 3 === 1) return this.buf.subarray(s, e);
      pos = e;
    }
    return EMPTY; // the default key ("" or 0), not written
  }

  private next = 0;

  /** Reads a varint at `pos` (lengths and tags: up to 32 bits); the position after it in `next`. */
  private varint(pos: number): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= this.buf.length || shift > 28) throw new MalformedWire();
      const b = this.buf[pos++]!;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    this.next = pos;
    return result >>> 0;
  }

  /** The position after a value of `wireType` (not length-delimited) starting at `pos`. */
  private skip(pos: number, wireType: number): number {
    switch (wireType) {
      case 0:
        while (pos < this.buf.length && this.buf[pos]! >= 0x80) pos++;
        if (pos >= this.buf.length) throw new MalformedWire();
        return pos + 1;
      case 1:
        return pos + 8;
      case 5:
        return pos + 4;
      case 2: {
        const len = this.varint(pos);
        return this.next + len;
      }
      default:
        throw new MalformedWire(); // groups: not written by protobuf-es for these protos
    }
  }
}

const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
