import "reflect-metadata";
import { createPublicKey, type KeyObject, X509Certificate as NodeX509, sign } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaError, CertificateAuthority, createCsr, fromPem, generateKey } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { openssl } from "./openssl.js";

const TD = "example.org";
const ID = `spiffe://${TD}/ns/default/sa/web`;
const RUNS = 120;

interface Sample {
  readonly der: Buffer;
  /** certificationRequestInfo, signatureAlgorithm and the digest, to re-sign mutated info. */
  readonly info: Buffer;
  readonly algorithm: Buffer;
  readonly digest: string;
  readonly key: KeyObject;
}

/** Splits a DER SEQUENCE into its children's raw bytes (test-side reader, independent of the CA's). */
function childrenOf(der: Buffer): Buffer[] {
  const headerLength = (buf: Buffer, at: number) => {
    const first = buf[at + 1] as number;
    return first < 0x80
      ? { header: 2, length: first }
      : {
          header: 2 + (first & 0x7f),
          length: buf.subarray(at + 2, at + 2 + (first & 0x7f)).reduce((n, b) => n * 256 + b, 0),
        };
  };
  const outer = headerLength(der, 0);
  const out: Buffer[] = [];
  for (let at = outer.header; at < outer.header + outer.length; ) {
    const { header, length } = headerLength(der, at);
    out.push(der.subarray(at, at + header + length));
    at += header + length;
  }
  return out;
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const seq = (...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
};
const bits = (b: Buffer) =>
  Buffer.concat([Buffer.from([0x03]), derLength(b.length + 1), Buffer.from([0]), b]);

async function sample(
  keyType: "ecdsa-p256" | "rsa-2048",
  uris: string[],
  commonName?: string,
): Promise<Sample> {
  const { privateKey } = await generateKey(keyType);
  const pem = await createCsr({ privateKey, uris, ...(commonName ? { subject: { commonName } } : {}) });
  const der = (fromPem(pem, "csr")[0] as { der: Buffer }).der;
  const [info, algorithm] = childrenOf(der) as [Buffer, Buffer];
  return { der, info, algorithm, digest: "sha256", key: privateKey };
}

/** A byte-level mutation: flip, overwrite (lengths and tags included), insert, delete, truncate. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 4 }),
      fc.constantFrom(
        Uint8Array.of(0x05, 0x00),
        Uint8Array.of(0x02, 0x01, 0x00),
        Uint8Array.of(0x30, 0x00),
        Uint8Array.of(0x80),
      ),
    ),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

/** A DER element as the test reads it: primitive bytes or children, re-encoded after mutation. */
interface Node {
  tag: number;
  content?: Buffer;
  children?: Node[];
  /** Encode this node's length in non-minimal long form (0x82 0x00 0xNN…). */
  longLength?: boolean;
}

function parseTree(der: Buffer): Node {
  const tag = der[0] as number;
  const first = der[1] as number;
  const header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  const body = der.subarray(header);
  if ((tag & 0x20) === 0) return { tag, content: Buffer.from(body) };
  const parts: Node[] = [];
  for (const child of childrenOf(der)) parts.push(parseTree(child));
  return { tag, children: parts };
}

function encodeTree(node: Node): Buffer {
  const body = node.children ? Buffer.concat(node.children.map(encodeTree)) : (node.content as Buffer);
  const length = node.longLength
    ? Buffer.from([0x82, (body.length >> 8) & 0xff, body.length & 0xff])
    : derLength(body.length);
  return Buffer.concat([Buffer.from([node.tag]), length, body]);
}

function allNodes(node: Node, out: Node[] = []): Node[] {
  out.push(node);
  for (const child of node.children ?? []) allNodes(child, out);
  return out;
}

/** Structure-aware mutations: the enclosing lengths stay consistent, so the parser itself decides. */
const structural = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom(
    "add-child",
    "remove-child",
    "duplicate-child",
    "long-length",
    "pad-oid",
    "retag",
    "grow-content",
  ),
  junk: fc.constantFrom(
    Buffer.from([0x05, 0x00]),
    Buffer.from([0x02, 0x01, 0x00]),
    Buffer.from([0x04, 0x02, 0xde, 0xad]),
    Buffer.from([0x30, 0x00]),
    Buffer.from([0x86, 0x0b, ...Buffer.from("spiffe://x/")]),
  ),
  tag: fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x30, 0x31, 0xa0, 0x82, 0x86),
});
type Structural = typeof structural extends fc.Arbitrary<infer T> ? T : never;

function applyStructural(input: Buffer, m: Structural): Buffer {
  const tree = parseTree(input);
  const nodes = allNodes(tree);
  const node = nodes[m.pick % nodes.length] as Node;
  const constructed = nodes.filter((n) => n.children && n.children.length > 0);
  const parent = node.children?.length ? node : (constructed[m.pick % constructed.length] as Node);
  const kids = parent.children as Node[];
  switch (m.op) {
    case "add-child":
      kids.splice(m.pick % (kids.length + 1), 0, parseTree(m.junk));
      break;
    case "remove-child":
      kids.splice(m.pick % kids.length, 1);
      break;
    case "duplicate-child":
      kids.push(parseTree(encodeTree(kids[m.pick % kids.length] as Node)));
      break;
    case "long-length":
      node.longLength = true;
      break;
    case "pad-oid": {
      const oids = nodes.filter((n) => n.tag === 0x06 && n.content && n.content.length > 1);
      const target = oids[m.pick % oids.length];
      if (target?.content)
        target.content = Buffer.concat([
          target.content.subarray(0, 1),
          Buffer.from([0x80]),
          target.content.subarray(1),
        ]);
      break;
    }
    case "retag":
      if (node.content) node.tag = m.tag;
      break;
    case "grow-content":
      if (node.content) node.content = Buffer.concat([node.content, Buffer.from([0x00])]);
      else kids.push(parseTree(m.junk));
      break;
  }
  return encodeTree(tree);
}

