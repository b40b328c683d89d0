import type { Message, Registry } from "@bufbuild/protobuf";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { TypedExtensionConfig } from "@meshlet/api/envoy/config/core/v3/extension_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { VirtualHost } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import type { ScopedRouteConfiguration } from "@meshlet/api/envoy/config/route/v3/scoped_route_pb";
import type { Secret } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import type { Runtime } from "@meshlet/api/envoy/service/runtime/v3/rtds_pb";
import type { CachedResource } from "./cached-resource.js";
import { type DanglingReference, InconsistentSnapshotError } from "./errors.js";
import {
  defaultResourcePool,
  type InternOptions,
  type ResourceInput,
  type ResourcePool,
  type ResourceSet,
} from "./resource-pool.js";
import { clusterEndpointName, listenerRouteNames } from "./resources/references.js";
import { resourceSchemas, TypeUrl } from "./type-url.js";
import { validateResource } from "./validation/validate-resource.js";

export {
  defaultResourcePool,
  isWithTtl,
  type ResourceInput,
  ResourcePool,
  type ResourcePoolStats,
  type ResourceSet,
  resourceName,
} from "./resource-pool.js";

/** What {@link Snapshot.create} takes: arrays of protobuf-es messages from `@meshlet/api`, per type. */
export interface SnapshotInput {
  clusters?: readonly ResourceInput<Cluster>[];
  endpoints?: readonly ResourceInput<ClusterLoadAssignment>[];
  listeners?: readonly ResourceInput<Listener>[];
  routes?: readonly ResourceInput<RouteConfiguration>[];
  scopedRoutes?: readonly ResourceInput<ScopedRouteConfiguration>[];
  virtualHosts?: readonly ResourceInput<VirtualHost>[];
  secrets?: readonly ResourceInput<Secret>[];
  runtimes?: readonly ResourceInput<Runtime>[];
  extensionConfigs?: readonly ResourceInput<TypedExtensionConfig>[];
  /** Any other type, keyed by type URL (its schema must be in `registry`). */
  resources?: Readonly<Record<string, readonly ResourceInput[]>>;
  /**
   * Explicit versions per type URL. By default a type's version is a hash of its content, so that
   * identical content gets an identical version on every control-plane replica.
   */
  versions?: Readonly<Record<string, string>>;
}

/** Options of {@link Snapshot.create}. */
export interface SnapshotOptions {
  /**
   * Where schemas of custom types in `resources` are looked up; the built-in xDS types are always
   * known. Pass `registry` from `@meshlet/api` to allow any generated type, and to have the field
   * rules check the payloads of `google.protobuf.Any` fields (`typed_config`) of every type.
   */
  registry?: Registry;
  /**
   * Where encoded resources are shared (default: the process-wide {@link defaultResourcePool}).
   * Snapshots that share a pool share the encoded resources and sets they have in common.
   */
  pool?: ResourcePool;
  /**
   * Check Envoy's field rules (protoc-gen-validate annotations of the protos) on every new
   * resource and refuse the snapshot with a {@link ResourceValidationError} naming the resource,
   * the field path and the rule. Default `true`; `false` for callers that validate elsewhere.
   */
  validate?: boolean;
}

const inputKeys: ReadonlyArray<[keyof SnapshotInput, string]> = [
  ["clusters", TypeUrl.Cluster],
  ["endpoints", TypeUrl.ClusterLoadAssignment],
  ["listeners", TypeUrl.Listener],
  ["routes", TypeUrl.RouteConfiguration],
  ["scopedRoutes", TypeUrl.ScopedRouteConfiguration],
  ["virtualHosts", TypeUrl.VirtualHost],
  ["secrets", TypeUrl.Secret],
  ["runtimes", TypeUrl.Runtime],
  ["extensionConfigs", TypeUrl.ExtensionConfig],
];

/** The input key of each type URL that has one. */
const knownKeys = new Map(inputKeys.map(([key, typeUrl]) => [typeUrl, key]));

