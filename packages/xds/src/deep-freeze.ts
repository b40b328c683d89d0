/**
 * Freezes a message and everything reachable from it (typed arrays cannot be frozen, and their
 * bytes are copied by the encoding anyway). Stops at objects already frozen.
 */
export function deepFreeze(value: object): void {
  if (Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === "object" && v !== null) deepFreeze(v);
  }
}
