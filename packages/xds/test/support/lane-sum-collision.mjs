// How the colliding sets in src/set-version.spec.ts were found (not run by the tests; about a
// minute on one core): Wagner's k-tree algorithm ("A Generalized Birthday Problem", CRYPTO 2002)
// against the additive set version meshlet used before (the lane-wise sum mod 2^32 of four
// 32-bit lanes, the first 128 bits of SHA-256(name NUL version) per member). 128 lists of 81,920
// clusters each ("p<list>-<j>" for the first 64 lists, "n<list>-<j>" for the others, whose
// digests enter negated); six merges zero 16 bits each, the last one the remaining 32: one member
// per list whose "p" digests sum to the same value as the "n" ones. Prints {p: [j…], n: [j…]}.
//
//   npm run build -w @meshlet/api -w @meshlet/xds && node packages/xds/test/support/lane-sum-collision.mjs
import { hash } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { resources } from "@meshlet/xds";

const MS = 1000;
const tail = Buffer.from(toBinary(ClusterSchema, resources.cluster({ name: "", connectTimeoutMs: MS })));
const enc = (name) => {
  const n = Buffer.from(name);
  return Buffer.concat([Buffer.from([0x0a, n.length]), n, tail]);
};
for (const s of ["p1-2", "n127-99999"]) {
  if (
    !enc(s).equals(Buffer.from(toBinary(ClusterSchema, resources.cluster({ name: s, connectTimeoutMs: MS }))))
  )
    throw new Error("enc");
}
const L0 = 81920,
  CAP = 131072,
  K = 7;
const nameOf = (list, j) => `${list < 64 ? "p" : "n"}${list}-${j}`;
function digest(name) {
  const v = hash("sha256", enc(name), "base64url").slice(0, 22);
  return hash("sha256", `${name}\u0000${v}`, "buffer");
}
function leaf(list) {
  const l = [new Uint32Array(L0), new Uint32Array(L0), new Uint32Array(L0), new Uint32Array(L0)];
  const neg = list >= 64;
  for (let j = 0; j < L0; j++) {
    const d = digest(nameOf(list, j));
    for (let k = 0; k < 4; k++) {
      const x = d.readUInt32LE(4 * k);
      l[k][j] = neg ? -x >>> 0 : x;
    }
  }
  return { lanes: l, n: L0, leaves: Uint32Array.from({ length: L0 }, (_, j) => j), w: 1 };
}
function merge(A, B, level) {
  // level 1..6: zero 16 bits (lane floor((level-1)/2), low or high half); level 7: lane 3 whole.
  const lane = level === 7 ? 3 : (level - 1) >> 1;
  const shift = level === 7 ? 0 : ((level - 1) & 1) * 16;
  const mask = level === 7 ? 0xffffffff : 0xffff;
  const idx = new Map();
  for (let j = 0; j < B.n; j++) {
    const key = level === 7 ? B.lanes[3][j] : (B.lanes[lane][j] >>> shift) & mask;
    const a = idx.get(key);
    if (a) a.push(j);
    else idx.set(key, [j]);
  }
  const outMax = level === 7 ? 64 : CAP;
  const lanes = [0, 1, 2, 3].map(() => new Uint32Array(outMax));
  const w = A.w * 2;
  const leaves = new Uint32Array(outMax * w);
  let n = 0;
  for (let i = 0; i < A.n && n < outMax; i++) {
    const want = ((-(A.lanes[lane][i] >>> shift) & mask) >>> 0) & mask;
    const hits = idx.get(level === 7 ? -A.lanes[3][i] >>> 0 : want);
    if (!hits) continue;
    for (const j of hits) {
      if (n >= outMax) break;
      for (let k = 0; k < 4; k++) lanes[k][n] = (A.lanes[k][i] + B.lanes[k][j]) >>> 0;
      leaves.set(A.leaves.subarray(i * A.w, (i + 1) * A.w), n * w);
      leaves.set(B.leaves.subarray(j * B.w, (j + 1) * B.w), n * w + A.w);
      n++;
    }
  }
  return { lanes, n, leaves, w };
}
function build(level, index) {
  if (level === 0) return leaf(index);
  const A = build(level - 1, 2 * index),
    B = build(level - 1, 2 * index + 1);
  const r = merge(A, B, level);
  process.stderr.write(`level ${level} node ${index}: ${r.n}\n`);
  return r;
}
const root = build(K, 0);
if (root.n === 0) {
  console.log("none");
  process.exit(1);
}
for (let k = 0; k < 4; k++) if (root.lanes[k][0] !== 0) throw new Error("not zero");
const leaves = [...root.leaves.subarray(0, root.w)];
console.log(JSON.stringify({ p: leaves.slice(0, 64), n: leaves.slice(64) }));
