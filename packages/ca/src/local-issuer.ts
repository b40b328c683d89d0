import { CaError } from "./ca-error.js";
import type { IssueRequest, Issuer } from "./issuer.js";
import { toPem } from "./pem.js";
import type { SigningMaterial } from "./signing-material.js";
import { spkiPublicKeyBits } from "./signing-material.js";
import { encodeTbsCertificate, randomSerial, signCertificate } from "./x509/certificate-builder.js";
import {
  extension,
  keyIdentifier,
  LEAF_EXTENSIONS,
  subjectAltNameValue,
  subjectKeyIdentifierValue,
} from "./x509/extensions.js";
import { Oid } from "./x509/oids.js";

const EMPTY_SUBJECT = Buffer.from([0x30, 0x00]);

/**
 * Signs leaves with a key held in this process. The signing material can be swapped (root
 * rotation, intermediate renewal) without touching the CA around it.
 */
export class LocalIssuer implements Issuer {
  readonly needsCsr = false;
  private current: SigningMaterial;
  private readonly clock: () => number;
  private readonly backdateMs: number;

  constructor(material: SigningMaterial, options: { clock: () => number; backdateMs: number; name: string }) {
    this.current = material;
    this.clock = options.clock;
    this.backdateMs = options.backdateMs;
    this.name = options.name;
  }

  readonly name: string;

  /** The key and certificate that sign leaves now. */
  get material(): SigningMaterial {
    return this.current;
  }

  /** Switches signing to `material` (rotation, renewal, reload). */
  use(material: SigningMaterial): void {
    this.current = material;
    for (const listener of this.listeners) listener(material);
  }

  /** Calls `listener` with every new signing material (the JWT authority follows the key). */
  onUse(listener: (material: SigningMaterial) => void): void {
    this.listeners.push(listener);
  }

  private readonly listeners: ((material: SigningMaterial) => void)[] = [];

  async issue(request: IssueRequest): Promise<readonly string[]> {
    const m = this.current;
    const now = this.clock();
    const issuerNotAfter = m.cert.notAfter.getTime();
    // A leaf never outlives its issuer, and none is issued once the issuer has expired: a leaf
    // "valid" from notBefore to an earlier notAfter is not a certificate anyone can use.
    if (now >= issuerNotAfter - 1000) {
      throw new CaError(
        "ca-expired",
        `the signing certificate expired at ${m.cert.notAfter.toISOString()}; rotate the root or plug in a renewed CA certificate`,
      );
    }
    const notBefore = Math.max(now - this.backdateMs, m.cert.notBefore.getTime());
    const notAfter = Math.min(now + request.ttlMs, issuerNotAfter);
    const tbs = encodeTbsCertificate(
      {
        serialNumber: randomSerial(),
        issuerRaw: m.cert.subjectRaw,
        notBefore: new Date(notBefore),
        notAfter: new Date(notAfter),
        subjectRaw: EMPTY_SUBJECT,
        spkiRaw: request.spki,
        extensions: [
          // SPIFFE X509-SVID 3.1 / RFC 5280 4.1.2.6: the URI SAN is critical because the subject is empty.
          extension(
            Oid.subjectAltName,
            true,
            subjectAltNameValue([request.spiffeId.toString()], [...request.dnsNames]),
          ),
          request.keyKind === "rsa" ? LEAF_EXTENSIONS.keyUsageRsa : LEAF_EXTENSIONS.keyUsageEc,
          LEAF_EXTENSIONS.extKeyUsage,
          LEAF_EXTENSIONS.basicConstraints,
          extension(
            Oid.subjectKeyIdentifier,
            false,
            subjectKeyIdentifierValue(keyIdentifier(spkiPublicKeyBits(request.spki))),
          ),
          m.authorityKeyId,
        ],
      },
      m.scheme,
    );
    const der = await signCertificate(tbs, m.key, m.scheme);
    return [toPem("CERTIFICATE", der), ...m.chainPem];
  }
}
