import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { CachedResource } from "../cached-resource.js";
import { frame, stringField } from "../cached-resource.js";
import { getOrCreate } from "../get-or-create.js";
import { WeakValues } from "../weak-values.js";

/**
 * Response assembly from cached bytes: a response is the concatenation of its fields, and every
 * resource's message was encoded once per resource version (see CachedResource). Nothing is
 * re-marshalled per client; a response is written in one pass into one buffer: the version, type
 * URL and nonce fields, and each resource's bytes inside the few bytes of its `Any` (SotW) or
 * `Resource` (delta) framing.
 */

/** `control_plane` field bytes: ControlPlane { identifier = 1 } at the given field number. */
export function controlPlaneField(field: number, identifier: string | undefined): Uint8Array {
  if (!identifier) return new Uint8Array(0);
  return frame(field, new BinaryWriter().tag(1, WireType.LengthDelimited).string(identifier).finish());
}

/** envoy.service.discovery.v3.DiscoveryResponse { version_info=1, resources=2, type_url=4, nonce=5, control_plane=6 }. */
export function sotwResponse(
  version: string,
  typeUrl: string,
  resources: readonly CachedResource[],
  nonce: string,
  heartbeat: boolean,
  controlPlane: Uint8Array,
  wrapTtl = true,
): Buffer {
  const out = new ResponseWriter();
  out.string(1, version);
  for (const r of resources) {
    // A heartbeat refreshes TTL'd resources only; others keep their bodies.
    if (r.ttlMs === undefined || !wrapTtl) out.sotwResource(r);
    else out.raw(r.sotwField(heartbeat, wrapTtl));
  }
  out.string(4, typeUrl);
  out.string(5, nonce);
  out.raw(controlPlane);
  return out.finish();
}

/**
 * envoy.service.discovery.v3.DeltaDiscoveryResponse { system_version_info=1, resources=2,
 * type_url=4, nonce=5, removed_resources=6, control_plane=7 }.
 */
export function deltaResponse(
  systemVersion: string,
  typeUrl: string,
  resources: readonly CachedResource[],
  removed: readonly string[],
  nonce: string,
  heartbeat: boolean,
  controlPlane: Uint8Array,
): Buffer {
  const out = new ResponseWriter();
  out.string(1, systemVersion);
  for (const r of resources) {
    if (r.ttlMs === undefined) out.deltaResource(r);
    else out.raw(r.deltaField(heartbeat));
  }
  out.string(4, typeUrl);
  out.string(5, nonce);
  for (const name of removed) out.string(6, name, true);
  out.raw(controlPlane);
  return out.finish();
}

/** Length of the gRPC message prefix: a compressed flag and a 4-byte big-endian length. */
export const GRPC_PREFIX = 5;

const TAG_2 = (2 << 3) | WireType.LengthDelimited;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** A string field's bytes: `Any.type_url` is the same for every resource of a type. */
const typeUrlFields = new Map<string, Buffer>();

/**
 * Writes one gRPC-framed response in two passes over its parts: sizes first, then one buffer.
 * Resource fields are written from the resources' bytes: `Any { type_url, value }` (SotW) and
 * `Resource { version, resource: Any, name }` (delta), byte for byte what CachedResource's
 * sotwField()/deltaField() frame, without keeping a framed copy of every resource.
 */
class ResponseWriter {
  private readonly parts: (Uint8Array | string | CachedResource)[] = [];
  /** Per part: the field number of a string, 0 for raw bytes, -1 SotW resource, -2 delta resource. */
  private readonly kinds: number[] = [];
  private size = 0;

  string(field: number, value: string, evenEmpty = false): void {
    if (value === "" && !evenEmpty) return;
    const n = Buffer.byteLength(value);
    this.parts.push(value);
    this.kinds.push(field);
    this.size += 1 + varintSize(n) + n;
  }

  raw(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.parts.push(bytes);
    this.kinds.push(0);
    this.size += bytes.length;
  }

  sotwResource(r: CachedResource): void {
    const any = anySize(r);
    this.parts.push(r);
    this.kinds.push(-1);
    this.size += 1 + varintSize(any) + any;
  }

