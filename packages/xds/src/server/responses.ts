import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { CachedResource } from "../cached-resource.js";
import { frame, stringField } from "../cached-resource.js";

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
): Buffer {
  const parts: Uint8Array[] = [stringField(1, version)];
  // A heartbeat refreshes TTL'd resources only; others keep their bodies.
  for (const r of resources) parts.push(r.sotwField(heartbeat && r.ttlMs !== undefined));
  parts.push(stringField(4, typeUrl), stringField(5, nonce), controlPlane);
  return Buffer.concat(parts);
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
  const parts: Uint8Array[] = [stringField(1, systemVersion)];
  for (const r of resources) parts.push(r.deltaField(heartbeat && r.ttlMs !== undefined));
  parts.push(stringField(4, typeUrl), stringField(5, nonce));
  for (const name of removed)
    parts.push(new BinaryWriter().tag(6, WireType.LengthDelimited).string(name).finish());
  parts.push(controlPlane);
  return Buffer.concat(parts);
}
