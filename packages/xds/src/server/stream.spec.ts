import { describe, expect, it } from "vitest";
import { namesOf } from "./stream.js";

describe("namesOf", () => {
  it("gives the names of a list in order, the same array for the same list while it is in use", () => {
    const list = [{ name: "c2" }, { name: "c1" }, { name: "c3" }];
    const names = namesOf(list);
    expect(names).toEqual(["c2", "c1", "c3"]);
    // Streams pushing the same list share one names array (events, unanswered responses).
    expect(namesOf(list)).toBe(names);
    // Another list with the same content has its own.
    const copy = namesOf([...list]);
    expect(copy).toEqual(names);
    expect(copy).not.toBe(names);
    expect(namesOf([])).toEqual([]);
  });
});
