import { createPublicKey, type KeyObject, sign as signCb, verify as verifyCb } from "node:crypto";
import { promisify } from "node:util";
import {
  bitString,
  children,
  type DerNode,
  decode,
  expectTag,
  explicit,
  integer,
  oid,
  readBitString,
  readOid,
  readUnsignedInteger,
  sequence,
  set,
  Tag,
} from "../asn1/der.js";
import { CaError } from "../ca-error.js";
import { signatureSchemeFor } from "../key-type.js";
import { fromPem, toPem } from "../pem.js";
import { parseExtensions, parseSubjectAltName } from "./certificate.js";
import { extension, subjectAltNameValue } from "./extensions.js";
import { name } from "./name.js";
import { Oid, SIGNATURE_DIGESTS, SIGNATURE_KEY_KINDS } from "./oids.js";
import { encodeSpki, importPublicKey, inspectSpki, type PublicKeyInput } from "./public-key.js";

const verify = promisify(verifyCb);
const sign = promisify(signCb);

/** Default upper bound on a CSR's size; real SVID CSRs are well under 2 KiB. */
export const DEFAULT_MAX_CSR_BYTES = 16 * 1024;

/** A signature to check, as plain data (structured-cloneable). */
export interface SignatureCheck {
  readonly digest: string | null;
  readonly data: Buffer;
  readonly signature: Buffer;
  readonly key: PublicKeyInput;
}

/** Checks signatures somewhere else (e.g. worker threads); resolves whether the signature is valid. */
export interface SignatureVerifier {
  verify(check: SignatureCheck): Promise<boolean>;
  /**
   * Optional: verify and also re-encode the key as SubjectPublicKeyInfo DER with `node:crypto`
   * where it was imported (saves importing it a second time on the caller's thread).
   */
  verifyAndEncode?(check: SignatureCheck): Promise<{ ok: boolean; spki: Buffer }>;
}

/** A parsed PKCS#10 certificate signing request (RFC 2986). */
export interface ParsedCsr {
  readonly der: Buffer;
  /**
   * DER of the CSR's SubjectPublicKeyInfo as sent. Never copied into a certificate: the key is
   * re-encoded by `node:crypto` ({@link ParsedCsr.verifySignature} resolves with that encoding).
   */
  readonly spkiRaw: Buffer;
  readonly publicKeyBits: Buffer;
  readonly publicKey: KeyObject;
  /** The key's algorithm family. */
  readonly keyKind: "ec" | "rsa" | "ed25519";
  /** URI SANs the CSR asks for. */
  readonly uris: readonly string[];
  /** DNS SANs the CSR asks for. */
  readonly dnsNames: readonly string[];
  /** What proves possession of the key: verify `signature` over `data` with `key` and `digest`. */
  readonly signatureCheck: SignatureCheck;
  /**
   * Resolves when the CSR's self-signature is valid, with the public key re-encoded as
   * SubjectPublicKeyInfo DER by `node:crypto` (what goes into the certificate); rejects with
   * `csr-signature-invalid`. Verifies in-process (libuv pool) unless a {@link SignatureVerifier}
   * such as a worker pool is given.
   */
  verifySignature(verifier?: SignatureVerifier): Promise<Buffer>;
}

/** RFC 5758 3.2 / RFC 8410 3: these signature AlgorithmIdentifiers have no parameters. */
const NO_PARAMETERS: ReadonlySet<string> = new Set([
  Oid.ecdsaWithSha256,
  Oid.ecdsaWithSha384,
  Oid.ecdsaWithSha512,
  Oid.ed25519,
]);

function expectCount(nodes: readonly DerNode[], count: number, what: string): void {
  if (nodes.length !== count) {
    throw new CaError("malformed-der", `${what}: has ${nodes.length} elements, expected ${count}`);
  }
}

