/**
 * The time source of the engine and the rate limiter, injected so windows, JWKS refresh and
 * token expiry are testable without waiting.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The wall clock (`Date.now()`), the default {@link Clock}. */
export const systemClock: Clock = { now: () => Date.now() };
