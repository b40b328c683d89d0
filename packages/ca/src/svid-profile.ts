import { createPublicKey, type KeyObject, verify as verifyCb } from "node:crypto";
import { promisify } from "node:util";
import { children, type DerNode, decode, expectTag, readOid, Tag } from "./asn1/der.js";
import { CaError } from "./ca-error.js";
import { fromPemOf, toPem } from "./pem.js";
import { SpiffeId } from "./spiffe-id.js";
import { isSigningCertificate, type ParsedCertificate, parseCertificate } from "./x509/certificate.js";
import { KeyUsage } from "./x509/extensions.js";
import { Oid, SIGNATURE_DIGESTS, SIGNATURE_KEY_KINDS } from "./x509/oids.js";

const verify = promisify(verifyCb);

/** Longest chain (leaf, intermediates, root) the validator walks. */
const MAX_CHAIN_LENGTH = 8;
/** How far before "now" a leaf's notBefore may lie by default (external CAs backdate; cfssl 5 min). */
export const DEFAULT_MAX_BACKDATE_MS = 5 * 60_000;
/** Clock skew tolerated between the CA and an external signer. */
const SKEW_MS = 60_000;

/** What a leaf must be, for {@link validateSvid}. */
export interface SvidExpectations {
  /** The one SPIFFE ID the caller was authorised for: the leaf's only URI SAN. */
  readonly spiffeId: SpiffeId;
  /** The current trust bundle's roots (PEM): the chain must verify up to one of them by signature. */
  readonly roots: readonly string[];
  /** Longest lifetime the CA hands out: notAfter may be at most this far after now. */
  readonly maxTtlMs: number;
  /** Now, in epoch milliseconds. */
  readonly now: number;
  /** The SubjectPublicKeyInfo DER the leaf must carry (the CSR's key re-encoded), when known. */
  readonly spki?: Buffer;
  /** DNS SANs the CA itself decided to add (server-side issuance only); none by default. */
  readonly dnsNames?: readonly string[];
  /** How far notBefore may precede now (default 5 minutes). */
  readonly maxBackdateMs?: number;
}

