import { type DescMessage, type Message, type Registry, toBinary } from "@bufbuild/protobuf";
import { CachedResource, contentVersion } from "./cached-resource.js";
import { XdsError } from "./errors.js";
import { SetVersion } from "./hash.js";
import type { WithTtl } from "./resources/builders.js";
import { xdsRegistry } from "./type-url.js";

/** A resource as given to a snapshot or cache: the message, or the message with a TTL. */
export type ResourceInput<T extends Message = Message> = T | WithTtl<T>;

/** The resources of one type, as a cache hands them to the server. Immutable. */
export interface ResourceSet {
  readonly typeUrl: string;
  /** The type's version (`version_info` / `system_version_info`). */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
}

/** Checks one new resource before any proxy gets it (the field rules); throws to refuse it. */
export type ResourceValidator = (resource: CachedResource, registry: Registry | undefined) => void;

/** How a resource or set is interned. */
export interface InternOptions {
  /** Schemas of custom types (the built-in xDS types are always known). */
  readonly registry?: Registry;
  /** Runs once per new encoded resource; `undefined` skips validation. */
  readonly validate?: ResourceValidator;
  /** An explicit set version instead of the content hash. */
  readonly version?: string;
}

/** What a pool did, for benchmarks and tests. Counts only grow. */
export interface ResourcePoolStats {
  /** Messages encoded and hashed (first sight of a message object). */
  encodes: number;
  /** Messages found by identity: no encode, no hash. */
  identityHits: number;
  /** Messages encoded, whose bytes an existing resource already had (its frames are shared). */
  contentHits: number;
  /** Sets found by their input array (every element the same object): no work per element. */
  setInputHits: number;
  /** Sets built anew whose content an existing set already had (the existing one is returned). */
  setContentHits: number;
  /** Resources validated (first sight of their content with validation on). */
  validations: number;
}

interface InputEntry {
  readonly inputs: readonly ResourceInput[];
  readonly typeUrl: string;
  readonly options: InternOptions;
  readonly set: ResourceSet;
}

/**
 * Content-addressed encoded resources, shared across snapshots, caches and cache keys.
 *
 * - A message object seen before costs nothing: no encode, no hash (found by identity).
 * - A new message object is encoded and hashed once; if another resource already has the same
 *   bytes, that resource (with its framed bytes) is reused, so streams of different proxies that
 *   get the same content write the same buffers.
 * - A set is found by its input array when every element is the same object as last time, and by
 *   content otherwise: snapshots of thousands of proxies that share a type share its ResourceSet,
 *   so the server diffs it and assembles its responses once for all of them.
 *
 * Entries are held by weak references: a resource or set lives as long as a snapshot, cache or
 * stream uses it, and the pool forgets it when the garbage collector frees it. Weak references,
 * not reference counts, because snapshots are immutable values without a lifecycle: nothing tells
 * the pool when a snapshot is dropped, the collector does.
 *
 * Identity is only safe if a message cannot change afterwards, so the pool freezes (deeply) every
 * message it encodes: a later mutation throws a TypeError instead of silently serving stale bytes.
 * Derive new resources with protobuf-es `clone()` or by creating new messages.
 */
export class ResourcePool {
  private readonly byMessage = new WeakMap<object, CachedResource>();
  private readonly byContent = new Map<string, WeakRef<CachedResource>>();
  private readonly setsByInput = new WeakMap<readonly unknown[], InputEntry>();
  private readonly setsByContent = new Map<string, WeakRef<ResourceSet>>();
  private readonly forget = new FinalizationRegistry<{
    map: Map<string, WeakRef<object>>;
    key: string;
    ref: WeakRef<object>;
  }>(({ map, key, ref }) => {
    if (map.get(key) === ref) map.delete(key);
  });
  readonly stats: ResourcePoolStats = {
    encodes: 0,
    identityHits: 0,
    contentHits: 0,
    setInputHits: 0,
    setContentHits: 0,
    validations: 0,
  };

  /** Resources and sets currently known (alive or not yet collected). */
  get size(): { resources: number; sets: number } {
    return { resources: this.byContent.size, sets: this.setsByContent.size };
  }

  /**
   * The CachedResource of one input of `typeUrl`: found by identity, or encoded, hashed and found
   * by content, or new.
   * @throws XdsError when the message has the wrong type or no name, or breaks a field rule.
   */
  resource(typeUrl: string, input: ResourceInput, options: InternOptions = {}): CachedResource {
    const ttl = isWithTtl(input) ? input.ttlMs : undefined;
    const message = isWithTtl(input) ? input.resource : input;
    const known = this.byMessage.get(message);
    if (known && known.typeUrl === typeUrl && known.ttlMs === ttl) {
      this.stats.identityHits++;
      this.validated(known, options);
      return known;
    }
    const schema = checkedSchema(typeUrl, message, options.registry);
    const name = resourceName(message);
    if (name === "") {
      throw new XdsError(
        "missing-name",
        `a ${message.$typeName} resource has an empty name; every xDS resource needs one`,
      );
    }
    const bytes = toBinary(schema, message);
    const version = contentVersion(bytes, ttl);
    this.stats.encodes++;
    const key = `${typeUrl} ${version}`;
    let resource = this.byContent.get(key)?.deref();
    if (resource) this.stats.contentHits++;
    else {
      resource = new CachedResource(typeUrl, name, message, schema, ttl, { bytes, version });
      this.remember(this.byContent, key, resource);
    }
    this.validated(resource, options);
    deepFreeze(message);
    if (isWithTtl(input)) Object.freeze(input);
    this.byMessage.set(message, resource);
    return resource;
  }

