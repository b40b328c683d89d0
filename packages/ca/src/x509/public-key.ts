import { createPublicKey, type KeyObject } from "node:crypto";
import {
  children,
  type DerNode,
  decode,
  expectTag,
  readBitString,
  readOid,
  readUnsignedInteger,
  Tag,
} from "../asn1/der.js";
import { CaError } from "../ca-error.js";
import { Oid } from "./oids.js";

const CURVES: Record<string, string> = { [Oid.p256]: "P-256", [Oid.p384]: "P-384" };
const UNSUPPORTED_CURVES: Record<string, string> = { "1.3.132.0.35": "P-521", "1.3.132.0.10": "secp256k1" };
const CURVE_POINT_BYTES: Record<string, number> = { "P-256": 32, "P-384": 48 };

/** What `createPublicKey` needs for a checked key: a JWK where possible, else the SPKI DER. */
export type PublicKeyInput =
  | { readonly key: Record<string, string>; readonly format: "jwk" }
  | { readonly key: Buffer; readonly format: "der"; readonly type: "spki" };

/** A workload public key read from a SubjectPublicKeyInfo, checked for type and size, not yet imported. */
export interface InspectedPublicKey {
  /** `rsa` keys get keyEncipherment in their key usage (SPIFFE X509-SVID 4.3 allows it). */
  readonly kind: "ec" | "rsa" | "ed25519";
  /** Plain data (structured-cloneable, e.g. to a worker thread). */
  readonly input: PublicKeyInput;
}

/** A workload public key imported into `node:crypto`. */
export interface ImportedPublicKey {
  readonly key: KeyObject;
  readonly kind: "ec" | "rsa" | "ed25519";
}

function bitLength(magnitude: Buffer): number {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  if (start === magnitude.length) return 0;
  return (magnitude.length - start - 1) * 8 + (32 - Math.clz32(magnitude[start] as number));
}

function stripZeros(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  return magnitude.subarray(start);
}

/** Largest RSA public exponent accepted: Go's crypto/rsa limit (`checkPub`), so Istio's and SPIRE's peers accept it too. */
const MAX_RSA_EXPONENT = 2n ** 31n - 1n;

/**
 * An RSA public exponent must be odd and at least 3 (RFC 8017 3.1: e is coprime to λ(n), which is
 * even). With e = 1, s = EM "verifies" for any message: a CSR's proof of possession could be
 * forged without a private key, and anyone could sign with the certified key.
 */
function checkRsaExponent(exponent: Buffer, where: string): void {
  const e = BigInt(`0x${exponent.toString("hex") || "0"}`);
  if (e < 3n || e % 2n === 0n || e > MAX_RSA_EXPONENT) {
    throw new CaError(
      "unsupported-key",
      `${where}: RSA public exponent ${e} is not supported; it must be odd, at least 3 and at most 2^31 - 1 (65537 is usual)`,
    );
  }
}

/**
 * Imports a public key from SPKI DER after checking its algorithm and size from the DER itself
 * (EC P-256/P-384, RSA 2048–8192, Ed25519). Keys are handed to OpenSSL as JWK where possible:
 * Node's JWK import skips OpenSSL 3's generic decoder, which is ~40x faster for RSA keys — and
 * key import, not the signature, dominated the cost of verifying a CSR.
 */
export function importSpki(spki: Buffer, where: string): ImportedPublicKey {
  const inspected = inspectSpki(spki, where);
  return { key: importPublicKey(inspected.input, where), kind: inspected.kind };
}

/**
 * Checks a SubjectPublicKeyInfo's algorithm and size from the DER alone and says how to import it,
 * without importing it (the import is the expensive part for EC keys).
 */
