import type { X509Certificate } from "node:crypto";

/**
 * The SPIFFE ID of an X.509-SVID: the certificate's one URI SAN, when it is a valid SPIFFE ID
 * (SPIFFE "SPIFFE-ID" §2, "X509-SVID" §2: an SVID carries exactly one URI SAN). Anything else —
 * no URI SAN, several, one that is not a well-formed `spiffe://` ID — gives undefined: an identity
 * is read strictly or not at all.
 */
export function spiffeIdOf(certificate: X509Certificate): string | undefined {
  const uris = sanEntries(certificate.subjectAltName ?? "").filter((e) => e.type === "URI");
  if (uris.length !== 1) return undefined;
  const uri = (uris[0] as SanEntry).value;
  return isSpiffeId(uri) ? uri : undefined;
}

interface SanEntry {
  readonly type: string;
  readonly value: string;
}

/**
 * Node's `subjectAltName` text: entries `TYPE:value` joined by ", ", a value that contains a
 * separator or a quote being JSON-quoted (Node ≥ 17.3 / 16.14 / 12.22.9, CVE-2021-44532). A
 * malformed text yields no entries.
 */
function sanEntries(text: string): SanEntry[] {
  const out: SanEntry[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) return [];
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote (skipping escaped characters).
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) return [];
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        return [];
      }
      next = j + 1;
    } else {
      const comma = text.indexOf(", ", colon + 1);
      next = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, next);
    }
    out.push({ type, value });
    if (next >= text.length) break;
    if (text.slice(next, next + 2) !== ", ") return [];
    i = next + 2;
  }
  return out;
}

const trustDomain = /^[a-z0-9._-]+$/;
const segment = /^[A-Za-z0-9._-]+$/;

/**
 * SPIFFE-ID §2: `spiffe://` (scheme lower-case), a trust domain of lower-case letters, digits,
 * ".", "-", "_" (no port, no user info), then an optional path of non-empty segments of letters,
 * digits, ".", "-", "_", none of them "." or ".."; no query, no fragment, no trailing "/";
 * 2048 bytes at most.
 */
export function isSpiffeId(uri: string): boolean {
  if (!uri.startsWith("spiffe://") || uri.length > 2048) return false;
  const rest = uri.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const domain = slash < 0 ? rest : rest.slice(0, slash);
  if (domain.length === 0 || domain.length > 255 || !trustDomain.test(domain)) return false;
  if (slash < 0) return true;
  const segments = rest.slice(slash + 1).split("/");
  return segments.every((s) => segment.test(s) && s !== "." && s !== "..");
}