  deltaResource(r: CachedResource): void {
    const body = resourceSize(r);
    this.parts.push(r);
    this.kinds.push(-2);
    this.size += 1 + varintSize(body) + body;
  }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(GRPC_PREFIX + this.size);
    out[0] = 0;
    out.writeUInt32BE(this.size, 1);
    let at = GRPC_PREFIX;
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i]!;
      const kind = this.kinds[i]!;
      if (kind === 0) {
        out.set(part as Uint8Array, at);
        at += (part as Uint8Array).length;
      } else if (kind > 0) {
        at = writeString(out, at, kind, part as string);
      } else {
        const r = part as CachedResource;
        if (kind === -1) {
          out[at++] = TAG_2;
          at = writeAny(out, writeVarint(out, at, anySize(r)), r);
        } else {
          out[at++] = TAG_2;
          at = writeVarint(out, at, resourceSize(r));
          at = writeString(out, at, 1, r.version);
          out[at++] = TAG_2;
          at = writeAny(out, writeVarint(out, at, anySize(r)), r);
          at = writeString(out, at, 3, r.name);
        }
      }
    }
    return out;
  }
}

function typeUrlField(typeUrl: string): Buffer {
  return getOrCreate(typeUrlFields, typeUrl, () => Buffer.from(stringField(1, typeUrl)));
}

/** google.protobuf.Any { type_url=1, value=2 } around the resource's bytes. */
function anySize(r: CachedResource): number {
  return typeUrlField(r.typeUrl).length + 1 + varintSize(r.bytes.length) + r.bytes.length;
}

/** envoy.service.discovery.v3.Resource { version=1, resource=2, name=3 } (no TTL). */
function resourceSize(r: CachedResource): number {
  const any = anySize(r);
  const version = r.version.length; // base64url: one byte per character
  const name = Buffer.byteLength(r.name);
  return 1 + varintSize(version) + version + 1 + varintSize(any) + any + 1 + varintSize(name) + name;
}

function writeAny(out: Buffer, at: number, r: CachedResource): number {
  const typeUrl = typeUrlField(r.typeUrl);
  out.set(typeUrl, at);
  at += typeUrl.length;
  out[at++] = TAG_2;
  at = writeVarint(out, at, r.bytes.length);
  out.set(r.bytes, at);
  return at + r.bytes.length;
}

function writeString(out: Buffer, at: number, field: number, value: string): number {
  out[at++] = (field << 3) | WireType.LengthDelimited;
  const n = Buffer.byteLength(value);
  at = writeVarint(out, at, n);
  return at + out.write(value, at, n, "utf8");
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** One assembled response and its nonce. */
export interface AssembledResponse {
  /** The encoded response behind its gRPC length prefix (see GRPC_PREFIX). */
  readonly framed: Buffer;
  readonly nonce: string;
}

const noRemovals: readonly string[] = [];

/**
 * Finds one array per content: lists of the same resources (by {@link CachedResource.uid}, in the
 * same order) or the same removed names map to the first such list seen. Streams of different
 * proxies compute their pushes from their own snapshots, so their lists are different arrays even
 * when they carry the same resources; keyed by content, they share one assembled response. An
 * array already seen costs one WeakMap lookup; a new one, one pass to hash it (a short key: a
 * per-proxy list of a hundred resources keeps no hundred-number string alive) and, when another
 * list has the same hash, one pass to compare them. Entries are weak: a list is forgotten when no
 * stream or cache holds it.
 */
export class ContentKeys {
  private readonly byArray = new WeakMap<readonly unknown[], readonly unknown[]>();
  private readonly byKey = new WeakValues<string, readonly unknown[]>();

  resources(list: readonly CachedResource[]): readonly CachedResource[] {
    return this.canonical(list, resourceKey, sameResources);
  }

  names(list: readonly string[]): readonly string[] {
    // Hashed name by name, and compared name by name on a hit: no name can spell two (names are
    // whatever clients send).
    return this.canonical(list, namesKey, sameNames);
  }

  /** Distinct lists known (for tests): live ones, and dead ones not swept yet. */
  get size(): number {
    return this.byKey.size;
  }

  private canonical<T>(
    list: readonly T[],
    keyOf: (list: readonly T[]) => string,
    same: (a: readonly T[], b: readonly T[]) => boolean,
  ): readonly T[] {
    if (list.length === 0) return list;
    const known = this.byArray.get(list);
    if (known) return known as readonly T[];
    const key = keyOf(list);
    const found = this.byKey.get(key) as readonly T[] | undefined;
    let canonical = list;
    if (found && same(found, list)) canonical = found;
    else if (!found) this.byKey.set(key, list);
    // A different list with the same hash (2^-64) keeps its own responses.
    this.byArray.set(list, canonical);
    return canonical;
  }
}

/** Two 32-bit FNV-1a lanes over the items, and the length: a key of about 24 characters. */
function resourceKey(list: readonly CachedResource[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const r of list) {
    h1 = Math.imul(h1 ^ r.uid, 0x01000193);
    h2 = Math.imul(h2 ^ (r.uid * 0x9e3779b1), 0x85ebca6b);
  }
  return flatKey("r", list.length, h1, h2);
}

function namesKey(list: readonly string[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const name of list) {
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x85ebca6b);
    }
    h1 = Math.imul(h1 ^ 0xffff, 0x01000193);
    h2 = Math.imul(h2 ^ 0xffff, 0x85ebca6b);
  }
  return flatKey("n", list.length, h1, h2);
}

