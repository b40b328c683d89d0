import { create, type JsonObject, type Registry, toJson } from "@bufbuild/protobuf";
import { type Any, AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import {
  type ConfigDump,
  ConfigDumpSchema,
  SecretsConfigDumpSchema,
} from "@meshlet/api/envoy/admin/v3/config_dump_pb";
import {
  ClustersConfigDumpSchema,
  EndpointsConfigDumpSchema,
  ListenersConfigDumpSchema,
  RoutesConfigDumpSchema,
} from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import type { ClientConfig_GenericXdsConfig } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { ConfigType } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { TypeUrl } from "@meshlet/xds";
import { redact } from "./redact.js";

/** Per config type, the resource names wanted (a type absent: none of it; an empty set: all of it). */
export type ConfigDumpSelection = ReadonlyMap<ConfigType, ReadonlySet<string>>;

const TYPE_OF_URL: Readonly<Record<string, ConfigType>> = {
  [TypeUrl.Listener]: ConfigType.LISTENERS,
  [TypeUrl.RouteConfiguration]: ConfigType.ROUTES,
  [TypeUrl.Cluster]: ConfigType.CLUSTERS,
  [TypeUrl.ClusterLoadAssignment]: ConfigType.ENDPOINTS,
  [TypeUrl.Secret]: ConfigType.SECRETS,
};

/**
 * Builds Envoy's `envoy.admin.v3.ConfigDump` for one node from what the xDS server knows of it
 * (CSDS `GenericXdsConfig`s: per resource what the client holds, its version, when it was ACKed,
 * and the client's error when it rejected it). Each dump is Envoy's own message for the type
 * (envoyproxy/envoy api/envoy/admin/v3/config_dump_shared.proto, config_dump.proto), in the order
 * Envoy's /config_dump prints them (clusters, listeners, routes, secrets, then endpoints as with
 * `?include_eds`). Every resource, and every resource a rejected update carried, is redacted
 * ({@link redact}) before it is returned.
 */
export function buildConfigDump(
  configs: readonly ClientConfig_GenericXdsConfig[],
  selection: ConfigDumpSelection,
  registry: Registry,
): ConfigDump {
  const wanted = (c: ClientConfig_GenericXdsConfig) => {
    const type = TYPE_OF_URL[c.typeUrl];
    if (type === undefined) return false;
    const names = selection.get(type);
    return names !== undefined && (names.size === 0 || names.has(c.name));
  };
  const byType = new Map<string, ClientConfig_GenericXdsConfig[]>();
  for (const c of configs) {
    if (!wanted(c)) continue;
    const safe = redacted(c, registry);
    const list = byType.get(c.typeUrl) ?? [];
    list.push(safe);
    byType.set(c.typeUrl, list);
  }
  const of = (url: string) => (byType.get(url) ?? []).sort((a, b) => a.name.localeCompare(b.name));
  const version = (url: string) => latestVersion(byType.get(url) ?? []);
  const dumps: Any[] = [];
  if (selection.has(ConfigType.CLUSTERS)) {
    dumps.push(
      anyPack(
        ClustersConfigDumpSchema,
        create(ClustersConfigDumpSchema, {
          versionInfo: version(TypeUrl.Cluster),
          dynamicActiveClusters: of(TypeUrl.Cluster).map((c) => ({
            versionInfo: c.versionInfo,
            ...(c.xdsConfig ? { cluster: c.xdsConfig } : {}),
            ...(c.lastUpdated ? { lastUpdated: c.lastUpdated } : {}),
            ...(c.errorState ? { errorState: c.errorState } : {}),
            clientStatus: c.clientStatus,
          })),
        }),
      ),
    );
  }
  if (selection.has(ConfigType.LISTENERS)) {
    dumps.push(
      anyPack(
        ListenersConfigDumpSchema,
        create(ListenersConfigDumpSchema, {
          versionInfo: version(TypeUrl.Listener),
          dynamicListeners: of(TypeUrl.Listener).map((c) => ({
            name: c.name,
            ...(c.xdsConfig
              ? {
                  activeState: {
                    versionInfo: c.versionInfo,
                    listener: c.xdsConfig,
                    ...(c.lastUpdated ? { lastUpdated: c.lastUpdated } : {}),
                  },
                }
              : {}),
            ...(c.errorState ? { errorState: c.errorState } : {}),
            clientStatus: c.clientStatus,
          })),
        }),
      ),
    );
  }
  if (selection.has(ConfigType.ROUTES)) {
    dumps.push(
      anyPack(
        RoutesConfigDumpSchema,
        create(RoutesConfigDumpSchema, {
          dynamicRouteConfigs: of(TypeUrl.RouteConfiguration).map((c) => ({
            versionInfo: c.versionInfo,
            ...(c.xdsConfig ? { routeConfig: c.xdsConfig } : {}),
            ...(c.lastUpdated ? { lastUpdated: c.lastUpdated } : {}),
            ...(c.errorState ? { errorState: c.errorState } : {}),
            clientStatus: c.clientStatus,
          })),
        }),
      ),
    );
  }
  if (selection.has(ConfigType.SECRETS)) {
    dumps.push(
      anyPack(
        SecretsConfigDumpSchema,
        create(SecretsConfigDumpSchema, {
          dynamicActiveSecrets: of(TypeUrl.Secret).map((c) => ({
            name: c.name,
            versionInfo: c.versionInfo,
            ...(c.xdsConfig ? { secret: c.xdsConfig } : {}),
            ...(c.lastUpdated ? { lastUpdated: c.lastUpdated } : {}),
            ...(c.errorState ? { errorState: c.errorState } : {}),
            clientStatus: c.clientStatus,
          })),
        }),
      ),
    );
  }
  if (selection.has(ConfigType.ENDPOINTS)) {
    dumps.push(
      anyPack(
        EndpointsConfigDumpSchema,
        create(EndpointsConfigDumpSchema, {
          dynamicEndpointConfigs: of(TypeUrl.ClusterLoadAssignment).map((c) => ({
            versionInfo: c.versionInfo,
            ...(c.xdsConfig ? { endpointConfig: c.xdsConfig } : {}),
            ...(c.lastUpdated ? { lastUpdated: c.lastUpdated } : {}),
            ...(c.errorState ? { errorState: c.errorState } : {}),
            clientStatus: c.clientStatus,
          })),
        }),
      ),
    );
  }
  return create(ConfigDumpSchema, { configs: dumps });
}

/** The dump as Envoy's /config_dump prints it: proto3 JSON with proto field names. */
export function configDumpJson(dump: ConfigDump, registry: Registry): JsonObject {
  return toJson(ConfigDumpSchema, dump, { registry, useProtoFieldName: true }) as JsonObject;
}

/** A copy of one CSDS entry with its resource and failed configuration redacted. */
function redacted(c: ClientConfig_GenericXdsConfig, registry: Registry): ClientConfig_GenericXdsConfig {
  const copy = { ...c };
  if (c.xdsConfig) copy.xdsConfig = redactedAny(c.xdsConfig, registry);
  if (c.errorState) {
    copy.errorState = { ...c.errorState };
    if (c.errorState.failedConfiguration)
      copy.errorState.failedConfiguration = redactedAny(c.errorState.failedConfiguration, registry);
  }
  return copy;
}

function redactedAny(any: Any, registry: Registry): Any {
  // The Any holds shared encoded bytes of the server's resource: copy before rewriting it.
  const copy = { ...any, value: any.value };
  redact(AnySchema, copy, registry);
  return copy;
}

/** The type's version the client runs: the `version_info` its resources were last ACKed with. */
function latestVersion(list: readonly ClientConfig_GenericXdsConfig[]): string {
  let best = "";
  let at = -1n;
  for (const c of list) {
    const t = c.lastUpdated ? c.lastUpdated.seconds * 1_000_000_000n + BigInt(c.lastUpdated.nanos) : -1n;
    if (c.versionInfo !== "" && t >= at) {
      best = c.versionInfo;
      at = t;
    }
  }
  return best;
}
