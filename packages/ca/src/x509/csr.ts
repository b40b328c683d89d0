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
import { Oid, SIGNATURE_DIGESTS } from "./oids.js";
import { importPublicKey, inspectSpki, type PublicKeyInput } from "./public-key.js";

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
}

/** A parsed PKCS#10 certificate signing request (RFC 2986). */
export interface ParsedCsr {
  readonly der: Buffer;
  /** DER of SubjectPublicKeyInfo, copied verbatim into the certificate. */
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
   * Resolves when the CSR's self-signature is valid; rejects with `csr-signature-invalid`. Verifies
   * in-process (libuv pool) unless a {@link SignatureVerifier} such as a worker pool is given.
   */
  verifySignature(verifier?: SignatureVerifier): Promise<void>;
}

/**
 * Parses a CSR from PEM (or DER bytes). Checks size, structure and the key type; call
 * `verifySignature()` to prove possession of the private key.
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
    const info = expectTag(top[0], Tag.Sequence, "csr certificationRequestInfo");
    const algorithm = readOid(
      children(expectTag(top[1], Tag.Sequence, "csr signatureAlgorithm"), "csr")[0] as DerNode,
      "csr signatureAlgorithm",
    );
    const signature = readBitString(top[2] as DerNode, "csr signature");
    const parts = children(info, "csr certificationRequestInfo");
    const spki = expectTag(parts[2], Tag.Sequence, "csr subjectPKInfo");
    const publicKeyBits = readBitString(
      children(spki, "csr subjectPKInfo")[1] as DerNode,
      "csr subjectPublicKey",
    );
    let uris: string[] = [];
    let dnsNames: string[] = [];
    const attributes = parts[3];
    if (attributes && attributes.tag === 0xa0) {
      for (const attribute of children(attributes, "csr attributes")) {
        const [type, values] = children(attribute, "csr attribute");
        if (readOid(type as DerNode, "csr attribute type") !== Oid.extensionRequest) continue;
        const exts = parseExtensions(
          children(values as DerNode, "csr extensionRequest")[0] as DerNode,
          "csr extensionRequest",
        );
        const san = exts.get(Oid.subjectAltName);
        if (san) ({ uris, dnsNames } = parseSubjectAltName(san.value, "csr subjectAltName"));
      }
    }
    const inspected = inspectSpki(spki.raw, "csr public key");
    let publicKey: KeyObject | undefined;
    const keyObject = () => {
      publicKey ??= importPublicKey(inspected.input, "csr public key");
      return publicKey;
    };
    if (!(algorithm in SIGNATURE_DIGESTS)) {
      throw new CaError("malformed-csr", `csr: signature algorithm ${algorithm} is not supported`);
    }
    const digest = SIGNATURE_DIGESTS[algorithm] ?? null;
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
      signatureCheck: { digest, data: info.raw, signature, key: inspected.input },
      async verifySignature(verifier?: SignatureVerifier) {
        let ok = false;
        try {
          ok = verifier
            ? await verifier.verify({ digest, data: info.raw, signature, key: inspected.input })
            : await verify(digest, info.raw, keyObject(), signature);
        } catch (error) {
          throw CaError.from(error, "csr-signature-invalid", "csr: the signature cannot be verified");
        }
        if (!ok) {
          throw new CaError(
            "csr-signature-invalid",
            "csr: the signature does not match the public key (the CSR was altered or signed with another key)",
          );
        }
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
