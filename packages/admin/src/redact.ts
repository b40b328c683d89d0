import {
  type DescField,
  type DescMessage,
  fromJson,
  getOption,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { type Any, anyPack, anyUnpack, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { sensitive } from "@meshlet/api/udpa/annotations/sensitive_pb";

/** What a redacted string or bytes field reads (Envoy's word, source/common/protobuf/utility.cc). */
export const REDACTED = "[redacted]";

const REDACTED_BYTES = new TextEncoder().encode(REDACTED);
const TYPED_STRUCTS = new Set(["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"]);

/**
 * Redacts a message in place as Envoy's admin interface does before it prints a config dump
 * (envoyproxy/envoy source/common/protobuf/utility.cc `MessageUtil::redact`): every field
 * annotated `udpa.annotations.sensitive` — a TLS private key, a PKCS#12 bundle, a key password, a
 * generic secret, a private key provider's config, HMAC secrets — and everything below it has its
 * strings and bytes replaced with "[redacted]" and its other values cleared; `Any` and
 * `TypedStruct` payloads are unpacked (with `registry`), redacted and packed again.
 *
 * One difference, to fail closed: an `Any` whose type the registry does not know is replaced by a
 * `google.protobuf.StringValue` saying so (Envoy leaves it as is), since nobody could prove it
 * holds no key.
 */
export function redact<Desc extends DescMessage>(
  schema: Desc,
  message: Parameters<typeof reflect<Desc>>[1],
  registry: Registry,
): void {
  redactMessage(reflect(schema, message), false, registry);
}

function redactMessage(r: ReflectMessage, ancestorSensitive: boolean, registry: Registry): void {
  if (r.desc.typeName === "google.protobuf.Any") {
    redactAny(r.message as Any, ancestorSensitive, registry);
    return;
  }
  if (TYPED_STRUCTS.has(r.desc.typeName) && redactTypedStruct(r, ancestorSensitive, registry)) return;
  for (const field of r.fields) {
    if (!r.isSet(field)) continue;
    const isSensitive = ancestorSensitive || getOption(field, sensitive);
    redactField(r, field, isSensitive, registry);
  }
}

function redactField(r: ReflectMessage, field: DescField, isSensitive: boolean, registry: Registry): void {
  switch (field.fieldKind) {
    case "message": {
      const sub = r.get(field);
      redactMessage(sub, isSensitive, registry);
      r.set(field, sub);
      return;
    }
    case "list": {
      const list = r.get(field);
      if (field.listKind === "message") {
        for (const [i, item] of list.entries()) {
          if (!isReflectMessage(item)) continue;
          redactMessage(item, isSensitive, registry);
          list.set(i, item);
        }
      } else if (isSensitive) {
        if (field.scalar === 9 /* string */ || field.scalar === 12 /* bytes */) {
          const value = field.scalar === 9 ? REDACTED : REDACTED_BYTES;
          for (const i of list.keys()) list.set(i, value);
        } else list.clear();
      }
      return;
    }
    case "map": {
      const map = r.get(field);
      // Envoy redacts values only: redacting keys too would collapse the map into one "[redacted]" key.
      for (const [key, value] of map.entries()) {
        if (isReflectMessage(value)) {
          redactMessage(value, isSensitive, registry);
          map.set(key, value);
        } else if (isSensitive) {
          if (field.mapKind === "scalar" && (field.scalar === 9 || field.scalar === 12)) {
            map.set(key, field.scalar === 9 ? REDACTED : REDACTED_BYTES);
          } else map.delete(key);
        }
      }
      return;
    }
    case "scalar":
      if (!isSensitive) return;
      if (field.scalar === 9) r.set(field, REDACTED);
      else if (field.scalar === 12) r.set(field, REDACTED_BYTES);
      else r.clear(field);
      return;
    case "enum":
      if (isSensitive) r.clear(field);
      return;
  }
}

function redactAny(any: Any, ancestorSensitive: boolean, registry: Registry): void {
  if (any.typeUrl === "") return;
  let inner: ReturnType<typeof anyUnpack>;
  try {
    inner = anyUnpack(any, registry);
  } catch {
    inner = undefined;
  }
  const typeName = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
  const schema = registry.getMessage(typeName);
  if (inner === undefined || schema === undefined) {
    withhold(any, `${REDACTED}: contents of ${typeName || "an unnamed type"} withheld (type not known here)`);
    return;
  }
  redactMessage(reflect(schema, inner), ancestorSensitive, registry);
  const packed = anyPack(schema, inner);
  any.value = packed.value;
}

/** TypedStruct: `type_url` names the message, `value` is its JSON; redact through the typed form. */
function redactTypedStruct(r: ReflectMessage, ancestorSensitive: boolean, registry: Registry): boolean {
  const msg = r.message as unknown as { typeUrl: string; value?: Record<string, unknown> };
  const typeName = msg.typeUrl.slice(msg.typeUrl.lastIndexOf("/") + 1);
  const schema = registry.getMessage(typeName);
  if (schema === undefined || msg.value === undefined) {
    if (ancestorSensitive) msg.value = {};
    return ancestorSensitive;
  }
  try {
    const typed = fromJson(schema, msg.value as never, { registry, ignoreUnknownFields: true });
    redactMessage(reflect(schema, typed), ancestorSensitive, registry);
    msg.value = toJson(schema, typed, { registry }) as Record<string, unknown>;
    return true;
  } catch {
    // Not valid JSON of its type: walk it as a plain Struct (sensitive ancestors still apply).
    return false;
  }
}

function withhold(any: Any, note: string): void {
  const replacement = anyPack(StringValueSchema, { $typeName: "google.protobuf.StringValue", value: note });
  any.typeUrl = replacement.typeUrl;
  any.value = replacement.value;
}
