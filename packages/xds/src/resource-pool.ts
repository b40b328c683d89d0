import { type DescMessage, type Message, type Registry, toBinary } from "@bufbuild/protobuf";
import { CachedResource, contentVersion } from "./cached-resource.js";
import { canonicalBytes } from "./canonical-bytes.js";
import { deepFreeze } from "./deep-freeze.js";
import { XdsError } from "./errors.js";
import { getOrCreate } from "./get-or-create.js";
import { setVersion, sortedByDigest } from "./hash.js";
import { ContentSet, partsOf, type ResourceSet, SmallMap, UnionMap } from "./resource-set.js";
import type { WithTtl } from "./resources/builders.js";
import { xdsRegistry } from "./type-url.js";
import { PayloadMemo } from "./validation/payload-memo.js";
import { WeakValues } from "./weak-values.js";

export type { ResourceSet } from "./resource-set.js";

/** A resource as given to a snapshot or cache: the message, or the message with a TTL. */
export type ResourceInput<T extends Message = Message> = T | WithTtl<T>;

/**
 * Checks one new resource before any proxy gets it (the field rules); throws to refuse it.
 * `memo` remembers `Any` payloads already found valid (per pool and registry).
 */
export type ResourceValidator = (
  resource: CachedResource,
  registry: Registry | undefined,
  memo?: PayloadMemo,
) => void;

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
 *   bytes, that resource is reused, so streams of different proxies that get the same content
 *   write the same bytes (and share responses).
 * - A set is found by its input array when every element is the same object as last time, and by
 *   content otherwise: snapshots of thousands of proxies that share a type share its ResourceSet,
 *   so the server diffs it and assembles its responses once for all of them.
 * - The union of disjoint sets (Snapshot.merge: a proxy's own resources and the shared ones) is
 *   a view over them, its version computed when first asked for by merging their ordered members:
 *   it costs what the proxy's own part costs.
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
  /** type URL → content version → resource. */
  private readonly byContent = new Map<string, WeakValues<string, CachedResource>>();
  private readonly setsByInput = new WeakMap<readonly unknown[], InputEntry>();
  /** type URL → content key (and explicit version) → set. */
  private readonly setsByContent = new Map<string, WeakValues<string, ResourceSet>>();
  /** Valid `Any` payloads per registry (validation), so that a payload many resources embed is checked once. */
  private readonly payloads = new WeakMap<Registry, PayloadMemo>();
  private readonly builtInPayloads = new PayloadMemo();
  readonly stats: ResourcePoolStats = {
    encodes: 0,
    identityHits: 0,
    contentHits: 0,
    setInputHits: 0,
    setContentHits: 0,
    validations: 0,
  };

  /** Resources and sets currently known (alive, or dead and not swept yet). */
  get size(): { resources: number; sets: number } {
    let resources = 0;
    for (const t of this.byContent.values()) resources += t.size;
    let sets = 0;
    for (const t of this.setsByContent.values()) sets += t.size;
    return { resources, sets };
  }

  /**
   * The CachedResource of one input of `typeUrl`: found by identity, or encoded, hashed and found
   * by content, or new.
   * @throws XdsError when the message has the wrong type or no name, or breaks a field rule.
   */
  resource(typeUrl: string, input: ResourceInput, options: InternOptions = {}): CachedResource {
    const withTtl = isWithTtl(input);
    const ttl = withTtl ? input.ttlMs : undefined;
    const message = withTtl ? input.resource : input;
    const known = this.byMessage.get(message);
    if (known && known.typeUrl === typeUrl && known.ttlMs === ttl) {
      this.stats.identityHits++;
      if (!known.validated && options.validate) this.validated(known, options);
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
    // Map entries sorted by key: the same content built in any order has the same bytes.
    const bytes = canonicalBytes(schema, toBinary(schema, message), options.registry);
    const version = contentVersion(bytes, ttl);
    this.stats.encodes++;
    const table = getOrCreate(this.byContent, typeUrl, () => new WeakValues<string, CachedResource>());
    let resource = table.get(version);
    if (resource) this.stats.contentHits++;
    else {
      resource = new CachedResource(typeUrl, internName(name), message, schema, ttl, { bytes, version });
      table.set(version, resource);
    }
    if (!resource.validated && options.validate) this.validated(resource, options);
    deepFreeze(message);
    if (withTtl) Object.freeze(input);
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
    const resources: CachedResource[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) resources[i] = this.resource(typeUrl, inputs[i]!, options);
    const set = this.setOf(typeUrl, resources, options.version);
    // The array is copied unless frozen: a caller may change its own array later, and must miss.
    const kept = Object.isFrozen(inputs) ? inputs : inputs.slice();
    this.setsByInput.set(inputs, { inputs: kept, typeUrl, options, set });
    return set;
  }

  /**
   * The ResourceSet of already cached resources: an existing set with the same content (and
   * explicit version) if there is one.
   */
  setOf(typeUrl: string, resources: Iterable<CachedResource>, version?: string): ResourceSet {
    const list = Array.isArray(resources) ? (resources as CachedResource[]) : [...resources];
    const sorted = sortedByDigest(list);
    const content = setVersion([sorted]);
    // A set's own map is built only when it is new (a set found by content needs none); a small
    // set (a proxy's own) does not keep its sorted copy, it sorts its few members when asked.
    return this.intern(typeUrl, contentKey(content, version), () => {
      const map = mapOf(typeUrl, list);
      return new ContentSet(typeUrl, map, map instanceof SmallMap ? undefined : sorted, version ?? content);
    });
  }

  /**
   * Interns a set whose map and members in canonical order the caller has (LinearCache's path).
   * @internal
   */
  setFromSorted(
    typeUrl: string,
    map: ReadonlyMap<string, CachedResource>,
    sorted: readonly CachedResource[],
    version?: string,
  ): ResourceSet {
    const content = setVersion([sorted]);
    return this.intern(
      typeUrl,
      contentKey(content, version),
      () => new ContentSet(typeUrl, map, sorted, version ?? content),
    );
  }

  /**
   * The union of disjoint sets of one type (Snapshot.merge): a view over their maps, whose
   * version is the content hash of the whole (computed when first asked for, from the parts'
   * ordered members; explicit versions of the parts do not carry over). A union of unions is
   * flattened into their parts. Unions are interned by their parts, which are interned by content:
   * proxies with the same own content get the same union.
   * @throws XdsError when two of them have a resource of the same name.
   */
  union(typeUrl: string, sets: readonly ResourceSet[]): ResourceSet {
    const parts: ContentSet[] = [];
    for (const set of sets) {
      for (const p of partsOf(set)) {
        if (p.resources.size === 0) continue;
        parts.push(
          p instanceof ContentSet && !p.parts ? p : (this.setOf(typeUrl, p.resources.values()) as ContentSet),
        );
      }
    }
    if (parts.length === 0) return this.setOf(typeUrl, []);
    // The one non-empty part, by content (its explicit version, if any, does not carry over).
    if (parts.length === 1) return this.setOf(typeUrl, parts[0]!.resources.values());
    // Joined, not built with +=: one flat string per union (a chain of pieces costs several
    // string objects, and every per-proxy union's key is kept in the table).
    const ids: (string | number)[] = new Array(parts.length + 1);
    ids[0] = "u";
    for (let i = 0; i < parts.length; i++) ids[i + 1] = parts[i]!.uid;
    const key = ids.join(",");
    return this.intern(typeUrl, key, () => {
      // Kept exactly sized (a pushed-to array has room to grow): every per-proxy union holds one.
      const exact = parts.slice();
      return new ContentSet(typeUrl, new UnionMap(typeUrl, exact), undefined, undefined, exact);
    });
  }

  /** Keys: a plain set's content version (and explicit version after a NUL), or "u" and its parts' uids, comma-separated. */
  private intern(typeUrl: string, key: string, create: () => ResourceSet): ResourceSet {
    const table = getOrCreate(this.setsByContent, typeUrl, () => new WeakValues<string, ResourceSet>());
    const existing = table.get(key);
    if (existing) {
      this.stats.setContentHits++;
      return existing;
    }
    const set = create();
    table.set(key, set);
    return set;
  }

  private validated(resource: CachedResource, options: InternOptions): void {
    const registry = options.registry;
    const memo = registry
      ? getOrCreate(this.payloads, registry, () => new PayloadMemo())
      : this.builtInPayloads;
    options.validate?.(resource, registry, memo);
    this.stats.validations++;
    resource.validated = true;
  }
}

/**
 * The name as V8's internalized string: one flat copy per distinct name in the process, however
 * many resources (thousands of proxies' `inbound|8080||`) carry it, instead of the tree of pieces
 * a name built with a template literal is. A property key is internalized; reading it back gives
 * that copy.
 */
function internName(name: string): string {
  const holder: Record<string, true> = { [name]: true };
  for (const key in holder) return key;
  return name;
}

/** The map of a new set: an array scanned for a few resources, a Map beyond. */
function mapOf(typeUrl: string, list: readonly CachedResource[]): ReadonlyMap<string, CachedResource> {
  if (list.length <= SmallMap.maxSize) {
    for (let i = 1; i < list.length; i++)
      for (let j = 0; j < i; j++)
        if (list[i]!.name === list[j]!.name) throw duplicate(typeUrl, list[i]!.name);
    return new SmallMap(list.slice());
  }
  const map = new Map<string, CachedResource>();
  for (const r of list) {
    if (map.has(r.name)) throw duplicate(typeUrl, r.name);
    map.set(r.name, r);
  }
  return map;
}

function contentKey(content: string, version: string | undefined): string {
  return version === undefined ? content : `${content}\u0000${version}`;
}

function duplicate(typeUrl: string, name: string): XdsError {
  return new XdsError(
    "duplicate-resource",
    `two ${typeUrl} resources are named "${name}"; names must be unique per type`,
  );
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
  if (a === b) return true; // a frozen input array, kept as it is
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
