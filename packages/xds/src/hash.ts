import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { getOrCreate } from "./get-or-create.js";

/** What a set version is computed from: each member's name and content version. */
export interface VersionedMember {
  readonly name: string;
  readonly version: string;
}

/**
 * A member's digest: the first 128 bits of SHA-256(name, version) as four 32-bit lanes (signed,
 * so that V8 keeps them as small integers). A member that has the slots (CachedResource) keeps
 * its own, computed once however many sets it joins; others are kept in a side table.
 */
export interface MemberDigest {
  digested: boolean;
  lane0: number;
  lane1: number;
  lane2: number;
  lane3: number;
}

const sideDigests = new WeakMap<VersionedMember, MemberDigest>();

function hasSlots(member: VersionedMember): member is VersionedMember & MemberDigest {
  return typeof (member as Partial<MemberDigest>).digested === "boolean";
}

function computeInto(member: VersionedMember, into: MemberDigest): MemberDigest {
  const bytes = sha256(`${member.name}\u0000${member.version}`);
  into.lane0 = bytes.readInt32LE(0);
  into.lane1 = bytes.readInt32LE(4);
  into.lane2 = bytes.readInt32LE(8);
  into.lane3 = bytes.readInt32LE(12);
  into.digested = true;
  return into;
}

function digestOf(member: VersionedMember): MemberDigest {
  if (hasSlots(member)) return member.digested ? member : computeInto(member, member);
  return getOrCreate(sideDigests, member, () =>
    computeInto(member, { digested: false, lane0: 0, lane1: 0, lane2: 0, lane3: 0 }),
  );
}

/**
 * The version of a set of resources as a multiset hash: the lane-wise sum (mod 2^32) of its
 * members' digests, and their count. A sum does not depend on order, so identical content yields
 * an identical version on every replica without sorting anything, and it can be updated by adding
 * what came and subtracting what left: a LinearCache update hashes only the resources it changed,
 * and the union of disjoint sets (Snapshot.merge) is the sum of their versions.
 */
export class SetVersion {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private count = 0;

  static of(members: Iterable<VersionedMember>): SetVersion {
    const v = new SetVersion();
    for (const m of members) v.add(m);
    return v;
  }

  /** The version of the union of disjoint sets: the sum of theirs. */
  static sum(parts: Iterable<SetVersion>): SetVersion {
    const v = new SetVersion();
    for (const p of parts) {
      v.a = (v.a + p.a) | 0;
      v.b = (v.b + p.b) | 0;
      v.c = (v.c + p.c) | 0;
      v.d = (v.d + p.d) | 0;
      v.count += p.count;
    }
    return v;
  }

  add(member: VersionedMember): void {
    const m = digestOf(member);
    this.a = (this.a + m.lane0) | 0;
    this.b = (this.b + m.lane1) | 0;
    this.c = (this.c + m.lane2) | 0;
    this.d = (this.d + m.lane3) | 0;
    this.count++;
  }

  remove(member: VersionedMember): void {
    const m = digestOf(member);
    this.a = (this.a - m.lane0) | 0;
    this.b = (this.b - m.lane1) | 0;
    this.c = (this.c - m.lane2) | 0;
    this.d = (this.d - m.lane3) | 0;
    this.count--;
  }

  copy(): SetVersion {
    return SetVersion.sum([this]);
  }

  /** Members counted. */
  get size(): number {
    return this.count;
  }

  /**
   * A key equal for equal content and (but for a 2^-128 chance) different otherwise: what sets
   * are interned by, cheaper than the version string, which is computed only when asked for.
   */
  key(): string {
    // Ten UTF-16 code units, one flat string (a template of five numbers is a tree of pieces).
    return String.fromCharCode(
      this.a & 0xffff,
      this.a >>> 16,
      this.b & 0xffff,
      this.b >>> 16,
      this.c & 0xffff,
      this.c >>> 16,
      this.d & 0xffff,
      this.d >>> 16,
      this.count & 0xffff,
      this.count >>> 16,
    );
  }

  /** The version string: 22 base64url characters, like a resource's. */
  toString(): string {
    const lanes = Buffer.allocUnsafe(16);
    lanes.writeInt32LE(this.a, 0);
    lanes.writeInt32LE(this.b, 4);
    lanes.writeInt32LE(this.c, 8);
    lanes.writeInt32LE(this.d, 12);
    return versionString(createHash("sha256").update(lanes).update(String(this.count)).digest());
  }
}

type OneShot = (algorithm: string, data: string | Uint8Array, encoding: "buffer") => Buffer;

/** node:crypto's one-shot `hash` (Node ≥ 20.12), when this Node has it. */
const oneShot: OneShot | undefined = (() => {
  const h = (crypto as unknown as { hash?: OneShot }).hash;
  try {
    return typeof h === "function" && Buffer.isBuffer(h("sha256", "", "buffer")) ? h : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * SHA-256 of `data`: in one call without a Hash object where Node has `crypto.hash`, which for the
 * short inputs hashed here costs a fraction of createHash().update().digest().
 */
export function sha256(data: string | Uint8Array): Buffer {
  return oneShot ? oneShot("sha256", data, "buffer") : createHash("sha256").update(data).digest();
}

const BASE64URL = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "latin1");

/**
 * A version string from a SHA-256 digest: its first 22 base64url characters (132 bits). Written
 * out here rather than sliced from the full encoding, which V8 would keep as a view holding the
 * whole 43-character string: a version lives as long as its resource.
 */
export function versionString(digest: Uint8Array): string {
  const out = Buffer.allocUnsafe(22);
  let o = 0;
  for (let i = 0; i < 15; i += 3) {
    const n = (digest[i]! << 16) | (digest[i + 1]! << 8) | digest[i + 2]!;
    out[o++] = BASE64URL[n >> 18]!;
    out[o++] = BASE64URL[(n >> 12) & 63]!;
    out[o++] = BASE64URL[(n >> 6) & 63]!;
    out[o++] = BASE64URL[n & 63]!;
  }
  out[20] = BASE64URL[digest[15]! >> 2]!;
  out[21] = BASE64URL[((digest[15]! & 3) << 4) | (digest[16]! >> 4)]!;
  return out.toString("latin1");
}
