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
import { CachedResource } from "./cached-resource.js";
import { type DanglingReference, InconsistentSnapshotError, XdsError } from "./errors.js";
import { versionOfResources } from "./hash.js";
import type { WithTtl } from "./resources/builders.js";
import { clusterEndpointName, listenerRouteNames } from "./resources/references.js";
import { TypeUrl, xdsRegistry } from "./type-url.js";

/** A resource as given to a snapshot or cache: the message, or the message with a TTL. */
export type ResourceInput<T extends Message = Message> = T | WithTtl<T>;

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
   * known. Pass `registry` from `@meshlet/api` to allow any generated type.
   */
  registry?: Registry;
}

/** The resources of one type, as a cache hands them to the server. Immutable. */
export interface ResourceSet {
  readonly typeUrl: string;
  /** The type's version (`version_info` / `system_version_info`). */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
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

/** Builds the CachedResource of one input, checking its type and name. */
export function cacheResource(
  typeUrl: string,
  input: ResourceInput,
  registry: Registry = xdsRegistry,
): CachedResource {
  const ttl = isWithTtl(input) ? input.ttlMs : undefined;
  const message = isWithTtl(input) ? input.resource : input;
  const typeName = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  if (message.$typeName !== typeName) {
    throw new XdsError(
      "invalid-argument",
      `a ${message.$typeName} was given where ${typeName} resources are expected (type URL ${typeUrl})`,
    );
  }
  const schema = registry.getMessage(typeName) ?? xdsRegistry.getMessage(typeName);
  if (!schema) {
    throw new XdsError(
      "unknown-type",
      `no schema for ${typeUrl}: pass { registry } (e.g. the registry exported by @meshlet/api) to Snapshot.create or the cache`,
    );
  }
  const name = resourceName(message);
  if (name === "") {
    throw new XdsError(
      "missing-name",
      `a ${typeName} resource has an empty name; every xDS resource needs one`,
    );
  }
  return new CachedResource(typeUrl, name, message, schema, ttl);
}

/** The xDS name of a resource: `cluster_name` for ClusterLoadAssignment, `name` otherwise. */
export function resourceName(message: Message): string {
  const record = message as unknown as Record<string, unknown>;
  if (message.$typeName === "envoy.config.endpoint.v3.ClusterLoadAssignment")
    return String(record.clusterName ?? "");
  return typeof record.name === "string" ? record.name : "";
}

function isWithTtl(input: ResourceInput): input is WithTtl<Message> {
  return (
    (input as { $typeName?: unknown }).$typeName === undefined && "resource" in input && "ttlMs" in input
  );
}

/** Builds a ResourceSet from cached resources, rejecting duplicate names. */
export function resourceSet(
  typeUrl: string,
  resources: Iterable<CachedResource>,
  version?: string,
): ResourceSet {
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
  return { typeUrl, version: version ?? versionOfResources(map.values()), resources: map };
}

/**
 * An immutable set of xDS resources for one node (or group of nodes), with a version per type.
 * Every resource is encoded once, when the snapshot is created; servers reuse those bytes for
 * every client and every response.
 */
export class Snapshot {
  private static readonly empty = new Map<string, ResourceSet>();

  private constructor(private readonly sets: ReadonlyMap<string, ResourceSet>) {}

  /**
   * Creates a snapshot from protobuf-es messages.
   * @throws XdsError when a resource has the wrong type, no name, or a name used twice.
   */
  static create(input: SnapshotInput, options: SnapshotOptions = {}): Snapshot {
    const byType = new Map<string, readonly ResourceInput[]>();
    for (const [key, typeUrl] of inputKeys) {
      const list = input[key] as readonly ResourceInput[] | undefined;
      if (list) byType.set(typeUrl, list);
    }
    for (const [typeUrl, list] of Object.entries(input.resources ?? {})) {
      byType.set(typeUrl, [...(byType.get(typeUrl) ?? []), ...list]);
    }
    const sets = new Map<string, ResourceSet>();
    for (const [typeUrl, list] of byType) {
      const cached = list.map((r) => cacheResource(typeUrl, r, options.registry));
      sets.set(typeUrl, resourceSet(typeUrl, cached, input.versions?.[typeUrl]));
    }
    return new Snapshot(sets);
  }

  /** Type URLs this snapshot holds resources (possibly none) for. */
  typeUrls(): string[] {
    return [...this.sets.keys()];
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
    return this.sets.get(typeUrl)?.resources.get(name)?.message as T | undefined;
  }

  /** The ResourceSet of one type (empty when the snapshot has none of that type). */
  resourceSet(typeUrl: string): ResourceSet {
    let set = this.sets.get(typeUrl);
    if (!set) {
      set = Snapshot.empty.get(typeUrl) ?? resourceSet(typeUrl, []);
      (Snapshot.empty as Map<string, ResourceSet>).set(typeUrl, set);
    }
    return set;
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
