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
 * so that V8 keeps them as small integers); what set versions are computed from. A member that has the slots (CachedResource) keeps
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

/** Member digests computed so far in this process (each member's once): for tests. @internal */
export const digestCounter = { computed: 0 };

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
  digestCounter.computed++;
  return into;
}

/** A member's digest: kept on the member (CachedResource) or in a side table, computed once. */
export function digestOf(member: VersionedMember): MemberDigest {
  if (hasSlots(member)) return member.digested ? member : computeInto(member, member);
  return getOrCreate(sideDigests, member, () =>
    computeInto(member, { digested: false, lane0: 0, lane1: 0, lane2: 0, lane3: 0 }),
  );
}

/** The canonical order of members: by digest, as four unsigned 32-bit numbers. */
export function compareDigests(a: VersionedMember, b: VersionedMember): number {
  const x = digestOf(a);
  const y = digestOf(b);
  return (
    (x.lane0 >>> 0) - (y.lane0 >>> 0) ||
    (x.lane1 >>> 0) - (y.lane1 >>> 0) ||
    (x.lane2 >>> 0) - (y.lane2 >>> 0) ||
    (x.lane3 >>> 0) - (y.lane3 >>> 0)
  );
}

/** A copy of `members` in canonical order (see {@link setVersion}). */
export function sortedByDigest<T extends VersionedMember>(members: Iterable<T>): T[] {
  const list = [...members];
  for (const m of list) digestOf(m);
  return list.sort(compareDigests);
}

/**
 * The version of a set of resources: SHA-256 over its members' digests in canonical order (by
 * digest), 22 base64url characters like a resource's. `runs` are disjoint lists, each already in
 * canonical order (one for a plain set; a union's parts, Snapshot.merge); they are merged as they
 * are written, so a union costs no sort and equals the version of one set of the same members.
 *
 * Why not a sum of digests (an incremental multiset hash, as an earlier version did): a sum of
 * 128-bit digests is open to Wagner's generalized-birthday attack. Whoever controls resource
 * contents (a tenant's service names, metadata) can find two different sets with the same sum in
 * about 2^23 hashes (a k-tree over 128 lists: 35 s on one core, see
 * test/support/lane-sum-collision.mjs), and a client holding one set would take the other's
 * version as "already have it" and skip the update; a content-interned set would even be replaced
 * by the other. Incremental hashes that resist the attack cost too much per set here: an additive
 * one needs thousands of bits (LtHash: 2 KB a digest) and a multiplicative one big-number
 * arithmetic (MuHash), for thousands of per-proxy sets. A hash over the sorted list reduces to
 * SHA-256's collision resistance and to that of the 128-bit member digests (2^64 work, the bound
 * the 132-bit resource versions themselves have). Sorting by digest rather than by name is
 * canonical too (names are unique in a set, digests but for a 2^-128 chance) and compares
 * numbers, not strings. The price: a version is computed in O(n) (16 bytes a member through
 * SHA-256), once per set (a union's when first asked for), and a LinearCache update keeps its
 * list sorted by merging instead of adding and subtracting; member digests are still computed
 * once per resource.
 */
export function setVersion(runs: readonly (readonly VersionedMember[])[]): string {
  let total = 0;
  for (const r of runs) total += r.length;
  const buf = Buffer.allocUnsafe(16 * total + 8);
  let o = 0;
  const write = (m: VersionedMember) => {
    const d = digestOf(m);
    buf.writeInt32LE(d.lane0, o);
    buf.writeInt32LE(d.lane1, o + 4);
    buf.writeInt32LE(d.lane2, o + 8);
    buf.writeInt32LE(d.lane3, o + 12);
    o += 16;
  };
  if (runs.length === 1) for (const m of runs[0]!) write(m);
  else mergeRuns(runs, write);
  // Domain and count, so that no set's input is another's prefix.
  buf.writeUInt32LE(0x73657476, o); // "vtes"
  buf.writeUInt32LE(total, o + 4);
  return versionString(sha256(buf));
}

/** Visits the members of sorted, disjoint `runs` in canonical order (a k-way merge; k is small). */
export function mergeRuns<T extends VersionedMember>(
  runs: readonly (readonly T[])[],
  visit: (member: T) => void,
): void {
  const at = new Array<number>(runs.length).fill(0);
  for (;;) {
    let best = -1;
    for (let i = 0; i < runs.length; i++) {
      if (at[i]! >= runs[i]!.length) continue;
      if (best < 0 || compareDigests(runs[i]![at[i]!]!, runs[best]![at[best]!]!) < 0) best = i;
    }
    if (best < 0) return;
    visit(runs[best]![at[best]!++]!);
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