/**
 * `${kind}${length}:${h1}:${h2}` (lanes unsigned) as one flat string: a template literal of that
 * length is a chain of string pieces, and the table keeps a key per list (one per proxy for
 * per-proxy lists).
 */
function flatKey(kind: string, length: number, h1: number, h2: number): string {
  return [kind + length, h1 >>> 0, h2 >>> 0].join(":");
}

function sameResources(a: readonly CachedResource[], b: readonly CachedResource[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Assembles responses once per push. Every stream in the same state gets the same resources and
 * the same version, so the whole response — nonce included — is built once and the same buffer is
 * written to all of them. Lists are keyed by content (see {@link ContentKeys}), not by the
 * identity of the snapshot or diff they came from: proxies with snapshots of their own share the
 * responses whose bytes are the same. Nonces come from one counter per
 * server; a stream that would get the very same response again while its nonce is still in use
 * there asks for a `fresh` one, so every answer names one response.
 *
 * A response is held weakly: it is found again while some stream still has it queued or being
 * written (a push, a reconnect storm), and freed once every stream is done with it. Holding it as
 * long as its resource list lives would keep every per-proxy full-state response (a sidecar's
 * CDS, tens of kilobytes) for as long as the proxy's snapshot. A response asked for again after
 * it was freed is assembled again, with a new nonce.
 */
export class ResponseCache {
  private counter = 0;
  // resources → (type URL, version) → response.
  private readonly sotwBodies = new WeakMap<readonly unknown[], Responses>();
  private readonly sotwPlainBodies = new WeakMap<readonly unknown[], Responses>();
  // resources → removed names → (type URL, version) → response; without removals (most pushes
  // and every first response), resources → (type URL, version) → response.
  private readonly deltaBodies = new WeakMap<readonly unknown[], WeakMap<readonly unknown[], Responses>>();
  private readonly deltaUpserts = new WeakMap<readonly unknown[], Responses>();
  /** The response (and nonce) of each live buffer: alive exactly as long as the buffer. */
  private readonly byBuffer = new WeakMap<Buffer, Assembled>();
  private readonly keys = new ContentKeys();

  constructor(private readonly controlPlane: { readonly sotw: Uint8Array; readonly delta: Uint8Array }) {}

  /** A fresh nonce. */
  nonce(): string {
    this.counter++;
    return this.counter.toString(36);
  }

  sotw(
    version: string,
    typeUrl: string,
    list: readonly CachedResource[],
    heartbeat: boolean,
    wrapTtl: boolean,
    /** A nonce of its own (a stream that already has this response's nonce in use). */
    fresh = false,
  ): AssembledResponse {
    const resources = this.keys.resources(list);
    if (heartbeat || fresh) {
      const nonce = this.nonce();
      return {
        nonce,
        framed: sotwResponse(version, typeUrl, resources, nonce, heartbeat, this.controlPlane.sotw, wrapTtl),
      };
    }
    return this.assembled(
      wrapTtl ? this.sotwBodies : this.sotwPlainBodies,
      resources,
      typeUrl,
      version,
      (nonce) => sotwResponse(version, typeUrl, resources, nonce, false, this.controlPlane.sotw, wrapTtl),
    );
  }

  delta(
    version: string,
    typeUrl: string,
    list: readonly CachedResource[],
    removed: readonly string[],
    heartbeat: boolean,
    /** A nonce of its own (a stream that already has this response's nonce in use). */
    fresh = false,
  ): AssembledResponse {
    const resources = this.keys.resources(list);
    const gone = removed.length === 0 ? noRemovals : this.keys.names(removed);
    if (heartbeat || fresh) {
      const nonce = this.nonce();
      return {
        nonce,
        framed: deltaResponse(version, typeUrl, resources, gone, nonce, heartbeat, this.controlPlane.delta),
      };
    }
    const build = (nonce: string) =>
      deltaResponse(version, typeUrl, resources, gone, nonce, false, this.controlPlane.delta);
    return gone === noRemovals
      ? this.assembled(this.deltaUpserts, resources, typeUrl, version, build)
      : this.assembled(
          getOrCreate(this.deltaBodies, resources, () => new WeakMap()),
          gone,
          typeUrl,
          version,
          build,
        );
  }

  /** The response for (type URL, version) of a list, built with a fresh nonce if none lives. */
  private assembled(
    table: WeakMap<readonly unknown[], Responses>,
    list: readonly unknown[],
    typeUrl: string,
    version: string,
    build: (nonce: string) => Buffer,
  ): AssembledResponse {
    const slot = table.get(list);
    const known = slot && this.live(slot, typeUrl, version);
    if (known) return known;
    const nonce = this.nonce();
    const response: Assembled = { nonce, framed: build(nonce), typeUrl, version };
    this.byBuffer.set(response.framed, response);
    const ref = new WeakRef(response.framed);
    if (slot === undefined || slot instanceof WeakRef) {
      // One slot: the common case (a list goes out under one version of one type), or the one
      // it held is gone or was this very (type URL, version).
      const held = slot?.deref();
      const other = held && this.byBuffer.get(held);
      if (!other || (other.typeUrl === typeUrl && other.version === version)) table.set(list, ref);
      else {
        const more = new WeakValues<string, Buffer>();
        more.set(slotKey(other.typeUrl, other.version), held as Buffer);
        more.set(slotKey(typeUrl, version), response.framed);
        table.set(list, more);
      }
    } else slot.set(slotKey(typeUrl, version), response.framed);
    return response;
  }

  /** The live response of a list's slot for (type URL, version), if any. */
  private live(slot: Responses, typeUrl: string, version: string): Assembled | undefined {
    if (slot instanceof WeakRef) {
      const framed = slot.deref();
      const response = framed && this.byBuffer.get(framed);
      return response && response.typeUrl === typeUrl && response.version === version ? response : undefined;
    }
    const framed = slot.get(slotKey(typeUrl, version));
    const response = framed && this.byBuffer.get(framed);
    return response && response.typeUrl === typeUrl && response.version === version ? response : undefined;
  }
}

/**
 * The key of (type URL, version) in a list's table: the type URL's length first, so no two pairs
 * join alike (the type URL comes from the client and may hold any character; so may a version).
 */
function slotKey(typeUrl: string, version: string): string {
  return `${typeUrl.length}:${typeUrl}${version}`;
}

/** An assembled response as the cache keeps it: with what it is the response of. */
interface Assembled extends AssembledResponse {
  readonly typeUrl: string;
  readonly version: string;
}

/**
 * The live responses of one list, by type URL and version: the buffer itself, held weakly, for
 * the common case (a list goes out under one version of one type: its type URL and version are
 * those of the buffer's response), a table beyond it (the same changed resources under every
 * proxy's own version). No object per list around the reference: a per-proxy list keeps its slot
 * as long as the list lives, long after the buffer is gone.
 */
type Responses = WeakRef<Buffer> | WeakValues<string, Buffer>;
