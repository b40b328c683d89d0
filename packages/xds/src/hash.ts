import { createHash } from "node:crypto";

/** What a set version is computed from: each member's name and content version. */
export interface VersionedMember {
  readonly name: string;
  readonly version: string;
}

const memberDigests = new WeakMap<VersionedMember, Uint32Array>();

/**
 * A member's digest: the first 128 bits of SHA-256(name, version) as four 32-bit lanes, computed
 * once per member object (an interned CachedResource is hashed once for every set it joins).
 */
function memberDigest(member: VersionedMember): Uint32Array {
  let digest = memberDigests.get(member);
  if (!digest) {
    const bytes = createHash("sha256").update(member.name).update("\u0000").update(member.version).digest();
    digest = new Uint32Array([
      bytes.readUInt32LE(0),
      bytes.readUInt32LE(4),
      bytes.readUInt32LE(8),
      bytes.readUInt32LE(12),
    ]);
    memberDigests.set(member, digest);
  }
  return digest;
}

/**
 * The version of a set of resources as a multiset hash: the lane-wise sum (mod 2^32) of its
 * members' digests, and their count. A sum does not depend on order, so identical content yields
 * an identical version on every replica without sorting anything, and it can be updated by adding
 * what came and subtracting what left: a LinearCache update hashes only the resources it changed.
 */
export class SetVersion {
  private readonly lanes = new Uint32Array(4);
  private count = 0;

  static of(members: Iterable<VersionedMember>): SetVersion {
    const v = new SetVersion();
    for (const m of members) v.add(m);
    return v;
  }

  add(member: VersionedMember): void {
    const d = memberDigest(member);
    for (let i = 0; i < 4; i++) this.lanes[i] = (this.lanes[i]! + d[i]!) >>> 0;
    this.count++;
  }

  remove(member: VersionedMember): void {
    const d = memberDigest(member);
    for (let i = 0; i < 4; i++) this.lanes[i] = (this.lanes[i]! - d[i]!) >>> 0;
    this.count--;
  }

  copy(): SetVersion {
    const v = new SetVersion();
    v.lanes.set(this.lanes);
    v.count = this.count;
    return v;
  }

  /** The version string: 22 base64url characters, like a resource's. */
  toString(): string {
    return createHash("sha256")
      .update(new Uint8Array(this.lanes.buffer))
      .update(String(this.count))
      .digest("base64url")
      .slice(0, 22);
  }
}

/**
 * The version of a set of resources (see {@link SetVersion}): identical content, identical
 * version on every replica, whatever the order.
 */
export function versionOfResources(resources: Iterable<VersionedMember>): string {
  return SetVersion.of(resources).toString();
}
