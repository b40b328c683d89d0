import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NameSets, sameNames } from "./name-sets.js";

describe("NameSets", () => {
  it("hands out one shared set per distinct subscription and drops it after the last release", () => {
    const pool = new NameSets();
    const a = pool.acquire(["c2", "c1"]);
    const b = pool.acquire(["c1", "c2", "c1"]);
    expect(a).toBe(b);
    expect([...a]).toEqual(["c1", "c2"]);
    expect(pool.size).toBe(1);
    pool.release(a);
    expect(pool.size).toBe(1);
    pool.release(b);
    expect(pool.size).toBe(0);
    expect(pool.acquire([])).toBe(NameSets.empty);
  });

  it("sameNames agrees with set equality for lists without duplicates", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 4 }), { maxLength: 12 }),
        fc.uniqueArray(fc.string({ maxLength: 4 }), { maxLength: 12 }),
        (x, y) => {
          const set = new Set(x);
          const equal = y.length === set.size && y.every((n) => set.has(n));
          expect(sameNames(set, y)).toBe(equal);
        },
      ),
      { numRuns: 200 },
    );
  });
});