/** Builds the CachedResource of one input, checking its type and name (and its field rules). */
export function cacheResource(
  typeUrl: string,
  input: ResourceInput,
  registry?: Registry,
  pool: ResourcePool = defaultResourcePool,
): CachedResource {
  return pool.resource(typeUrl, input, { ...(registry ? { registry } : {}), validate: validateResource });
}

/** Builds a ResourceSet from cached resources, rejecting duplicate names. */
export function resourceSet(
  typeUrl: string,
  resources: Iterable<CachedResource>,
  version?: string,
  pool: ResourcePool = defaultResourcePool,
): ResourceSet {
  return pool.setOf(typeUrl, resources, version);
}

/** Options of {@link Snapshot.merge}. */
export interface MergeOptions {
  /** Where the merged sets are interned (default: {@link defaultResourcePool}). */
  pool?: ResourcePool;
}

// One InternOptions object per (registry, validate) pair: no object built per type per snapshot.
const validating: InternOptions = { validate: validateResource };
const notValidating: InternOptions = {};
const withRegistry = new WeakMap<Registry, { on: InternOptions; off: InternOptions }>();

function internOptions(registry: Registry | undefined, validate: boolean): InternOptions {
  if (!registry) return validate ? validating : notValidating;
  let o = withRegistry.get(registry);
  if (!o) {
    o = { on: { registry, validate: validateResource }, off: { registry } };
    withRegistry.set(registry, o);
  }
  return validate ? o.on : o.off;
}

/**
 * An immutable set of xDS resources for one node (or group of nodes), with a version per type.
 * Every resource is encoded once, the first time any snapshot or cache of the pool sees it; servers
 * reuse those bytes for every client and every response. A snapshot built from messages (or whole
 * per-type arrays) that an earlier snapshot had costs no encode and no hash for them, and shares
 * their ResourceSets: thousands of per-proxy snapshots cost little more than their differences.
 * {@link Snapshot.merge} goes further: a proxy's snapshot as the union of a shared snapshot and
 * one of its own resources costs only its own part, in time and in memory.
 */
export class Snapshot {
  private static readonly empty = new Map<string, ResourceSet>();

  /** One set per type, in input order (a handful of types: a scan beats a Map per snapshot). */
  private constructor(private readonly sets: readonly ResourceSet[]) {}

  /**
   * Creates a snapshot from protobuf-es messages. The messages are frozen (deeply): a snapshot is
   * immutable, and the pool finds them again by identity.
   * @throws XdsError when a resource has the wrong type, no name, or a name used twice;
   * ResourceValidationError when it breaks one of Envoy's field rules (unless `validate: false`).
   */
  static create(input: SnapshotInput, options: SnapshotOptions = {}): Snapshot {
    const pool = options.pool ?? defaultResourcePool;
    const intern = internOptions(options.registry, options.validate !== false);
    const extra = input.resources;
    const versions = input.versions;
    const sets: ResourceSet[] = [];
    const add = (typeUrl: string, list: readonly ResourceInput[]) => {
      const version = versions?.[typeUrl];
      sets.push(pool.set(typeUrl, list, version === undefined ? intern : { ...intern, version }));
    };
    for (const [key, typeUrl] of inputKeys) {
      const list = input[key] as readonly ResourceInput[] | undefined;
      if (!list) continue;
      const more = extra?.[typeUrl];
      add(typeUrl, more ? [...list, ...more] : list);
    }
    if (extra) {
      for (const typeUrl of Object.keys(extra)) {
        if (knownKeys.has(typeUrl) && input[knownKeys.get(typeUrl)!]) continue; // merged above
        add(typeUrl, extra[typeUrl]!);
      }
    }
    // Exactly sized (a pushed-to array has room to grow): per-proxy snapshots are many.
    return new Snapshot(sets.slice());
  }

