import { CaError } from "./ca-error.js";

/** One PEM block: its label (`CERTIFICATE`, `CERTIFICATE REQUEST`, …) and the DER bytes. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** Encodes DER as PEM with 64-column base64 (RFC 7468). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/**
 * Decodes every PEM block in `text` (text between blocks is ignored, as OpenSSL does). `source`
 * names the input in errors, e.g. a file path or a request field.
 */
export function fromPem(text: string, source: string): PemBlock[] {
  if (typeof text !== "string") throw new CaError("malformed-pem", `${source}: expected PEM text`);
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const [, begin, body, end] = match as unknown as [string, string, string, string];
    const line = text.slice(0, match.index).split("\n").length;
    if (begin !== end) {
      throw new CaError("malformed-pem", `${source}:${line}: BEGIN ${begin} is closed by END ${end}`);
    }
    const b64 = body.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0 || b64.length === 0) {
      throw new CaError("malformed-pem", `${source}:${line}: the ${begin} block is not valid base64`);
    }
    blocks.push({ label: begin, der: Buffer.from(b64, "base64") });
  }
  if (blocks.length === 0) {
    throw new CaError("malformed-pem", `${source}: no PEM block found (expected -----BEGIN ...----- lines)`);
  }
  return blocks;
}

/** Decodes PEM that must contain only blocks labelled `label`; returns their DER, in order. */
export function fromPemOf(text: string, label: string, source: string): Buffer[] {
  return fromPem(text, source).map((block, i) => {
    if (block.label !== label) {
      throw new CaError("malformed-pem", `${source}: block ${i + 1} is ${block.label}, expected ${label}`);
    }
    return block.der;
  });
}

/**
 * Every CERTIFICATE block of `text`, each re-encoded as canonical PEM; `[]` for empty text. Other
 * blocks are an error naming `source`.
 */
export function certificatesOf(text: string, source: string): string[] {
  if (text.trim() === "") return [];
  return fromPemOf(text, "CERTIFICATE", source).map((der) => toPem("CERTIFICATE", der));
}