/** A leaf that passed {@link validateSvid}. */
export interface ValidatedSvid {
  readonly leaf: ParsedCertificate;
  /** The chain as PEM: leaf first, then intermediates, ending with the root from the trust bundle. */
  readonly chain: string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface Roots {
  readonly certs: readonly ParsedCertificate[];
  readonly pems: readonly string[];
}

/** The verified path above a leaf: who signs it and what follows it in the chain. */
interface VerifiedPath {
  /** Certificates that may have signed the leaf (one intermediate, or the candidate roots). */
  readonly issuers: readonly ParsedCertificate[];
  /** PEM after the leaf when the intermediate path is used; roots are appended per leaf. */
  readonly intermediates: readonly string[];
  /** The root that anchors the intermediates (undefined when the leaf is signed by a root). */
  readonly anchor: string | undefined;
  readonly notAfter: number;
  readonly notBefore: number;
}

const keys = new WeakMap<ParsedCertificate, KeyObject>();
function keyOf(cert: ParsedCertificate): KeyObject {
  let key = keys.get(cert);
  if (!key) {
    key = createPublicKey({ key: cert.spkiRaw, format: "der", type: "spki" });
    keys.set(cert, key);
  }
  return key;
}

/** The key type (`ec`, `rsa`, `ed25519`) of a certificate's public key. */
function keyKindOf(cert: ParsedCertificate): string | undefined {
  return keyOf(cert).asymmetricKeyType;
}

async function signedBy(child: ParsedCertificate, issuer: ParsedCertificate): Promise<boolean> {
  if (!child.issuerRaw.equals(issuer.subjectRaw)) return false;
  if (!(child.signatureAlgorithm in SIGNATURE_DIGESTS)) return false;
  // The algorithm names the issuer's key type (Go's CheckSignature): otherwise node:crypto checks
  // an "RSA" signature as ECDSA because the key is EC, and peers refuse what passed here.
  if (SIGNATURE_KEY_KINDS[child.signatureAlgorithm] !== keyKindOf(issuer)) return false;
  if (!child.signatureAlgorithmRaw.equals(child.tbsSignatureAlgorithmRaw)) return false;
  try {
    const digest = SIGNATURE_DIGESTS[child.signatureAlgorithm] ?? null;
    return await verify(digest, child.tbsRaw, keyOf(issuer), child.signature);
  } catch {
    return false;
  }
}

function readExtKeyUsage(value: Buffer, what: string): string[] {
  return children(expectTag(decode(value, what), Tag.Sequence, what), what).map((n: DerNode) =>
    readOid(n, what),
  );
}

/** RFC 5280 4.1.2.2: a positive INTEGER of at most 20 octets (Go's x509 refuses negative ones). */
function serialProblem(cert: ParsedCertificate): string | undefined {
  const serial = cert.serialNumber;
  if (serial.length === 0 || ((serial[0] as number) & 0x80) !== 0) return "its serial number is negative";
  const magnitude = serial[0] === 0 ? serial.subarray(1) : serial;
  if (magnitude.every((b) => b === 0)) return "its serial number is zero";
  if (magnitude.length > 20) return `its serial number is ${magnitude.length} octets long, more than 20`;
  return undefined;
}

/** Extensions a leaf may mark critical: the ones X509-SVID uses, and what every verifier processes. */
const LEAF_CRITICAL_OK: ReadonlySet<string> = new Set([
  Oid.subjectAltName,
  Oid.keyUsage,
  Oid.basicConstraints,
  Oid.extKeyUsage,
  Oid.subjectKeyIdentifier,
  Oid.authorityKeyIdentifier,
  Oid.certificatePolicies,
]);
/** A signing certificate may also carry critical name constraints (X509-SVID 4.2). */
const SIGNING_CRITICAL_OK: ReadonlySet<string> = new Set([...LEAF_CRITICAL_OK, Oid.nameConstraints]);

/** RFC 5280 4.2: a verifier that meets a critical extension it does not know must reject the certificate. */
function unknownCritical(cert: ParsedCertificate, known: ReadonlySet<string>): string[] {
  return [...cert.extensions].filter(([id, ext]) => ext.critical && !known.has(id)).map(([id]) => id);
}

/** What is wrong with the leaf itself (names, usages, lifetime, key), per X509-SVID 2–4. */
function profileProblems(leaf: ParsedCertificate, expected: SvidExpectations): string[] {
  const problems: string[] = [];
  const serial = serialProblem(leaf);
  if (serial) problems.push(serial);
  for (const id of unknownCritical(leaf, LEAF_CRITICAL_OK)) {
    problems.push(`it has a critical extension ${id} that TLS peers do not know and must refuse`);
  }
  if (!leaf.signatureAlgorithmRaw.equals(leaf.tbsSignatureAlgorithmRaw)) {
    problems.push("its inner and outer signature algorithms differ (RFC 5280 4.1.1.2)");
  }
  const id = expected.spiffeId.toString();
  if (expected.spiffeId.path === "") {
    problems.push("a leaf must not carry a trust domain's own ID (X509-SVID 3.1: non-root path)");
  }
  if (leaf.uris.length !== 1 || leaf.uris[0] !== id) {
    problems.push(`its URI SANs are [${leaf.uris.join(", ")}], expected exactly ${id}`);
  }
  const allowedDns = new Set(expected.dnsNames ?? []);
  const extraDns = leaf.dnsNames.filter((d) => !allowedDns.has(d));
  if (extraDns.length > 0) problems.push(`it carries DNS SANs [${extraDns.join(", ")}] nobody authorised`);
  if (leaf.otherSanTags.length > 0) {
    problems.push(
      `it carries other SAN types (tags ${leaf.otherSanTags.map((t) => `0x${t.toString(16)}`).join(", ")})`,
    );
  }
  if (leaf.subjectAttributeTypes.includes(Oid.commonName)) {
    problems.push("its subject carries a common name (identity travels in the URI SAN only)");
  }
  const san = leaf.extensions.get(Oid.subjectAltName);
  if (san && leaf.subjectAttributeTypes.length === 0 && !san.critical) {
    problems.push("its subject is empty but the URI SAN is not critical (RFC 5280 4.1.2.6)");
  }
  if (leaf.isCa) problems.push("it is a CA certificate (cA must be false)");
  if (!leaf.extensions.has(Oid.basicConstraints)) problems.push("it has no basicConstraints");
  const ku = leaf.extensions.get(Oid.keyUsage);
  if (!ku || !leaf.keyUsage) problems.push("it has no key usage (X509-SVID 4.3)");
  else {
    if (!ku.critical) problems.push("its key usage is not critical (X509-SVID 4.3)");
    if (!leaf.keyUsage.has(KeyUsage.digitalSignature)) problems.push("its key usage lacks digitalSignature");
    if (leaf.keyUsage.has(KeyUsage.keyCertSign) || leaf.keyUsage.has(KeyUsage.cRLSign)) {
      problems.push("its key usage has keyCertSign or cRLSign");
    }
    const allowed = new Set<number>([
      KeyUsage.digitalSignature,
      KeyUsage.keyEncipherment,
      KeyUsage.keyAgreement,
    ]);
    if ([...leaf.keyUsage].some((bit) => !allowed.has(bit))) {
      problems.push("its key usage has bits beyond digitalSignature, keyEncipherment, keyAgreement");
    }
  }
  const eku = leaf.extensions.get(Oid.extKeyUsage);
  const purposes = eku ? readExtKeyUsage(eku.value, "leaf extKeyUsage") : [];
  if (!purposes.includes(Oid.serverAuth) || !purposes.includes(Oid.clientAuth)) {
    problems.push("its extended key usage is not serverAuth + clientAuth");
  }
  if (purposes.some((p) => p !== Oid.serverAuth && p !== Oid.clientAuth)) {
    problems.push(`its extended key usage has other purposes (${purposes.join(", ")})`);
  }
  const notBefore = leaf.notBefore.getTime();
  const notAfter = leaf.notAfter.getTime();
  if (notAfter <= notBefore) problems.push("its notAfter is not after its notBefore");
  if (notAfter <= expected.now) problems.push(`it has already expired (${leaf.notAfter.toISOString()})`);
  if (notAfter > expected.now + expected.maxTtlMs + SKEW_MS) {
    problems.push(
      `it lives until ${leaf.notAfter.toISOString()}, beyond the maximum TTL (${Math.round(expected.maxTtlMs / 1000)}s from now)`,
    );
  }
  if (notBefore > expected.now + SKEW_MS)
    problems.push(`it is not valid yet (${leaf.notBefore.toISOString()})`);
  if (notBefore < expected.now - (expected.maxBackdateMs ?? DEFAULT_MAX_BACKDATE_MS) - SKEW_MS) {
    problems.push(`its notBefore ${leaf.notBefore.toISOString()} is backdated too far`);
  }
  if (expected.spki && !leaf.spkiRaw.equals(expected.spki))
    problems.push("its public key is not the requested key");
  return problems;
}

/**
 * The SVID profile check every leaf passes before the CA hands it out, whatever made it (the local
 * key, an upstream-signed intermediate, Vault, any `ExternalSigner`): the chain verifies by
 * signature up to a root of the current trust bundle (never matched by name alone), the lifetime
 * is within `maxTtl` and within every issuer's, exactly the authorised URI SAN and nothing else
 * (no unauthorised DNS SAN, no other SAN type, no CN), key usage and EKU as X509-SVID 4.3/4.4 say.
 *
 * A validator caches what does not change between leaves (parsed roots, the verified path above
 * the leaf), keyed by the roots array: a new trust bundle starts afresh.
 */
export class SvidValidator {
  private readonly roots = new WeakMap<readonly string[], Roots>();
  private readonly paths = new WeakMap<readonly string[], Map<string, VerifiedPath>>();