export function inspectSpki(spki: Buffer, where: string): InspectedPublicKey {
  const parts = children(expectTag(decode(spki, where), Tag.Sequence, where), where);
  if (parts.length !== 2) {
    throw new CaError(
      "malformed-der",
      `${where}: SubjectPublicKeyInfo has ${parts.length} elements, expected algorithm and subjectPublicKey`,
    );
  }
  const [algorithm, bits] = parts;
  const algParts = children(expectTag(algorithm, Tag.Sequence, `${where} algorithm`), `${where} algorithm`);
  if (algParts.length < 1 || algParts.length > 2) {
    throw new CaError("malformed-der", `${where} algorithm: expected an OID and at most one parameter`);
  }
  const [algOid, params] = algParts;
  const type = readOid(algOid as DerNode, `${where} algorithm`);
  const publicKey = readBitString(bits as DerNode, `${where} subjectPublicKey`);
  if (type === Oid.ecPublicKey) {
    // RFC 5480 2.1.1: namedCurve only (explicit parameters are forbidden in PKIX).
    const curveOid = params?.tag === Tag.Oid ? readOid(params, `${where} curve`) : "";
    const crv = CURVES[curveOid];
    if (!crv) {
      throw new CaError(
        "unsupported-key",
        `${where}: EC curve ${UNSUPPORTED_CURVES[curveOid] ?? (curveOid || "(explicit parameters)")} is not supported; use P-256 or P-384`,
      );
    }
    const size = CURVE_POINT_BYTES[crv] as number;
    if (publicKey[0] !== 0x04 || publicKey.length !== 1 + 2 * size) {
      // Compressed points are refused as Go's crypto/x509 (Istio, SPIRE) refuses them.
      throw new CaError(
        "unsupported-key",
        `${where}: the ${crv} point must be uncompressed (0x04 || X || Y, ${1 + 2 * size} bytes)`,
      );
    }
    const x = publicKey.subarray(1, 1 + size).toString("base64url");
    const y = publicKey.subarray(1 + size).toString("base64url");
    return { input: { key: { kty: "EC", crv, x, y }, format: "jwk" }, kind: "ec" };
  }
  if (type === Oid.rsaEncryption) {
    // RFC 3279 2.3.1: the parameters are NULL.
    if (params?.tag !== Tag.Null || params.content.length !== 0) {
      throw new CaError("malformed-der", `${where}: rsaEncryption parameters must be NULL`);
    }
    const fields = children(
      expectTag(decode(publicKey, `${where} RSAPublicKey`), Tag.Sequence, `${where} RSAPublicKey`),
      `${where} RSAPublicKey`,
    );
    if (fields.length !== 2) {
      throw new CaError("malformed-der", `${where}: RSAPublicKey must be exactly modulus and exponent`);
    }
    const modulus = readUnsignedInteger(fields[0], `${where} modulus`);
    const exponent = readUnsignedInteger(fields[1], `${where} exponent`);
    checkRsaExponent(exponent, where);
    const size = bitLength(modulus);
    if (size < 2048 || size > 8192) {
      throw new CaError("unsupported-key", `${where}: RSA-${size} is not supported; use 2048 to 8192 bits`);
    }
    const jwk = {
      kty: "RSA",
      n: stripZeros(modulus).toString("base64url"),
      e: stripZeros(exponent).toString("base64url"),
    };
    return { input: { key: jwk, format: "jwk" }, kind: "rsa" };
  }
  if (type === Oid.ed25519) {
    // RFC 8410 3: parameters absent; the key is 32 bytes.
    if (params !== undefined || publicKey.length !== 32) {
      throw new CaError("malformed-der", `${where}: Ed25519 keys have no parameters and 32 key bytes`);
    }
    return {
      input: { key: { kty: "OKP", crv: "Ed25519", x: publicKey.toString("base64url") }, format: "jwk" },
      kind: "ed25519",
    };
  }
  throw new CaError(
    "unsupported-key",
    `${where}: key algorithm ${type} is not supported; use ECDSA P-256/P-384, RSA 2048+ or Ed25519`,
  );
}

/**
 * The SubjectPublicKeyInfo DER that goes into a certificate: the key re-encoded by `node:crypto`
 * from the parsed key, never the bytes a client sent (as Go's x509 does for Istio and SPIRE).
 */
export function encodeSpki(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" });
}

/** Imports a checked key; throws `malformed-csr` when OpenSSL rejects it (e.g. a point off the curve). */
export function importPublicKey(input: PublicKeyInput, where: string): KeyObject {
  try {
    return createPublicKey(input as Parameters<typeof createPublicKey>[0]);
  } catch (error) {
    throw CaError.from(error, "malformed-csr", `${where}: the public key cannot be decoded`);
  }
}