  /**
   * A snapshot holding every resource of `parts`: per type, the union of their sets. The parts
   * must not have two resources of one type with the same name (as within one snapshot). A type
   * that only one part has keeps that part's set (and version) as it is; a type that several
   * have gets the content-hash version of the union, which equals that of one snapshot created
   * with the same resources. The union is a view over the parts' sets, not a copy: a proxy's
   * snapshot merged from a shared snapshot and one of its own resources costs its own resources,
   * and after a shared change, rebuilding it costs a few lookups. Diffs between two such unions
   * that differ only in their shared part are that part's diff, computed once for every proxy.
   * @throws XdsError naming a type and a name that two parts both have.
   */
  static merge(parts: readonly Snapshot[], options: MergeOptions = {}): Snapshot {
    if (parts.length === 1) return parts[0]!;
    const pool = options.pool ?? defaultResourcePool;
    // Types in first-seen order; each type's sets from every part that has it (a handful of types
    // and parts: scans, no Map per merge).
    const types: string[] = [];
    for (const part of parts)
      for (const set of part.sets) if (!types.includes(set.typeUrl)) types.push(set.typeUrl);
    const sets: ResourceSet[] = new Array(types.length);
    for (let t = 0; t < types.length; t++) {
      const typeUrl = types[t]!;
      let only: ResourceSet | undefined;
      let several: ResourceSet[] | undefined;
      for (const part of parts) {
        const set = part.find(typeUrl);
        if (!set) continue;
        if (!only) only = set;
        else if (several) several.push(set);
        else several = [only, set];
      }
      sets[t] = several ? pool.union(typeUrl, several) : only!;
    }
    return new Snapshot(sets);
  }

  /** Type URLs this snapshot holds resources (possibly none) for. */
  typeUrls(): string[] {
    return this.sets.map((s) => s.typeUrl);
  }

  /** The version of one type; the version of the empty set when the snapshot has no such type. */
  version(typeUrl: string): string {
    return this.resourceSet(typeUrl).version;
  }

  /** The resources of one type by name. */
  resources(typeUrl: string): ReadonlyMap<string, CachedResource> {
    return this.resourceSet(typeUrl).resources;
  }

  /** One resource's message, or undefined. */
  get<T extends Message = Message>(typeUrl: string, name: string): T | undefined {
    return this.find(typeUrl)?.resources.get(name)?.message as T | undefined;
  }

  /** The ResourceSet of one type (empty when the snapshot has none of that type). */
  resourceSet(typeUrl: string): ResourceSet {
    let set = this.find(typeUrl);
    if (!set) {
      set = Snapshot.empty.get(typeUrl) ?? resourceSet(typeUrl, []);
      // Kept for the built-in xDS types only: clients name any type URL they like, and a process-
      // wide map of those would grow with every one (the pool keeps the others while in use).
      if (resourceSchemas.has(typeUrl)) (Snapshot.empty as Map<string, ResourceSet>).set(typeUrl, set);
    }
    return set;
  }

  private find(typeUrl: string): ResourceSet | undefined {
    for (const set of this.sets) if (set.typeUrl === typeUrl) return set;
    return undefined;
  }

  /**
   * Checks that every RouteConfiguration a listener names and every ClusterLoadAssignment an EDS
   * cluster needs is in the snapshot, so no proxy waits for a resource that never comes.
   * @throws InconsistentSnapshotError naming each dangling reference.
   */
  consistent(): void {
    const dangling: DanglingReference[] = [];
    const routes = this.resources(TypeUrl.RouteConfiguration);
    for (const listener of this.resources(TypeUrl.Listener).values()) {
      for (const route of listenerRouteNames(listener.message as Listener)) {
        if (!routes.has(route)) {
          dangling.push({
            fromType: TypeUrl.Listener,
            from: listener.name,
            toType: TypeUrl.RouteConfiguration,
            to: route,
          });
        }
      }
    }
    const endpoints = this.resources(TypeUrl.ClusterLoadAssignment);
    for (const cluster of this.resources(TypeUrl.Cluster).values()) {
      const eds = clusterEndpointName(cluster.message as Cluster);
      if (eds !== undefined && !endpoints.has(eds)) {
        dangling.push({
          fromType: TypeUrl.Cluster,
          from: cluster.name,
          toType: TypeUrl.ClusterLoadAssignment,
          to: eds,
        });
      }
    }
    if (dangling.length > 0) throw new InconsistentSnapshotError(dangling);
  }
}
