import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { CachedResource } from "../cached-resource.js";
import { frame, stringField } from "../cached-resource.js";
import { getOrCreate } from "../get-or-create.js";

/**
 * Response assembly from cached bytes: a response is the concatenation of its fields, and every
 * resource field was encoded once per resource version (see CachedResource). Nothing is
 * re-marshalled per client; only the version, type URL and nonce fields are written here.
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
  const block = heartbeat
    ? sotwBlock(resources, true, wrapTtl)
    : getOrCreate(wrapTtl ? sotwBlocks : sotwPlainBlocks, resources, () =>
        sotwBlock(resources, false, wrapTtl),
      );
  return grpcMessage([
    stringField(1, version),
    block,
    stringField(4, typeUrl),
    stringField(5, nonce),
    controlPlane,
  ]);
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
  const block = heartbeat
    ? deltaBlock(resources, true)
    : getOrCreate(deltaBlocks, resources, () => deltaBlock(resources, false));
  const removedBlock = getOrCreate(removedBlocks, removed, () => {
    const w = new BinaryWriter();
    for (const name of removed) w.tag(6, WireType.LengthDelimited).string(name);
    return w.finish();
  });
  return grpcMessage([
    stringField(1, systemVersion),
    block,
    stringField(4, typeUrl),
    stringField(5, nonce),
    removedBlock,
    controlPlane,
  ]);
}

/** Length of the gRPC message prefix: a compressed flag and a 4-byte big-endian length. */
export const GRPC_PREFIX = 5;

/**
 * Concatenates a message's fields behind a gRPC length prefix, in one allocation. The framed
 * bytes are what goes on the wire: a transport that writes them as they are (the built-in
 * node:http2 one) sends one shared buffer to every stream; grpc-js takes the message without
 * the prefix and frames a copy of its own.
 */
function grpcMessage(parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(GRPC_PREFIX + length);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  let at = GRPC_PREFIX;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Streams that get the same push get the same resource array (a shared diff or a set's list):
// the concatenated resource fields are then built once and reused for all of them.
const sotwBlocks = new WeakMap<readonly unknown[], Uint8Array>();
const sotwPlainBlocks = new WeakMap<readonly unknown[], Uint8Array>();
const deltaBlocks = new WeakMap<readonly unknown[], Uint8Array>();
const removedBlocks = new WeakMap<readonly unknown[], Uint8Array>();

/** A heartbeat refreshes TTL'd resources only; others keep their bodies. */
function sotwBlock(resources: readonly CachedResource[], heartbeat: boolean, wrapTtl: boolean): Uint8Array {
  return Buffer.concat(resources.map((r) => r.sotwField(heartbeat && r.ttlMs !== undefined, wrapTtl)));
}

function deltaBlock(resources: readonly CachedResource[], heartbeat: boolean): Uint8Array {
  return Buffer.concat(resources.map((r) => r.deltaField(heartbeat && r.ttlMs !== undefined)));
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
 * when they carry the same resources; keyed by content, they share one assembled response (and
 * one resource block when only their versions differ). An array already seen costs one WeakMap
 * lookup; a new one, one pass to build its key. Entries are weak: a list is forgotten when no
 * stream or cache holds it.
 */
export class ContentKeys {
  private readonly byArray = new WeakMap<readonly unknown[], readonly unknown[]>();
  private readonly byKey = new Map<string, WeakRef<readonly unknown[]>>();
  private readonly forget = new FinalizationRegistry<{ key: string; ref: WeakRef<readonly unknown[]> }>(
    ({ key, ref }) => {
      if (this.byKey.get(key) === ref) this.byKey.delete(key);
    },
  );

  resources(list: readonly CachedResource[]): readonly CachedResource[] {
    return this.canonical(list, () => {
      let key = "r";
      for (const r of list) key += `,${r.uid}`;
      return key;
    });
  }

  names(list: readonly string[]): readonly string[] {
    return this.canonical(list, () => `n\u0000${list.join("\u0000")}`);
  }

  /** Distinct lists known (for tests). */
  get size(): number {
    return this.byKey.size;
  }

  private canonical<T>(list: readonly T[], keyOf: () => string): readonly T[] {
    if (list.length === 0) return list;
    const known = this.byArray.get(list);
    if (known) return known as readonly T[];
    const key = keyOf();
    let found = this.byKey.get(key)?.deref();
    if (!found) {
      found = list;
      const ref = new WeakRef<readonly unknown[]>(list);
      this.byKey.set(key, ref);
      this.forget.register(list, { key, ref });
    }
    this.byArray.set(list, found);
    return found as readonly T[];
  }
}

/**
 * Assembles responses once per push. Every stream in the same state gets the same resources and
 * the same version, so the whole response — nonce included — is built once and the same buffer is
 * written to all of them. Lists are keyed by content (see {@link ContentKeys}), not by the
 * identity of the snapshot or diff they came from: proxies with snapshots of their own share the
 * responses whose bytes are the same. Nonces come from one counter per
 * server; a stream that would get the very same response again while its nonce is still in use
 * there asks for a `fresh` one, so every answer names one response.
 */
export class ResponseCache {
  private counter = 0;
  // resources → type URL → version → response (nested maps: no key string built per stream).
  private readonly sotwBodies = new WeakMap<readonly unknown[], ByType>();
  private readonly sotwPlainBodies = new WeakMap<readonly unknown[], ByType>();
  // resources → removed names → type URL → version → response.
  private readonly deltaBodies = new WeakMap<readonly unknown[], WeakMap<readonly unknown[], ByType>>();
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
    const byType = getOrCreate(wrapTtl ? this.sotwBodies : this.sotwPlainBodies, resources, () => new Map());
    return this.assembled(byType, typeUrl, version, (nonce) =>
      sotwResponse(version, typeUrl, resources, nonce, false, this.controlPlane.sotw, wrapTtl),
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
    const byRemoved = getOrCreate(this.deltaBodies, resources, () => new WeakMap());
    const byType = getOrCreate(byRemoved, gone, () => new Map());
    return this.assembled(byType, typeUrl, version, (nonce) =>
      deltaResponse(version, typeUrl, resources, gone, nonce, false, this.controlPlane.delta),
    );
  }

  /** The response for (type URL, version) in a resources entry, built with a fresh nonce once. */
  private assembled(
    byType: ByType,
    typeUrl: string,
    version: string,
    build: (nonce: string) => Buffer,
  ): AssembledResponse {
    const byVersion = getOrCreate(byType, typeUrl, () => new Map());
    let response = byVersion.get(version);
    if (!response) {
      const nonce = this.nonce();
      response = { nonce, framed: build(nonce) };
      byVersion.set(version, response);
    }
    return response;
  }
}

type ByType = Map<string, Map<string, AssembledResponse>>;