  /** Checks `chain` (PEM or DER, leaf first); throws `invalid-svid` naming every problem found. */
  async validate(chain: readonly (string | Buffer)[], expected: SvidExpectations): Promise<ValidatedSvid> {
    const ders = chain.flatMap((item, i) =>
      typeof item === "string" ? fromPemOf(item, "CERTIFICATE", `svid certificate ${i + 1}`) : [item],
    );
    if (ders.length === 0) throw new CaError("invalid-svid", "the chain is empty");
    if (ders.length > MAX_CHAIN_LENGTH) {
      throw new CaError(
        "invalid-svid",
        `the chain has ${ders.length} certificates, more than ${MAX_CHAIN_LENGTH}`,
      );
    }
    const leaf = parseCertificate(ders[0] as Buffer, "leaf");
    const problems = profileProblems(leaf, expected);
    const path = await this.pathAbove(ders.slice(1), expected.roots, expected.now);
    let root: string | undefined;
    if (typeof path === "string") problems.push(path);
    else {
      let issuer: ParsedCertificate | undefined;
      for (const candidate of path.issuers) {
        if (await signedBy(leaf, candidate)) {
          issuer = candidate;
          break;
        }
      }
      if (!issuer) {
        const kind = SIGNATURE_KEY_KINDS[leaf.signatureAlgorithm];
        const named = path.issuers.filter((c) => c.subjectRaw.equals(leaf.issuerRaw));
        if (named.length > 0 && named.every((c) => keyKindOf(c) !== kind)) {
          problems.push(
            `its signature algorithm ${leaf.signatureAlgorithm} does not match its issuer's ${keyKindOf(named[0] as ParsedCertificate)} key`,
          );
        } else {
          problems.push(
            path.anchor
              ? "its signature does not verify with the intermediate in its chain"
              : "it does not verify to a root in the current trust bundle",
          );
        }
      } else {
        root = path.anchor ?? toPem("CERTIFICATE", issuer.der);
        const issuerNotAfter = Math.min(path.notAfter, issuer.notAfter.getTime());
        const issuerNotBefore = Math.max(path.notBefore, issuer.notBefore.getTime());
        if (leaf.notAfter.getTime() > issuerNotAfter) {
          problems.push(`it outlives its issuer (${new Date(issuerNotAfter).toISOString()})`);
        }
        if (leaf.notBefore.getTime() < issuerNotBefore) {
          problems.push(`it starts before its issuer (${new Date(issuerNotBefore).toISOString()})`);
        }
      }
    }
    if (problems.length > 0) {
      throw new CaError(
        "invalid-svid",
        `not a valid X509-SVID for ${expected.spiffeId}: ${problems.join("; ")}`,
      );
    }
    const intermediates = typeof path === "string" ? [] : path.intermediates;
    return {
      leaf,
      chain: [toPem("CERTIFICATE", leaf.der), ...intermediates, root as string],
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
    };
  }