  /**
   * The ResourceSet of `inputs` (one type): the same object for the same content.
   * @throws XdsError when two resources share a name, or as {@link resource} does.
   */
  set(typeUrl: string, inputs: readonly ResourceInput[], options: InternOptions = {}): ResourceSet {
    const hit = this.setsByInput.get(inputs);
    if (
      hit &&
      hit.typeUrl === typeUrl &&
      hit.options.registry === options.registry &&
      hit.options.version === options.version &&
      (hit.options.validate === options.validate || options.validate === undefined) &&
      sameElements(hit.inputs, inputs)
    ) {
      this.stats.setInputHits++;
      return hit.set;
    }
    const set = this.setOf(
      typeUrl,
      inputs.map((i) => this.resource(typeUrl, i, options)),
      options.version,
    );
    this.setsByInput.set(inputs, { inputs: [...inputs], typeUrl, options, set });
    return set;
  }

  /**
   * The ResourceSet of already cached resources: an existing set with the same content (and
   * explicit version) if there is one.
   */
  setOf(typeUrl: string, resources: Iterable<CachedResource>, version?: string): ResourceSet {
    const map = new Map<string, CachedResource>();
    for (const r of resources) {
      if (map.has(r.name)) {
        throw new XdsError(
          "duplicate-resource",
          `two ${typeUrl} resources are named "${r.name}"; names must be unique per type`,
        );
      }
      map.set(r.name, r);
    }
    return this.setFromMap(typeUrl, map, SetVersion.of(map.values()), version);
  }

  /** Interns a set whose map and content version the caller computed (LinearCache's path). */
  setFromMap(
    typeUrl: string,
    map: ReadonlyMap<string, CachedResource>,
    content: SetVersion,
    version?: string,
  ): ResourceSet {
    const contentKey = content.toString();
    const key = `${typeUrl} ${contentKey} ${version ?? ""}`;
    const existing = this.setsByContent.get(key)?.deref();
    if (existing) {
      this.stats.setContentHits++;
      return existing;
    }
    const set: ResourceSet = { typeUrl, version: version ?? contentKey, resources: map };
    this.remember(this.setsByContent, key, set);
    return set;
  }

  private validated(resource: CachedResource, options: InternOptions): void {
    if (resource.validated || !options.validate) return;
    options.validate(resource, options.registry);
    this.stats.validations++;
    resource.validated = true;
  }

  private remember<T extends object>(map: Map<string, WeakRef<T>>, key: string, value: T): void {
    const ref = new WeakRef(value);
    map.set(key, ref);
    this.forget.register(value, { map: map as Map<string, WeakRef<object>>, key, ref });
  }
}

/** The pool snapshots and caches share unless given their own. */
export const defaultResourcePool = new ResourcePool();

/** The xDS name of a resource: `cluster_name` for ClusterLoadAssignment, `name` otherwise. */
export function resourceName(message: Message): string {
  const record = message as unknown as Record<string, unknown>;
  if (message.$typeName === "envoy.config.endpoint.v3.ClusterLoadAssignment")
    return String(record.clusterName ?? "");
  return typeof record.name === "string" ? record.name : "";
}

export function isWithTtl(input: ResourceInput): input is WithTtl<Message> {
  return (
    (input as { $typeName?: unknown }).$typeName === undefined && "resource" in input && "ttlMs" in input
  );
}

function checkedSchema(typeUrl: string, message: Message, registry: Registry | undefined): DescMessage {
  const typeName = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  if (message.$typeName !== typeName) {
    throw new XdsError(
      "invalid-argument",
      `a ${message.$typeName} was given where ${typeName} resources are expected (type URL ${typeUrl})`,
    );
  }
  const schema = registry?.getMessage(typeName) ?? xdsRegistry.getMessage(typeName);
  if (!schema) {
    throw new XdsError(
      "unknown-type",
      `no schema for ${typeUrl}: pass { registry } (e.g. the registry exported by @meshlet/api) to Snapshot.create or the cache`,
    );
  }
  return schema;
}

function sameElements(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Freezes a message and everything reachable from it (typed arrays cannot be frozen, and their
 * bytes are copied by the encoding anyway). Stops at objects already frozen.
 */
function deepFreeze(value: object): void {
  if (Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === "object" && v !== null) deepFreeze(v);
  }
}
