import { create, type JsonObject } from "@bufbuild/protobuf";
import { type Metadata, MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { parseApiVersion, type Resource, type ResourceKey } from "@meshlet/config";
import { ISTIO_METADATA_KEY } from "./well-known.js";

// Istio records which config object produced an Envoy object in its metadata
// (istio/istio pilot/pkg/networking/util/util.go `BuildConfigInfoMetadata`): `filter_metadata.istio.config`
// = `/apis/<group>/<version>/namespaces/<namespace>/<kind>/<name>`, the kind in kebab case
// (`virtual-service`, `destination-rule`). `explain()` reads it back to name the object that decided.

function kebab(kind: string): string {
  return kind.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** The `istio.config` path of a resource. */
export function configPath(resource: Resource): string {
  const { group, version } = parseApiVersion(resource.apiVersion);
  return `/apis/${group}/${version}/namespaces/${resource.metadata.namespace}/${kebab(resource.kind)}/${resource.metadata.name}`;
}

/** `filter_metadata.istio.config` naming a resource (anything with the resource as `resource`). */
export function configMetadata(from: { readonly resource: Resource }): Metadata {
  return create(MetadataSchema, {
    filterMetadata: { [ISTIO_METADATA_KEY]: { config: configPath(from.resource) } as JsonObject },
  });
}

const KINDS: Readonly<Record<string, string>> = {
  "virtual-service": "VirtualService",
  "destination-rule": "DestinationRule",
  gateway: "Gateway",
  sidecar: "Sidecar",
  "service-entry": "ServiceEntry",
  "authorization-policy": "AuthorizationPolicy",
  "peer-authentication": "PeerAuthentication",
  "request-authentication": "RequestAuthentication",
};

/** The resource an `istio.config` path names, or undefined when it is not one. */
export function parseConfigPath(path: string): ResourceKey | undefined {
  const m = /^\/apis\/[^/]*\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
  if (m === null) return undefined;
  const kind = KINDS[m[2] as string];
  if (kind === undefined) return undefined;
  return { kind, namespace: m[1] as string, name: m[3] as string };
}