/** A Name (RFC 5280 4.1.2.4), read only to check its structure: the CA never copies it. */
function checkName(node: DerNode | undefined, what: string): void {
  for (const rdn of children(expectTag(node, Tag.Sequence, what), what)) {
    const attributes = children(expectTag(rdn, Tag.Set, `${what} RDN`), `${what} RDN`);
    if (attributes.length === 0) throw new CaError("malformed-der", `${what}: empty RDN`);
    for (const attribute of attributes) {
      const parts = children(expectTag(attribute, Tag.Sequence, `${what} attribute`), `${what} attribute`);
      expectCount(parts, 2, `${what} attribute`);
      readOid(parts[0] as DerNode, `${what} attribute type`);
    }
  }
}

/**
 * Parses a CSR from PEM (or DER bytes) strictly: DER only (minimal lengths, canonical OIDs and
 * INTEGERs, no trailing data, exactly the fields RFC 2986 defines), a supported key and signature
 * algorithm. Call `verifySignature()` to prove possession of the private key.
 */
export function parseCsr(input: string | Uint8Array, options: { maxBytes?: number } = {}): ParsedCsr {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_CSR_BYTES;
  const size = typeof input === "string" ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) {
    throw new CaError("csr-too-large", `CSR is ${size} bytes, more than the ${maxBytes}-byte limit`);
  }
  let der: Buffer;
  if (typeof input === "string") {
    const blocks = fromPem(input, "csr");
    if (blocks.length !== 1 || !/^(NEW )?CERTIFICATE REQUEST$/.test((blocks[0] as { label: string }).label)) {
      throw new CaError("malformed-csr", "csr: expected exactly one CERTIFICATE REQUEST PEM block");
    }
    der = (blocks[0] as { der: Buffer }).der;
  } else {
    der = Buffer.from(input);
  }
  try {
    const top = children(expectTag(decode(der, "csr"), Tag.Sequence, "csr"), "csr");
    expectCount(top, 3, "csr");
    const info = expectTag(top[0], Tag.Sequence, "csr certificationRequestInfo");
    const algorithmParts = children(
      expectTag(top[1], Tag.Sequence, "csr signatureAlgorithm"),
      "csr signatureAlgorithm",
    );
    const algorithm = readOid(algorithmParts[0] as DerNode, "csr signatureAlgorithm");
    if (!(algorithm in SIGNATURE_DIGESTS)) {
      throw new CaError("malformed-csr", `csr: signature algorithm ${algorithm} is not supported`);
    }
    const params = algorithmParts[1];
    if (
      algorithmParts.length > 2 ||
      (NO_PARAMETERS.has(algorithm) && params !== undefined) ||
      (params !== undefined && (params.tag !== Tag.Null || params.content.length !== 0))
    ) {
      throw new CaError(
        "malformed-der",
        `csr signatureAlgorithm: ${algorithm} takes ${NO_PARAMETERS.has(algorithm) ? "no parameters" : "NULL parameters"}`,
      );
    }
    const signature = readBitString(top[2] as DerNode, "csr signature");
    const parts = children(info, "csr certificationRequestInfo");
    expectCount(parts, 4, "csr certificationRequestInfo");
    const version = readUnsignedInteger(parts[0], "csr version");
    if (version.length !== 1 || version[0] !== 0) {
      throw new CaError("malformed-csr", "csr: version must be 0 (v1, RFC 2986)");
    }
    checkName(parts[1], "csr subject");
    const spki = expectTag(parts[2], Tag.Sequence, "csr subjectPKInfo");
    const inspected = inspectSpki(spki.raw, "csr public key");
    if (SIGNATURE_KEY_KINDS[algorithm] !== inspected.kind) {
      // Otherwise node:crypto checks the signature the way the key type implies, whatever the CSR
      // says it is (an "RSA" signature verified as ECDSA).
      throw new CaError(
        "malformed-csr",
        `csr: signature algorithm ${algorithm} does not match the ${inspected.kind.toUpperCase()} public key`,
      );
    }
    const publicKeyBits = readBitString(
      children(spki, "csr subjectPKInfo")[1] as DerNode,
      "csr subjectPublicKey",
    );
    let uris: string[] = [];
    let dnsNames: string[] = [];
    let sawExtensionRequest = false;
    for (const attribute of children(expectTag(parts[3], 0xa0, "csr attributes"), "csr attributes")) {
      const fields = children(expectTag(attribute, Tag.Sequence, "csr attribute"), "csr attribute");
      expectCount(fields, 2, "csr attribute");
      const type = readOid(fields[0] as DerNode, "csr attribute type");
      const values = children(expectTag(fields[1], Tag.Set, `csr attribute ${type} values`), "csr attribute");
      if (type !== Oid.extensionRequest) continue;
      if (sawExtensionRequest || values.length !== 1) {
        throw new CaError("malformed-der", "csr: extensionRequest must appear once with one value");
      }
      sawExtensionRequest = true;
      const exts = parseExtensions(values[0] as DerNode, "csr extensionRequest");
      const san = exts.get(Oid.subjectAltName);
      if (san) ({ uris, dnsNames } = parseSubjectAltName(san.value, "csr subjectAltName"));
    }
    let publicKey: KeyObject | undefined;
    const keyObject = () => {
      publicKey ??= importPublicKey(inspected.input, "csr public key");
      return publicKey;
    };
    const digest = SIGNATURE_DIGESTS[algorithm] ?? null;
    const check: SignatureCheck = { digest, data: info.raw, signature, key: inspected.input };
    return {
      der,
      spkiRaw: spki.raw,
      publicKeyBits,
      get publicKey() {
        return keyObject();
      },
      keyKind: inspected.kind,
      uris,
      dnsNames,
      signatureCheck: check,
      async verifySignature(verifier?: SignatureVerifier) {
        let ok = false;
        let encoded: Buffer | undefined;
        try {
          if (verifier?.verifyAndEncode) {
            ({ ok, spki: encoded } = await verifier.verifyAndEncode(check));
          } else {
            ok = verifier
              ? await verifier.verify(check)
              : await verify(digest, info.raw, keyObject(), signature);
          }
        } catch (error) {
          throw CaError.from(error, "csr-signature-invalid", "csr: the signature cannot be verified");
        }
        if (!ok) {
          throw new CaError(
            "csr-signature-invalid",
            "csr: the signature does not match the public key (the CSR was altered or signed with another key)",
          );
        }
        return encoded ? Buffer.from(encoded) : encodeSpki(keyObject());
      },
    };
  } catch (error) {
    if (error instanceof CaError && error.code !== "malformed-der") throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new CaError("malformed-csr", `csr is not a valid PKCS#10 request: ${detail}`, { cause: error });
  }
}

