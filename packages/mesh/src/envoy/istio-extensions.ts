import {
  create,
  createFileRegistry,
  createRegistry,
  type DescMessage,
  type JsonObject,
  type Registry,
} from "@bufbuild/protobuf";
import {
  type Any,
  anyPack,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";
import { registry as apiRegistry } from "@meshlet/api";
import { TypedStructSchema } from "@meshlet/api/udpa/type/v1/typed_struct_pb";

// Istio's own Envoy extensions exist only in Istio's Envoy build (proxyv2, istio/proxy). Their
// config protos are not in @meshlet/api (which is generated from Envoy's and xDS's protos), so the
// two that Istio sends as typed messages are described here, field by field, from their published
// protos: `stats.PluginConfig` (istio/proxy source/extensions/filters/http/istio_stats/config.proto)
// and `istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig` (istio/api
// envoy/config/filter/http/alpn/v2alpha1/config.proto). The others Istio sends as
// `udpa.type.v1.TypedStruct` (istio/istio pilot/pkg/xds/filters/filters.go), and so does meshlet.

const {
  BOOL: TYPE_BOOL,
  STRING: TYPE_STRING,
  MESSAGE: TYPE_MESSAGE,
  ENUM: TYPE_ENUM,
} = FieldDescriptorProto_Type;
const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;

const statsFile = create(FileDescriptorProtoSchema, {
  name: "meshlet/istio/stats/config.proto",
  package: "stats",
  syntax: "proto3",
  dependency: ["google/protobuf/duration.proto"],
  messageType: [
    {
      name: "MetricConfig",
      field: [
        {
          name: "dimensions",
          number: 1,
          label: REPEATED,
          type: TYPE_MESSAGE,
          typeName: ".stats.MetricConfig.DimensionsEntry",
          jsonName: "dimensions",
        },
        { name: "name", number: 2, label: OPTIONAL, type: TYPE_STRING, jsonName: "name" },
        { name: "tags_to_remove", number: 3, label: REPEATED, type: TYPE_STRING, jsonName: "tagsToRemove" },
        { name: "match", number: 4, label: OPTIONAL, type: TYPE_STRING, jsonName: "match" },
        { name: "drop", number: 5, label: OPTIONAL, type: TYPE_BOOL, jsonName: "drop" },
      ],
      nestedType: [
        {
          name: "DimensionsEntry",
          field: [
            { name: "key", number: 1, label: OPTIONAL, type: TYPE_STRING, jsonName: "key" },
            { name: "value", number: 2, label: OPTIONAL, type: TYPE_STRING, jsonName: "value" },
          ],
          options: { mapEntry: true },
        },
      ],
    },
    {
      name: "PluginConfig",
      field: [
        {
          name: "disable_host_header_fallback",
          number: 6,
          label: OPTIONAL,
          type: TYPE_BOOL,
          jsonName: "disableHostHeaderFallback",
        },
        {
          name: "tcp_reporting_duration",
          number: 7,
          label: OPTIONAL,
          type: TYPE_MESSAGE,
          typeName: ".google.protobuf.Duration",
          jsonName: "tcpReportingDuration",
        },
        {
          name: "metrics",
          number: 8,
          label: REPEATED,
          type: TYPE_MESSAGE,
          typeName: ".stats.MetricConfig",
          jsonName: "metrics",
        },
        {
          name: "reporter",
          number: 10,
          label: OPTIONAL,
          type: TYPE_ENUM,
          typeName: ".stats.Reporter",
          jsonName: "reporter",
        },
      ],
    },
  ],
  enumType: [
    {
      name: "Reporter",
      value: [
        { name: "UNSPECIFIED", number: 0 },
        { name: "SERVER_GATEWAY", number: 1 },
      ],
    },
  ],
});

const alpnFile = create(FileDescriptorProtoSchema, {
  name: "meshlet/istio/alpn/config.proto",
  package: "istio.envoy.config.filter.http.alpn.v2alpha1",
  syntax: "proto3",
  messageType: [
    {
      name: "FilterConfig",
      field: [
        {
          name: "alpn_override",
          number: 1,
          label: REPEATED,
          type: TYPE_MESSAGE,
          typeName: ".istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig.AlpnOverride",
          jsonName: "alpnOverride",
        },
      ],
      nestedType: [
        {
          name: "AlpnOverride",
          field: [
            {
              name: "upstream_protocol",
              number: 1,
              label: OPTIONAL,
              type: TYPE_ENUM,
              typeName: ".istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig.Protocol",
              jsonName: "upstreamProtocol",
            },
            {
              name: "alpn_override",
              number: 2,
              label: REPEATED,
              type: TYPE_STRING,
              jsonName: "alpnOverride",
            },
          ],
        },
      ],
      enumType: [
        {
          name: "Protocol",
          value: [
            { name: "HTTP10", number: 0 },
            { name: "HTTP11", number: 1 },
            { name: "HTTP2", number: 2 },
          ],
        },
      ],
    },
  ],
});

const statsRegistry = createFileRegistry(statsFile, (name) =>
  name === "google/protobuf/duration.proto" ? file_google_protobuf_duration : undefined,
);
const alpnRegistry = createFileRegistry(alpnFile, () => undefined);

function message(registry: Registry, name: string): DescMessage {
  const desc = registry.getMessage(name);
  if (desc === undefined) throw new Error(`internal: ${name} is not described`);
  return desc;
}

/** `stats.PluginConfig`, the config of Istio's `istio.stats` HTTP and network filters. */
export const StatsPluginConfigSchema: DescMessage = message(statsRegistry, "stats.PluginConfig");
/** `istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig`, the config of Istio's `istio.alpn` filter. */
export const AlpnFilterConfigSchema: DescMessage = message(
  alpnRegistry,
  "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
);

/**
 * Every type meshlet's Envoy config can carry in a `google.protobuf.Any`: @meshlet/api's registry
 * plus Istio's proxy extensions above. Pass it to `toJson`/`anyUnpack` and to
 * `Snapshot.create({ registry })` so that the field rules check the payloads.
 */
export const envoyRegistry: Registry = createRegistry(apiRegistry, statsRegistry, alpnRegistry);

/** An `Any` of Istio's `stats.PluginConfig` with the fields given (JSON names), as istiod sends it. */
export function statsPluginConfig(fields: JsonObject = {}): Any {
  return anyPack(StatsPluginConfigSchema, create(StatsPluginConfigSchema, fields as never));
}

/** An `Any` of Istio's ALPN override filter config. */
export function alpnFilterConfig(
  overrides: ReadonlyArray<{
    readonly upstreamProtocol: 0 | 1 | 2;
    readonly alpnOverride: readonly string[];
  }>,
): Any {
  return anyPack(
    AlpnFilterConfigSchema,
    create(AlpnFilterConfigSchema, {
      alpnOverride: overrides.map((o) => ({ ...o, alpnOverride: [...o.alpnOverride] })),
    } as never),
  );
}

/**
 * A `udpa.type.v1.TypedStruct` naming an extension config by type URL with its fields as a Struct:
 * how Istio sends the configs of its proxy extensions whose protos it does not compile in
 * (istio/istio pilot/pkg/util/protoconv `TypedStructWithFields`). Envoy converts it to the typed
 * config through the extension's registered proto.
 */
export function typedStruct(typeUrl: string, fields: JsonObject): Any {
  return anyPack(TypedStructSchema, create(TypedStructSchema, { typeUrl, value: fields }));
}
