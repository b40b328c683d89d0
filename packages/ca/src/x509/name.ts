import { oid, sequence, set, utf8String } from "../asn1/der.js";
import { Oid } from "./oids.js";

/** Encodes an X.501 Name with an optional O and CN (UTF8String), in that order. */
export function name(parts: { organization?: string; commonName?: string }): Buffer {
  const rdns: Buffer[] = [];
  if (parts.organization !== undefined) {
    rdns.push(set(sequence(oid(Oid.organizationName), utf8String(parts.organization))));
  }
  if (parts.commonName !== undefined) {
    rdns.push(set(sequence(oid(Oid.commonName), utf8String(parts.commonName))));
  }
  return sequence(...rdns);
}
