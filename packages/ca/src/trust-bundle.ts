import { X509Certificate } from "node:crypto";
import { fromPemOf } from "./pem.js";

/** The roots a trust domain's workloads accept, versioned by a sequence number. */
export interface TrustBundle {
  /** The trust domain these roots vouch for. */
  readonly trustDomain: string;
  /** Root certificates, PEM, newest first. */
  readonly roots: readonly string[];
  /** Increases by one on every change (SPIFFE bundle `spiffe_sequence`). */
  readonly sequence: number;
}

/** One JWK of a SPIFFE bundle (SPIFFE Trust Domain and Bundle spec, section 4). */
export interface SpiffeBundleKey {
  readonly use: "x509-svid";
  readonly kty: string;
  readonly x5c: readonly [string];
  readonly [member: string]: unknown;
}

/** A SPIFFE bundle as a JWK Set. */
export interface SpiffeBundle {
  readonly keys: readonly SpiffeBundleKey[];
  readonly spiffe_sequence: number;
  readonly spiffe_refresh_hint?: number;
}

/**
 * Exports a trust bundle as a SPIFFE bundle (JWK Set): one key per root with `use: "x509-svid"`,
 * exactly one certificate in `x5c` and no `kid` (SPIFFE bundle spec: X.509 authorities carry no
 * key ID), `spiffe_sequence` from the bundle.
 */
export function toSpiffeBundle(
  bundle: TrustBundle,
  options: { refreshHintSeconds?: number } = {},
): SpiffeBundle {
  const keys = bundle.roots.map((pem): SpiffeBundleKey => {
    const der = fromPemOf(pem, "CERTIFICATE", "trust bundle root")[0] as Buffer;
    const jwk = new X509Certificate(der).publicKey.export({ format: "jwk" });
    const { kid: _kid, ...rest } = jwk as Record<string, unknown>;
    return { ...rest, kty: String(jwk.kty), use: "x509-svid", x5c: [der.toString("base64")] };
  });
  return {
    keys,
    spiffe_sequence: bundle.sequence,
    ...(options.refreshHintSeconds !== undefined ? { spiffe_refresh_hint: options.refreshHintSeconds } : {}),
  };
}

/** The DER of every root, concatenated: the `bundle` encoding of the SPIFFE Workload API. */
export function toDerBundle(bundle: TrustBundle): Buffer {
  return Buffer.concat(bundle.roots.flatMap((pem) => fromPemOf(pem, "CERTIFICATE", "trust bundle root")));
}