/** Options for {@link createCsr}. */
export interface CreateCsrOptions {
  /** The workload's private key; its public half goes into the CSR. */
  readonly privateKey: KeyObject;
  /** URI SANs to ask for, usually one SPIFFE ID. */
  readonly uris?: readonly string[];
  /** DNS SANs to ask for. */
  readonly dnsNames?: readonly string[];
  /** Subject; empty by default (SVIDs carry their identity in the URI SAN only). */
  readonly subject?: { readonly organization?: string; readonly commonName?: string };
}

/**
 * Builds a PEM CSR with an empty subject and the requested SANs, signed natively. This is what a
 * workload agent (istio-agent's role) sends to `CreateCertificate`.
 */
export async function createCsr(options: CreateCsrOptions): Promise<string> {
  const scheme = signatureSchemeFor(options.privateKey, "csr private key");
  const spki = createPublicKey(options.privateKey).export({ format: "der", type: "spki" });
  const uris = options.uris ?? [];
  const dnsNames = options.dnsNames ?? [];
  const attributes =
    uris.length + dnsNames.length === 0
      ? explicit(0)
      : Buffer.concat([
          Buffer.from([0xa0]),
          lengthPrefixed(
            sequence(
              oid(Oid.extensionRequest),
              set(
                sequence(extension(Oid.subjectAltName, false, subjectAltNameValue([...uris], [...dnsNames]))),
              ),
            ),
          ),
        ]);
  const info = sequence(integer(0), name(options.subject ?? {}), spki, attributes);
  const signature = await sign(scheme.digest, info, options.privateKey);
  return toPem("CERTIFICATE REQUEST", sequence(info, scheme.algorithmIdentifier, bitString(signature)));
}

function lengthPrefixed(body: Buffer): Buffer {
  // [0] IMPLICIT SET OF Attribute: reuse the SET encoder's length and drop its tag.
  return set(body).subarray(1);
}
