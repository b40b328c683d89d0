import { generateKeyPair as generateKeyPairCb, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { derNull, oid, sequence } from "./asn1/der.js";
import { CaError } from "./ca-error.js";
import { Oid } from "./x509/oids.js";

const generateKeyPair = promisify(generateKeyPairCb);

/**
 * Key types the CA generates: `ecdsa-p256` (meshlet's default: fast, small) and `rsa-2048`
 * (Istio's default, for compatibility with tooling that expects RSA).
 */
export type KeyType = "ecdsa-p256" | "rsa-2048";

/** The key types in preference order. */
export const KEY_TYPES: readonly KeyType[] = ["ecdsa-p256", "rsa-2048"];

/** A key pair as `node:crypto` objects. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Generates a key pair natively (OpenSSL, off the event loop). */
export async function generateKey(keyType: KeyType = "ecdsa-p256"): Promise<KeyPair> {
  if (keyType === "ecdsa-p256") return generateKeyPair("ec", { namedCurve: "P-256" });
  if (keyType === "rsa-2048") return generateKeyPair("rsa", { modulusLength: 2048 });
  throw new CaError(
    "unsupported-key",
    `unknown key type ${JSON.stringify(keyType)}: use one of ${KEY_TYPES.join(", ")}`,
  );
}

/** How a key signs: the AlgorithmIdentifier DER to put in certificates and the digest for `crypto.sign`. */
export interface SignatureScheme {
  readonly algorithmIdentifier: Buffer;
  readonly digest: string | null;
}

const ECDSA_SHA256 = { algorithmIdentifier: sequence(oid(Oid.ecdsaWithSha256)), digest: "sha256" };
const ECDSA_SHA384 = { algorithmIdentifier: sequence(oid(Oid.ecdsaWithSha384)), digest: "sha384" };
const RSA_SHA256 = { algorithmIdentifier: sequence(oid(Oid.sha256WithRsa), derNull()), digest: "sha256" };
const ED25519 = { algorithmIdentifier: sequence(oid(Oid.ed25519)), digest: null };

/**
 * Checks that `key` is a type the CA accepts and returns its signature scheme: EC P-256/P-384,
 * RSA 2048–8192 bits, Ed25519. `where` names the key in errors.
 */
export function signatureSchemeFor(key: KeyObject, where: string): SignatureScheme {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    if (details.namedCurve === "prime256v1") return ECDSA_SHA256;
    if (details.namedCurve === "secp384r1") return ECDSA_SHA384;
    throw new CaError(
      "unsupported-key",
      `${where}: EC curve ${details.namedCurve} is not supported; use P-256 or P-384`,
    );
  }
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048 || bits > 8192) {
      throw new CaError("unsupported-key", `${where}: RSA-${bits} is not supported; use 2048 to 8192 bits`);
    }
    return RSA_SHA256;
  }
  if (type === "ed25519") return ED25519;
  throw new CaError(
    "unsupported-key",
    `${where}: ${type ?? "unknown"} keys are not supported; use ECDSA P-256/P-384, RSA 2048+ or Ed25519`,
  );
}