function apply(input: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(input);
  const at = m.at % out.length;
  switch (m.kind) {
    case "flip":
      out[at] = (out[at] as number) ^ m.mask;
      return out;
    case "set":
      out[at] = m.value;
      return out;
    case "insert":
      return Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
    case "delete":
      return Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
    case "truncate":
      return out.subarray(0, at);
  }
}

/**
 * Parsers of hostile input get mutation tests (CONVENTIONS.md): valid CSRs are mutated byte by
 * byte and each mutant must be refused with a CaError or issued as a certificate that
 * `openssl x509`, Node's X509Certificate and @peculiar/x509 all parse. The mutated
 * certificationRequestInfo is re-signed with the real key, so the signature check cannot hide a
 * lenient parser; mutants of the whole CSR (not re-signed) exercise the outer structure.
 */
describe("CSR mutation property", () => {
  let ca: CertificateAuthority;
  let samples: Sample[];
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const issued: string[] = [];
  const refusals = new Map<string, number>();

  beforeAll(async () => {
    ca = await CertificateAuthority.selfSigned({ trustDomain: TD });
    samples = [
      await sample("ecdsa-p256", [ID]),
      await sample("ecdsa-p256", [], "web"),
      await sample("rsa-2048", [ID]),
    ];
    tmp = await tempDir("mutation");
  });

  afterAll(async () => {
    ca?.close();
    await tmp?.cleanup();
  });

  async function check(csr: Buffer, from: Sample): Promise<void> {
    let chain: string[];
    try {
      chain = await ca.sign({ csr, identities: [ID] });
    } catch (error) {
      // Refused: only ever a CaError with a message that says what was wrong.
      if (!(error instanceof CaError)) throw new Error(`not a CaError: ${String(error)}`);
      expect(error.message.length).toBeGreaterThan(10);
      refusals.set(error.code, (refusals.get(error.code) ?? 0) + 1);
      return;
    }
    const leaf = chain[0] as string;
    // Issued: Node and @peculiar/x509 parse it now; openssl parses the whole batch below.
    expect(new NodeX509(leaf).subjectAltName).toBe(`URI:${ID}`);
    expect(new x509.X509Certificate(leaf).subject).toBe("");
    // It certifies the key that proved possession (the sample's), never a key the mutation made.
    expect(new NodeX509(leaf).publicKey.export({ format: "der", type: "spki" })).toEqual(
      createPublicKey(from.key).export({ format: "der", type: "spki" }),
    );
    issued.push(leaf);
  }

  it("re-signed mutants of certificationRequestInfo: refused with a CaError or issued as a parseable certificate", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 2 }), mutation, async (which, m) => {
        const s = samples[which] as Sample;
        const info = apply(s.info, m);
        const signature = sign(s.digest, info, s.key);
        await check(seq(info, s.algorithm, bits(signature)), s);
      }),
      { numRuns: RUNS },
    );
  });

  it("structural mutants of certificationRequestInfo (elements added/removed/duplicated, long-form lengths, padded OIDs, retagged values), re-signed: refused with a CaError or issued as a parseable certificate", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 2 }), structural, async (which, m) => {
        const s = samples[which] as Sample;
        const info = applyStructural(s.info, m);
        await check(seq(info, s.algorithm, bits(sign(s.digest, info, s.key))), s);
      }),
      { numRuns: RUNS },
    );
  });

  it("mutants of the whole CSR: refused with a CaError or issued as a parseable certificate", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 2 }), mutation, async (which, m) => {
        await check(apply((samples[which] as Sample).der, m), samples[which] as Sample);
      }),
      { numRuns: RUNS },
    );
  });

  it("openssl x509 parses every certificate the mutants were issued (one openssl process for the batch)", async () => {
    // Both outcomes occurred: some mutants are harmless (a changed subject byte) and are issued.
    expect(issued.length).toBeGreaterThan(0);
    expect([...refusals.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // The parser itself refused mutants (not only the signature check, which re-signed mutants pass).
    expect(refusals.get("malformed-csr") ?? 0).toBeGreaterThan(0);
    await writeFile(join(tmp.dir, "issued.pem"), issued.join(""));
    // crl2pkcs7 reads every certificate of the file with the parser `openssl x509` uses; on a
    // failure, one x509 -noout per certificate names the culprit.
    try {
      await openssl(["crl2pkcs7", "-nocrl", "-certfile", "issued.pem", "-out", "bundle.p7"], tmp.dir);
    } catch (error) {
      for (const [i, pem] of issued.entries()) {
        await writeFile(join(tmp.dir, `leaf-${i}.pem`), pem);
        await openssl(["x509", "-noout", "-in", `leaf-${i}.pem`], tmp.dir);
      }
      throw error;
    }
    const out = await openssl(["pkcs7", "-in", "bundle.p7", "-print_certs", "-noout"], tmp.dir);
    expect(out.match(/subject=/g)?.length).toBe(issued.length);
  });
});