  private rootsOf(pems: readonly string[]): Roots {
    let roots = this.roots.get(pems);
    if (!roots) {
      roots = {
        pems,
        certs: pems.map((pem, i) =>
          parseCertificate(
            fromPemOf(pem, "CERTIFICATE", "trust bundle")[0] as Buffer,
            `trust bundle root ${i + 1}`,
          ),
        ),
      };
      this.roots.set(pems, roots);
    }
    return roots;
  }

  /** Verifies the certificates above the leaf up to a root; a string says what is wrong. */
  private async pathAbove(
    above: readonly Buffer[],
    rootPems: readonly string[],
    now: number,
  ): Promise<VerifiedPath | string> {
    const roots = this.rootsOf(rootPems);
    let cache = this.paths.get(rootPems);
    if (!cache) {
      cache = new Map();
      this.paths.set(rootPems, cache);
    }
    const cacheKey = above.map((d) => d.toString("base64")).join(".");
    const cached = cache.get(cacheKey);
    if (cached && cached.notAfter > now && cached.notBefore <= now + SKEW_MS) return cached;
    const path = above.map((der, i) => parseCertificate(der, `chain certificate ${i + 2}`));
    // A signer may append the root: the bundle's copy anchors the path, so drop it here.
    while (
      path.length > 0 &&
      roots.certs.some((r) => r.der.equals((path[path.length - 1] as ParsedCertificate).der))
    ) {
      path.pop();
    }
    let notAfter = Number.POSITIVE_INFINITY;
    let notBefore = Number.NEGATIVE_INFINITY;
    const validRoots = roots.certs.filter(
      (r) => r.notAfter.getTime() > now && r.notBefore.getTime() <= now + SKEW_MS,
    );
    if (validRoots.length === 0) return "no root in the current trust bundle is valid now";
    let verified: VerifiedPath;
    if (path.length === 0) {
      verified = { issuers: validRoots, intermediates: [], anchor: undefined, notAfter, notBefore };
    } else {
      for (const [i, cert] of path.entries()) {
        if (!isSigningCertificate(cert)) return `chain certificate ${i + 2} is not a CA certificate`;
        // X509-SVID 3.2: a signing certificate's SPIFFE ID, if any, has no path.
        const withPath = cert.uris.filter((u) => SpiffeId.tryParse(u)?.path);
        if (withPath.length > 0) {
          return `chain certificate ${i + 2} is a signing certificate with a workload SPIFFE ID (${withPath.join(", ")}); a signing certificate's SPIFFE ID must not have a path (X509-SVID 3.2)`;
        }
        const critical = unknownCritical(cert, SIGNING_CRITICAL_OK);
        if (critical.length > 0) {
          return `chain certificate ${i + 2} has critical extensions TLS peers do not know (${critical.join(", ")})`;
        }
        if (cert.notAfter.getTime() <= now || cert.notBefore.getTime() > now + SKEW_MS) {
          return `chain certificate ${i + 2} is not valid now (${cert.notBefore.toISOString()} – ${cert.notAfter.toISOString()})`;
        }
        notAfter = Math.min(notAfter, cert.notAfter.getTime());
        notBefore = Math.max(notBefore, cert.notBefore.getTime());
      }
      for (let i = 0; i + 1 < path.length; i++) {
        if (!(await signedBy(path[i] as ParsedCertificate, path[i + 1] as ParsedCertificate))) {
          return `chain certificate ${i + 2} is not signed by certificate ${i + 3}`;
        }
      }
      const top = path[path.length - 1] as ParsedCertificate;
      let anchor: ParsedCertificate | undefined;
      for (const root of validRoots) {
        if (await signedBy(top, root)) {
          anchor = root;
          break;
        }
      }
      if (!anchor) return "its chain does not verify to a root in the current trust bundle";
      verified = {
        issuers: [path[0] as ParsedCertificate],
        intermediates: path.map((c) => toPem("CERTIFICATE", c.der)),
        anchor: toPem("CERTIFICATE", anchor.der),
        notAfter: Math.min(notAfter, anchor.notAfter.getTime()),
        notBefore: Math.max(notBefore, anchor.notBefore.getTime()),
      };
    }
    if (cache.size > 16) cache.clear();
    cache.set(cacheKey, verified);
    return verified;
  }
}

/**
 * Checks one leaf against the X509-SVID profile and the current trust bundle (see
 * {@link SvidValidator}); throws `CaError` `invalid-svid` naming every problem. For many leaves,
 * keep one `SvidValidator` so roots and intermediates are parsed and verified once.
 */
export function validateSvid(
  chain: readonly (string | Buffer)[],
  expected: SvidExpectations,
): Promise<ValidatedSvid> {
  return new SvidValidator().validate(chain, expected);
}
