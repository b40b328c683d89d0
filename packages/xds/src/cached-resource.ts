import { createHash } from "node:crypto";
import { type DescMessage, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { canonicalBytes } from "./canonical-bytes.js";
import { deepFreeze } from "./deep-freeze.js";
import { durationParts } from "./duration.js";
import { type MemberDigest, sha256, versionString } from "./hash.js";
import { TypeUrl } from "./type-url.js";

let uids = 0;

/**
 * One resource of one version, encoded once. Every response that carries it, to any number of
 * clients, reuses these bytes (ARCHITECTURE: "serialize once"): responses are written from them
 * directly, with the few bytes of framing (`Any`, `Resource`) around them.
 *
 * What it keeps is its bytes: the message it was made from is held weakly, so that a control
 * plane that drops its messages once they are in snapshots (thousands of per-proxy resources)
 * does not keep them twice. `message` returns that message while anything else holds it, and
 * otherwise an equal (frozen) one decoded from the bytes.
 */
export class CachedResource<T extends Message = Message> implements MemberDigest {
  /** Content hash of the encoded resource (and its TTL): identical content, identical version. */
  readonly version: string;
  /** The resource's protobuf encoding. */
  readonly bytes: Uint8Array;
  /**
   * A number unique to this object in the process: response assembly keys lists of resources by
   * these (a content key), so streams of different proxies that get the same resources share one
   * response however their lists were built.
   */
  readonly uid = ++uids;
  /** Whether the resource passed the field-rule validation (see `validateResource`); set once. */
  validated = false;
  /** @internal Its digest in set versions (hash.ts), computed on first use. */
  digested = false;
  /** @internal */
  lane0 = 0;
  /** @internal */
  lane1 = 0;
  /** @internal */
  lane2 = 0;
  /** @internal */
  lane3 = 0;
  private ref: WeakRef<T>;
  /** Framed forms, built on first use of sotwField()/deltaField() (servers write from `bytes`). */
  private frames?: {
    sotw?: Uint8Array;
    sotwWrapped?: Uint8Array;
    sotwHeartbeat?: Uint8Array;
    delta?: Uint8Array;
    deltaHeartbeat?: Uint8Array;
  };

  constructor(
    readonly typeUrl: string,
    readonly name: string,
    message: T,
    private readonly schema: DescMessage,
    /** Time to live in milliseconds (xDS TTL); the client drops the resource unless refreshed. */
    readonly ttlMs?: number,
    /** The encoding and version when the caller has them already (a ResourcePool does). */
    encoded?: { readonly bytes: Uint8Array; readonly version: string },
  ) {
    this.bytes = encoded?.bytes ?? canonicalBytes(schema, toBinary(schema, message));
    this.version = encoded?.version ?? contentVersion(this.bytes, ttlMs);
    this.ref = new WeakRef(message);
  }

  /** The resource as a message: the one it was made from, or an equal one decoded from its bytes. */
  get message(): T {
    let message = this.ref.deref();
    if (message === undefined) {
      message = fromBinary(this.schema, this.bytes) as T;
      deepFreeze(message);
      this.ref = new WeakRef(message);
    }
    return message;
  }

  /**
   * `DiscoveryResponse.resources` entry (field 2, an Any). With `wrapTtl`, a resource with a TTL
   * is wrapped in `envoy.service.discovery.v3.Resource`, as SotW TTLs require, and a heartbeat
   * omits the body. Without it (clients that do not advertise `xds.config.resource-in-sotw`, such
   * as grpc-js, which NACK the wrapper), the plain resource is sent and the TTL is not.
   */
  sotwField(heartbeat = false, wrapTtl = true): Uint8Array {
    this.frames ??= {};
    const f = this.frames;
    if (this.ttlMs === undefined || !wrapTtl) {
      f.sotw ??= frame(2, any(this.typeUrl, this.bytes));
      return f.sotw;
    }
    if (heartbeat) {
      f.sotwHeartbeat ??= frame(2, any(TypeUrl.Resource, this.resourceWrapper(false)));
      return f.sotwHeartbeat;
    }
    f.sotwWrapped ??= frame(2, any(TypeUrl.Resource, this.resourceWrapper(true)));
    return f.sotwWrapped;
  }

  /** `DeltaDiscoveryResponse.resources` entry (field 2, a Resource); a heartbeat omits the body. */
  deltaField(heartbeat = false): Uint8Array {
    this.frames ??= {};
    const f = this.frames;
    if (heartbeat) {
      f.deltaHeartbeat ??= frame(2, this.resourceWrapper(false));
      return f.deltaHeartbeat;
    }
    f.delta ??= frame(2, this.resourceWrapper(true));
    return f.delta;
  }

  /** envoy.service.discovery.v3.Resource { version=1, resource=2, name=3, ttl=6 }. */
  private resourceWrapper(withBody: boolean): Uint8Array {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).string(this.version);
    if (withBody) w.tag(2, WireType.LengthDelimited).bytes(any(this.typeUrl, this.bytes));
    w.tag(3, WireType.LengthDelimited).string(this.name);
    if (this.ttlMs !== undefined) w.tag(6, WireType.LengthDelimited).bytes(duration(this.ttlMs));
    return w.finish();
  }
}

/** The content version of an encoded resource and its TTL: 22 base64url characters of SHA-256. */
export function contentVersion(bytes: Uint8Array, ttlMs: number | undefined): string {
  if (ttlMs === undefined) return versionString(sha256(bytes));
  return versionString(createHash("sha256").update(bytes).update(`ttl:${ttlMs}`).digest());
}

/** google.protobuf.Any { type_url=1, value=2 }. */
function any(typeUrl: string, value: Uint8Array): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(typeUrl);
  w.tag(2, WireType.LengthDelimited).bytes(value);
  return w.finish();
}

/** google.protobuf.Duration { seconds=1, nanos=2 }. */
function duration(ms: number): Uint8Array {
  const w = new BinaryWriter();
  const { seconds, nanos } = durationParts(ms);
  if (seconds !== 0) w.tag(1, WireType.Varint).int64(seconds);
  if (nanos !== 0) w.tag(2, WireType.Varint).int32(nanos);
  return w.finish();
}

/** A length-delimited field: tag, length, bytes. */
export function frame(field: number, value: Uint8Array): Uint8Array {
  return new BinaryWriter().tag(field, WireType.LengthDelimited).bytes(value).finish();
}

/** A string field, or nothing for the empty string (proto3 default). */
export function stringField(field: number, value: string): Uint8Array {
  if (value === "") return new Uint8Array(0);
  return new BinaryWriter().tag(field, WireType.LengthDelimited).string(value).finish();
}
