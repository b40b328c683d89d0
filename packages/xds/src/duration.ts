import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";

/**
 * Milliseconds as `google.protobuf.Duration` parts: whole seconds (rounded down) and the rest in
 * nanoseconds, so `seconds` and `nanos` never have opposite signs for positive inputs.
 */
export function durationParts(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Milliseconds as a `google.protobuf.Duration` message (TTLs, timeouts in resources). */
export function durationFromMs(ms: number): Duration {
  const { seconds, nanos } = durationParts(ms);
  return create(DurationSchema, { seconds: BigInt(seconds), nanos });
}

/** A `google.protobuf.Duration` (or its decoded shape) in milliseconds. */
export function msFromDuration(d: { readonly seconds: bigint; readonly nanos: number }): number {
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}
