import { CaError } from "./ca-error.js";

const SCHEME = "spiffe://";
/** SPIFFE-ID spec section 2.1: trust domain characters. */
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
/** SPIFFE-ID spec section 2.2: path segment characters. */
const SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;
/** SPIFFE-ID spec section 2.3: implementations must support IDs up to 2048 bytes. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** DNS-name limit that the trust domain is modelled on. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

function invalid(input: string, why: string): CaError {
  const shown = input.length > 80 ? `${input.slice(0, 77)}...` : input;
  return new CaError(
    "invalid-spiffe-id",
    `invalid SPIFFE ID ${JSON.stringify(shown)}: ${why} (expected spiffe://<trust-domain>/<path>)`,
  );
}

/**
 * Checks a trust domain name (SPIFFE-ID spec 2.1): lowercase letters, digits, `.`, `-`, `_`, no
 * port, userinfo or anything else. Throws `invalid-spiffe-id` saying which rule failed.
 */
export function validateTrustDomain(trustDomain: string): string {
  if (trustDomain.length === 0) throw invalid(`spiffe://${trustDomain}`, "the trust domain is empty");
  if (Buffer.byteLength(trustDomain) > MAX_TRUST_DOMAIN_BYTES) {
    throw invalid(
      `spiffe://${trustDomain}`,
      `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`,
    );
  }
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    const bad = [...trustDomain].find((c) => !/[a-z0-9._-]/.test(c));
    const why =
      bad === ":"
        ? "a port is not allowed in the trust domain"
        : bad === "@"
          ? "userinfo is not allowed in the trust domain"
          : bad !== undefined && /[A-Z]/.test(bad)
            ? "the trust domain must be lowercase"
            : `character ${JSON.stringify(bad)} is not allowed in the trust domain (allowed: a-z 0-9 . - _)`;
    throw invalid(`spiffe://${trustDomain}`, why);
  }
  return trustDomain;
}

function validateSegment(input: string, segment: string): void {
  if (segment.length === 0) throw invalid(input, "the path has an empty segment (// or a trailing /)");
  if (segment === "." || segment === "..")
    throw invalid(input, `the path segment "${segment}" is not allowed`);
  if (!SEGMENT_CHARS.test(segment)) {
    const bad = [...segment].find((c) => !/[a-zA-Z0-9._-]/.test(c));
    const why =
      bad === "?"
        ? "a query is not allowed"
        : bad === "#"
          ? "a fragment is not allowed"
          : bad === "%"
            ? "percent-encoding is not allowed in the path"
            : `character ${JSON.stringify(bad)} is not allowed in a path segment (allowed: a-z A-Z 0-9 . - _)`;
    throw invalid(input, why);
  }
}

/**
 * A SPIFFE ID (`spiffe://<trust-domain>/<path>`), validated per the SPIFFE-ID specification. Values
 * are immutable and compare with {@link SpiffeId.equals}; `toString()` gives the canonical URI that
 * goes into an X509-SVID's URI SAN.
 */
export class SpiffeId {
  /** The trust domain name, e.g. `cluster.local`. */
  readonly trustDomain: string;
  /** The path including its leading `/`, or `""` for a trust domain's own ID. */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /** Parses and validates a SPIFFE ID; throws `CaError` (`invalid-spiffe-id`) naming the broken rule. */
  static parse(input: string): SpiffeId {
    if (typeof input !== "string") throw invalid(String(input), "not a string");
    if (Buffer.byteLength(input) > MAX_SPIFFE_ID_BYTES) {
      throw invalid(input, `longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    }
    if (!input.startsWith(SCHEME)) {
      throw invalid(
        input,
        input.toLowerCase().startsWith(SCHEME)
          ? "the scheme must be lowercase"
          : "the scheme must be spiffe://",
      );
    }
    const rest = input.slice(SCHEME.length);
    const slash = rest.indexOf("/");
    const authority = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? "" : rest.slice(slash);
    for (const [c, why] of [
      ["?", "a query is not allowed"],
      ["#", "a fragment is not allowed"],
    ] as const) {
      if (authority.includes(c)) throw invalid(input, why);
    }
    validateTrustDomain(authority);
    if (path !== "") {
      if (path === "/") throw invalid(input, "a trailing / is not allowed");
      for (const segment of path.slice(1).split("/")) validateSegment(input, segment);
    }
    return new SpiffeId(authority, path);
  }

  /** Like {@link SpiffeId.parse} but returns `undefined` for invalid input. */
  static tryParse(input: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(input);
    } catch {
      return undefined;
    }
  }

  /** Whether `input` is a valid SPIFFE ID. */
  static isValid(input: string): boolean {
    return SpiffeId.tryParse(input) !== undefined;
  }

  /** Builds an ID from a trust domain and path segments, validating each. */
  static fromSegments(trustDomain: string, ...segments: string[]): SpiffeId {
    return SpiffeId.parse(SCHEME + trustDomain + segments.map((s) => `/${s}`).join(""));
  }

  /** The trust domain's own ID, `spiffe://<trust-domain>` (used for signing certificates and bundles). */
  static forTrustDomain(trustDomain: string): SpiffeId {
    return new SpiffeId(validateTrustDomain(trustDomain), "");
  }

  /** Istio's workload identity form, `spiffe://<td>/ns/<namespace>/sa/<service-account>`. */
  static istio(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    return SpiffeId.fromSegments(trustDomain, "ns", namespace, "sa", serviceAccount);
  }

  /** The path segments (without slashes). */
  get segments(): string[] {
    return this.path === "" ? [] : this.path.slice(1).split("/");
  }

  /** Namespace and service account when the ID has Istio's `/ns/<ns>/sa/<sa>` form. */
  get istio(): { namespace: string; serviceAccount: string } | undefined {
    const s = this.segments;
    if (s.length === 4 && s[0] === "ns" && s[2] === "sa") {
      return { namespace: s[1] as string, serviceAccount: s[3] as string };
    }
    return undefined;
  }

  /** Whether this ID belongs to `trustDomain`. */
  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  /** Equality by canonical URI. */
  equals(other: SpiffeId | string): boolean {
    return this.toString() === (typeof other === "string" ? other : other.toString());
  }

  /** The canonical URI. */
  toString(): string {
    return SCHEME + this.trustDomain + this.path;
  }

  /** Serializes as the URI string. */
  toJSON(): string {
    return this.toString();
  }
}
