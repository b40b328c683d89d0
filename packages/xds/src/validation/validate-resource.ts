import { createRegistry, type DescMessage, type Message, type Registry } from "@bufbuild/protobuf";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import {
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import type { CachedResource } from "../cached-resource.js";
import { type FieldViolation, ResourceValidationError } from "../errors.js";
import { resourceSchemas } from "../type-url.js";
import { checkMessage } from "./field-rules.js";
import type { PayloadMemo } from "./payload-memo.js";

/**
 * The `typed_config` payloads checked without a registry: the resource types and the extensions
 * the `resources` builders and Istio-style configs use most (HTTP connection manager, router, TLS
 * contexts). Pass `@meshlet/api`'s `registry` to check every extension's payload.
 */
const builtIn: Registry = createRegistry(
  ...resourceSchemas.values(),
  HttpConnectionManagerSchema,
  RouterSchema,
  UpstreamTlsContextSchema,
  DownstreamTlsContextSchema,
);

const layered = new WeakMap<Registry, Registry>();

/**
 * The caller's registry, falling back to the built-in one for types it does not hold: what
 * `Any` payloads are resolved with (field rules, canonical bytes).
 */
export function payloadRegistry(registry: Registry | undefined): Registry {
  if (!registry) return builtIn;
  let r = layered.get(registry);
  if (!r) {
    r = {
      ...registry,
      getMessage: (name: string) => registry.getMessage(name) ?? builtIn.getMessage(name),
    } as Registry;
    layered.set(registry, r);
  }
  return r;
}

/**
 * Checks a resource against Envoy's field rules (protoc-gen-validate annotations in its protos,
 * read from `@meshlet/api`'s descriptors), including the `google.protobuf.Any` payloads the
 * registry knows. `memo` (kept by the pool, per registry) skips payloads already found valid.
 * @throws ResourceValidationError naming the resource, each field path and rule.
 */
export function validateResource(
  resource: CachedResource,
  registry: Registry | undefined,
  memo?: PayloadMemo,
): void {
  const r = payloadRegistry(registry);
  const typeName = resource.typeUrl.slice(resource.typeUrl.lastIndexOf("/") + 1);
  const schema = r.getMessage(typeName);
  if (!schema) return;
  const violations = checkMessage(schema, resource.message, {
    registry: r,
    now: Date.now,
    limit: 20,
    ...(memo ? { memo } : {}),
  });
  if (violations.length > 0) throw new ResourceValidationError(resource.typeUrl, resource.name, violations);
}

/**
 * The field rules a message breaks (empty when it keeps them all): the check `Snapshot.create`
 * and `LinearCache.update` run, for any message of `@meshlet/api` — to validate config where it is
 * made, before it becomes a resource. `registry` resolves `google.protobuf.Any` payloads.
 */
export function fieldRuleViolations<T extends Message>(
  schema: DescMessage,
  message: T,
  options: { registry?: Registry; now?: () => number; limit?: number } = {},
): FieldViolation[] {
  return checkMessage(schema, message, {
    registry: payloadRegistry(options.registry),
    now: options.now ?? Date.now,
    limit: options.limit ?? 100,
  });
}
