import { CaError } from "./ca-error.js";
import { type Duration, formatDuration, toMilliseconds } from "./duration.js";
import { SpiffeId } from "./spiffe-id.js";

/** The lifetime a request gets: `defaultMs` when it names none, refused when not positive or above `maxMs`. */
export function resolveTtl(ttl: Duration | undefined, defaultMs: number, maxMs: number): number {
  const ms = ttl === undefined ? defaultMs : toMilliseconds(ttl, "ttl");
  if (ms <= 0) throw new CaError("invalid-ttl", `ttl must be positive, got ${formatDuration(ms)}`);
  if (ms > maxMs) {
    throw new CaError(
      "invalid-ttl",
      `requested ttl ${formatDuration(ms)} exceeds the maximum ${formatDuration(maxMs)}; ask for less or raise maxTtl`,
    );
  }
  return ms;
}

/**
 * The one SPIFFE ID a leaf certifies: taken from the caller's authenticated `identities`; the CSR's
 * URI SANs (`requested`) may only narrow them to one the caller owns. It must be in `trustDomain`
 * and have a path (X509-SVID 3.1).
 */
export function resolveIdentity(
  requested: readonly string[],
  identities: readonly (SpiffeId | string)[],
  trustDomain: string,
): SpiffeId {
  const owned = identities.map((id) => (typeof id === "string" ? SpiffeId.parse(id) : id));
  if (owned.length === 0) {
    throw new CaError("no-identity", "the caller has no authenticated identity; nothing can be signed");
  }
  if (requested.length > 1) {
    throw new CaError(
      "identity-mismatch",
      `the CSR asks for ${requested.length} URI SANs; an X509-SVID carries exactly one SPIFFE ID`,
    );
  }
  let chosen: SpiffeId;
  if (requested.length === 1) {
    const match = owned.find((id) => id.equals(requested[0] as string));
    if (!match) {
      throw new CaError(
        "identity-mismatch",
        `the CSR asks for ${requested[0]} but the caller is authenticated as ${owned.join(", ")}; request your own identity`,
      );
    }
    chosen = match;
  } else if (owned.length === 1) {
    chosen = owned[0] as SpiffeId;
  } else {
    throw new CaError(
      "identity-mismatch",
      `the caller has ${owned.length} identities (${owned.join(", ")}); put the one to certify in the CSR's URI SAN`,
    );
  }
  if (!chosen.memberOf(trustDomain)) {
    throw new CaError(
      "foreign-trust-domain",
      `${chosen} is outside trust domain ${trustDomain}; this CA only issues for its own trust domain`,
    );
  }
  if (chosen.path === "") {
    // X509-SVID 3.1: a leaf's SPIFFE ID has a non-root path; the bare trust-domain ID names the
    // trust domain's signing authority, never a workload.
    throw new CaError(
      "invalid-spiffe-id",
      `${chosen} is the trust domain's own ID; a workload certificate needs a path (X509-SVID 3.1)`,
    );
  }
  return chosen;
}

/** DNS SANs must be plain hostnames (RFC 1123 labels, optional leading wildcard label). */
export function checkDnsNames(names: readonly string[]): readonly string[] {
  for (const name of names) {
    if (
      !/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(name) ||
      name.length > 253
    ) {
      throw new CaError("invalid-argument", `dnsNames: ${JSON.stringify(name)} is not a valid DNS name`);
    }
  }
  return names;
}
