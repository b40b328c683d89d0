import { create } from "@bufbuild/protobuf";
import { AnySchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ClientResourceStatus,
  UpdateFailureStateSchema,
} from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type ClientConfig,
  type ClientConfig_GenericXdsConfig,
  ClientConfig_GenericXdsConfigSchema,
  ClientConfigSchema,
  ConfigStatus,
} from "@meshlet/api/envoy/service/status/v3/csds_pb";
import type { NodeMatcher } from "@meshlet/api/envoy/type/matcher/v3/node_pb";
import type { StringMatcher } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import { XdsError } from "../errors.js";
import type { TypeStateBase } from "./stream.js";

/** What CSDS reads of an open stream. */
export interface StatusSource {
  readonly node: Node | undefined;
  typeStates(): ReadonlyMap<string, Readonly<TypeStateBase>>;
}

/**
 * The client status of every node with an open stream, as the server knows it — per node, per
 * resource: whether it was sent, ACKed or NACKed (with the client's error) — in the shape of
 * CSDS (envoyproxy/envoy api/envoy/service/status/v3/csds.proto `ClientConfig.GenericXdsConfig`).
 * Streams of the same node id are merged into one ClientConfig. Read from the streams' live
 * state, so a node that left is gone with its streams.
 *
 * Per resource: `client_status` is what the client holds as far as its answers tell (ACKED, NACKED,
 * REQUESTED, DOES_NOT_EXIST); `config_status` compares that with the cache: SYNCED (it ACKed the
 * current version), STALE (the current version was sent and not answered yet), NOT_SENT (not sent,
 * e.g. held back in ADS mode), ERROR (its last response with the resource was NACKed).
 * `version_info` is the resource's own version (its content hash), `last_updated` the time of the
 * type's last ACK, `xds_config` the resource the client holds (unless `excludeContents`).
 */
export function clientConfigs(
  sources: Iterable<StatusSource>,
  options: { readonly matchers?: readonly NodeMatcher[]; readonly excludeContents?: boolean } = {},
): ClientConfig[] {
  const match = nodeMatch(options.matchers ?? []);
  const byNode = new Map<string, ClientConfig>();
  for (const source of sources) {
    const node = source.node;
    if (!node || !match(node)) continue;
    let config = byNode.get(node.id);
    if (!config) {
      config = create(ClientConfigSchema, { node });
      byNode.set(node.id, config);
    }
    for (const state of source.typeStates().values()) {
      config.genericXdsConfigs.push(...typeStatus(state, options.excludeContents ?? false));
    }
  }
  return [...byNode.values()];
}

function typeStatus(
  state: Readonly<TypeStateBase>,
  excludeContents: boolean,
): ClientConfig_GenericXdsConfig[] {
  const { acked, held } = state.holdings;
  const set = state.current;
  const names = new Set<string>([...state.names, ...acked.names(), ...held.names()]);
  if (state.wildcard && set) for (const name of set.resources.keys()) names.add(name);
  const nack = state.lastNack;
  const rejected = (name: string) =>
    nack !== undefined && (nack.touched === "all" || nack.touched.some((list) => list.includes(name)));
  const out: ClientConfig_GenericXdsConfig[] = [];
  for (const name of [...names].sort()) {
    const current = set?.resources.get(name);
    const ackedVersion = acked.version(name);
    const heldVersion = held.version(name);
    const holds = typeof ackedVersion === "string" ? ackedVersion : undefined;
    let clientStatus: ClientResourceStatus;
    let configStatus: ConfigStatus;
    if (rejected(name)) {
      clientStatus = ClientResourceStatus.NACKED;
      configStatus = ConfigStatus.ERROR;
    } else if (holds !== undefined) {
      clientStatus = ClientResourceStatus.ACKED;
      configStatus =
        current?.version === holds
          ? ConfigStatus.SYNCED
          : current && heldVersion === current.version
            ? ConfigStatus.STALE
            : ConfigStatus.NOT_SENT;
    } else if (!current && set !== undefined && !state.wildcard) {
      clientStatus = ClientResourceStatus.DOES_NOT_EXIST;
      configStatus = ConfigStatus.NOT_SENT;
    } else {
      clientStatus = ClientResourceStatus.REQUESTED;
      configStatus = current && heldVersion === current.version ? ConfigStatus.STALE : ConfigStatus.NOT_SENT;
    }
    const any = (r: { typeUrl: string; bytes: Uint8Array } | undefined) =>
      r && !excludeContents ? create(AnySchema, { typeUrl: r.typeUrl, value: r.bytes }) : undefined;
    // The config shown: what the client holds when it ACKed it; the latest (sent, or rejected:
    // "the persisted version in the management server") while it is STALE or in ERROR.
    const shown =
      configStatus === ConfigStatus.ERROR || configStatus === ConfigStatus.STALE
        ? current
        : holds !== undefined
          ? current?.version === holds
            ? current
            : acked.base?.resources.get(name)?.version === holds
              ? acked.base?.resources.get(name)
              : undefined
          : undefined;
    const xdsConfig = any(shown);
    const failed = clientStatus === ClientResourceStatus.NACKED ? any(current) : undefined;
    out.push(
      create(ClientConfig_GenericXdsConfigSchema, {
        typeUrl: state.typeUrl,
        name,
        // "The version_info in the last processed xDS discovery response" of the type.
        // A NACK keeps it (the client runs the version it last accepted).
        versionInfo:
          holds !== undefined || clientStatus === ClientResourceStatus.NACKED
            ? (state.ackedVersion ?? "")
            : "",
        configStatus,
        clientStatus,
        ...(xdsConfig ? { xdsConfig } : {}),
        ...(state.ackedVersion !== undefined && holds !== undefined
          ? { lastUpdated: timestampFromMs(state.ackedAt) }
          : {}),
        ...(clientStatus === ClientResourceStatus.NACKED && nack
          ? {
              errorState: create(UpdateFailureStateSchema, {
                details: nack.message,
                versionInfo: nack.rejectedVersion,
                lastUpdateAttempt: timestampFromMs(nack.at),
                ...(failed ? { failedConfiguration: failed } : {}),
              }),
            }
          : {}),
      }),
    );
  }
  return out;
}

/**
 * Which nodes a request's `node_matchers` select: all when there are none, else those matching
 * any of them. Supported: `node_id` with exact, prefix, suffix, contains (and ignore_case); other
 * matchers are refused with a clear error rather than silently matching nothing.
 */
function nodeMatch(matchers: readonly NodeMatcher[]): (node: Node) => boolean {
  if (matchers.length === 0) return () => true;
  const tests = matchers.map((m, i) => {
    if (m.nodeMetadatas.length > 0) {
      throw new XdsError(
        "invalid-argument",
        `node_matchers[${i}].node_metadatas is not supported; match on node_id (exact, prefix, suffix, contains)`,
      );
    }
    return m.nodeId ? stringMatch(m.nodeId, `node_matchers[${i}].node_id`) : () => true;
  });
  return (node) => tests.some((t) => t(node.id));
}

function stringMatch(m: StringMatcher, where: string): (value: string) => boolean {
  const fold = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  const p = m.matchPattern;
  switch (p.case) {
    case "exact":
      return (v) => fold(v) === fold(p.value);
    case "prefix":
      return (v) => fold(v).startsWith(fold(p.value));
    case "suffix":
      return (v) => fold(v).endsWith(fold(p.value));
    case "contains":
      return (v) => fold(v).includes(fold(p.value));
    default:
      throw new XdsError(
        "invalid-argument",
        `${where}: ${p.case ?? "an empty matcher"} is not supported; use exact, prefix, suffix or contains`,
      );
  }
}
