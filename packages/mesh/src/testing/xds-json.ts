import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { registry } from "@meshlet/api";

// Test support (not part of the public API): xDS messages as the proto3 JSON Envoy's and Istio's
// docs print (proto field names, `@type` in Any), so expectations read like upstream's goldens.

/** A message as proto3 JSON with proto (snake_case) field names. */
export function xdsJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): unknown {
  return toJson(schema, message, { registry, useProtoFieldName: true });
}
