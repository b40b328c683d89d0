import { isIP } from "node:net";
import {
  type DescField,
  type DescMessage,
  fromBinary,
  getOption,
  hasOption,
  type Message,
  type Registry,
} from "@bufbuild/protobuf";
import {
  type AnyRules,
  type BytesRules,
  type DurationRules,
  disabled as disabledOption,
  type EnumRules,
  type FieldRules,
  KnownRegex,
  type MapRules,
  required as oneofRequiredOption,
  type RepeatedRules,
  rules as rulesOption,
  type StringRules,
  type TimestampRules,
} from "@meshlet/api/validate/validate_pb";
import type { FieldViolation } from "../errors.js";
import type { PayloadMemo } from "./payload-memo.js";
import { compileRe2 } from "./re2.js";
import { isAddress, isEmail, isHostname, isUri, isUriRef, isUuid, knownRegex } from "./well-known.js";

/**
 * Evaluates protoc-gen-validate rules (`validate.rules`, `validate.required` on oneofs,
 * `validate.disabled` on messages) from a message's descriptor at run time: no code generated per
 * message. Each message type is compiled once into a plan (which fields carry rules, and which
 * nested messages can hold any), cached per descriptor; a resource is then walked once, skipping
 * subtrees whose types carry no rule. `google.protobuf.Any` payloads whose type the registry knows
 * (`typed_config`!) are decoded and checked too, as Envoy does when it loads the extension.
 */
export interface ValidateContext {
  readonly registry: Registry | undefined;
  /** Epoch milliseconds, for timestamp `lt_now`/`gt_now`/`within`. */
  readonly now: () => number;
  /** Stop collecting after this many violations. */
  readonly limit: number;
  /** `Any` payloads already found valid: checked once, however many resources embed them. */
  readonly memo?: PayloadMemo;
}

/**
 * Rules against "now" evaluated so far (timestamp lt_now, gt_now, within): a payload whose check
 * evaluated one is not memoised, its validity changes with time. (Checks run synchronously: the
 * difference across one payload's check counts that payload's.)
 */
let nowChecks = 0;

/** Checks a message against the rules of its type; returns the violations (empty when valid). */
export function checkMessage(schema: DescMessage, message: Message, ctx: ValidateContext): FieldViolation[] {
  const out: FieldViolation[] = [];
  visitMessage(schema, message, "", ctx, out);
  return out;
}

interface Plan {
  readonly disabled: boolean;
  readonly fields: readonly { field: DescField; rules: FieldRules | undefined }[];
  readonly requiredOneofs: readonly { localName: string; name: string }[];
}

const plans = new WeakMap<DescMessage, Plan>();
const reachable = new WeakMap<DescMessage, boolean>();

function planOf(schema: DescMessage): Plan {
  let plan = plans.get(schema);
  if (plan) return plan;
  const disabled = hasOption(schema, disabledOption) && getOption(schema, disabledOption);
  const fields = schema.fields
    .map((field) => ({
      field,
      rules: hasOption(field, rulesOption) ? getOption(field, rulesOption) : undefined,
    }))
    .filter(({ field, rules }) => rules !== undefined || mayNest(field));
  const requiredOneofs = schema.oneofs
    .filter((o) => hasOption(o, oneofRequiredOption) && getOption(o, oneofRequiredOption))
    .map((o) => ({ localName: o.localName, name: o.name }));
  plan = { disabled, fields, requiredOneofs };
  plans.set(schema, plan);
  return plan;
}

/** Whether a field's values can hold something to check (a message type with rules, or an Any). */
function mayNest(field: DescField): boolean {
  const message =
    field.fieldKind === "message"
      ? field.message
      : field.fieldKind === "list" && field.listKind === "message"
        ? field.message
        : field.fieldKind === "map" && field.mapKind === "message"
          ? field.message
          : undefined;
  return message !== undefined && anyRules(message);
}

/** Whether a type (or anything it can hold) carries a rule; cached per descriptor. */
function anyRules(schema: DescMessage): boolean {
  return reachable.get(schema) ?? hasRules(schema, new Set());
}

function hasRules(schema: DescMessage, visiting: Set<DescMessage>): boolean {
  const known = reachable.get(schema);
  if (known !== undefined) return known;
  if (schema.typeName === "google.protobuf.Any") return true;
  if (visiting.has(schema)) return false; // a cycle adds nothing the other paths do not find
  visiting.add(schema);
  let found = schema.oneofs.some((o) => hasOption(o, oneofRequiredOption));
  for (const field of schema.fields) {
    if (found) break;
    if (hasOption(field, rulesOption)) found = true;
    else if (field.message) found = hasRules(field.message, visiting);
  }
  visiting.delete(schema);
  if (found || visiting.size === 0) reachable.set(schema, found);
  return found;
}

function visitMessage(
  schema: DescMessage,
  message: Message,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  if (schema.typeName === "google.protobuf.Any") {
    visitAny(message as unknown as { typeUrl: string; value: Uint8Array }, path, ctx, out);
    return;
  }
  const plan = planOf(schema);
  if (plan.disabled) return;
  const record = message as unknown as Record<string, unknown>;
  for (const o of plan.requiredOneofs) {
    const set = (record[o.localName] as { case?: string } | undefined)?.case;
    if (set === undefined)
      out.push({
        path: join(path, o.name),
        rule: "(validate.required) oneof",
        message: `one of ${o.name} is required`,
      });
  }
  for (const { field, rules } of plan.fields) {
    if (out.length >= ctx.limit) return;
    let value: unknown;
    let present: boolean;
    if (field.oneof) {
      const container = record[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
      present = container?.case === field.localName;
      value = present ? container?.value : undefined;
    } else {
      value = record[field.localName];
      present = isPresent(field, value);
    }
    checkField(field, rules, value, present, join(path, field.name), ctx, out);
  }
}

/** An Any's payload is checked when the registry knows its type (e.g. typed_config). */
function visitAny(
  any: { typeUrl: string; value: Uint8Array },
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  if (!ctx.registry || any.typeUrl === "") return;
  const typeName = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
  const schema = ctx.registry.getMessage(typeName);
  if (!schema || !anyRules(schema)) return;
  const memo = ctx.memo;
  const key = memo?.key(any.value);
  if (key !== undefined && memo?.has(schema.typeName, key)) return;
  let payload: Message;
  try {
    payload = fromBinary(schema, any.value);
  } catch (err) {
    out.push({
      path,
      rule: "any (payload)",
      message: `the ${typeName} payload does not decode: ${err instanceof Error ? err.message : String(err)}`,
    });
    return;
  }
  const violations = out.length;
  const nowChecksBefore = nowChecks;
  visitMessage(schema, payload, `${path}<${typeName}>`, ctx, out);
  if (key !== undefined && out.length === violations && nowChecks === nowChecksBefore)
    memo?.add(schema.typeName, key);
}

function isPresent(field: DescField, value: unknown): boolean {
  switch (field.fieldKind) {
    case "message":
      return value !== undefined;
    case "list":
      return (value as unknown[]).length > 0;
    case "map":
      for (const _ in value as object) return true;
      return false;
    default:
      // Explicit presence (proto3 `optional`): an unset field is undefined.
      return value !== undefined;
  }
}

function checkField(
  field: DescField,
  rules: FieldRules | undefined,
  value: unknown,
  present: boolean,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  // A oneof member's rules apply only when that member is the one set (protoc-gen-validate).
  if (field.oneof !== undefined && !present) return;
  const messageRules = rules?.message;
  const kind = rules?.type.case;
  switch (field.fieldKind) {
    case "list": {
      const list = value as readonly unknown[];
      if (kind === "repeated") checkRepeated(field, rules!.type.value as RepeatedRules, list, path, ctx, out);
      else if (field.listKind === "message" && anyRules(field.message!))
        for (let i = 0; i < list.length; i++) visitNested(field.message!, list[i], `${path}[${i}]`, ctx, out);
      return;
    }
    case "map": {
      const map = value as Record<string, unknown>;
      if (kind === "map") checkMap(field, rules!.type.value as MapRules, map, path, ctx, out);
      else if (field.mapKind === "message")
        for (const [k, v] of Object.entries(map))
          visitNested(field.message!, v, `${path}[${JSON.stringify(k)}]`, ctx, out);
      return;
    }
    case "message": {
      if (!present) {
        if (messageRules?.required || requiredByType(rules))
          out.push({ path, rule: ruleName(rules, "required"), message: "is required" });
        return;
      }
      if (isWrapper(field.message)) {
        // protobuf-es unboxes wrapper fields; the scalar rules apply to the wrapped value.
        const inner =
          typeof value === "object" && value !== null && "value" in value
            ? (value as { value: unknown }).value
            : value;
        if (rules) checkScalar(rules, inner, path, field, out);
        return;
      }
      if (kind === "duration")
        checkDuration(rules!.type.value as DurationRules, value as Duration, path, out);
      else if (kind === "timestamp")
        checkTimestamp(rules!.type.value as TimestampRules, value as Duration, path, ctx, out);
      else if (kind === "any")
        checkAnyRules(rules!.type.value as AnyRules, value as { typeUrl: string }, path, out);
      if (!messageRules?.skip) visitNested(field.message, value, path, ctx, out);
      return;
    }
    default: {
      if (!rules || kind === undefined) return;
      // proto3 `optional` and oneof members are checked only when set; plain fields always.
      if (!present && field.presence === 1) return;
      checkScalar(rules, value, path, field, out);
    }
  }
}

function visitNested(
  schema: DescMessage,
  value: unknown,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  if (typeof value !== "object" || value === null) return;
  if (!anyRules(schema)) return;
  visitMessage(schema, value as Message, path, ctx, out);
}

function requiredByType(rules: FieldRules | undefined): boolean {
  const c = rules?.type.case;
  if (c === "duration" || c === "timestamp" || c === "any")
    return (rules!.type.value as { required: boolean }).required;
  return false;
}

function ruleName(rules: FieldRules | undefined, rule: string): string {
  const c = rules?.type.case;
  return c === "duration" || c === "timestamp" || c === "any" ? `${c}.${rule}` : `message.${rule}`;
}

const wrappers = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);
function isWrapper(schema: DescMessage): boolean {
  return wrappers.has(schema.typeName);
}

// ---- scalars

type Num = number | bigint;

function checkScalar(
  rules: FieldRules,
  value: unknown,
  path: string,
  field: DescField,
  out: FieldViolation[],
): void {
  const { case: kind, value: r } = rules.type;
  if (kind === undefined) return;
  const push = (rule: string, message: string) => out.push({ path, rule: `${kind}.${rule}`, message });
  switch (kind) {
    case "string":
      checkString(r as StringRules, value as string, push);
      return;
    case "bytes":
      checkBytes(r as BytesRules, value as Uint8Array, push);
      return;
    case "bool":
      if (has(r, "const") && value !== r.const) push(`const = ${r.const}`, `must be ${r.const}`);
      return;
    case "enum":
      checkEnum(r as EnumRules, value as number, field, push);
      return;
    case "repeated":
    case "map":
    case "any":
    case "duration":
    case "timestamp":
      return; // not scalar rules
    default:
      checkNumber(r as NumberRules, value as Num, push);
  }
}

interface NumberRules {
  const?: Num;
  lt?: Num;
  lte?: Num;
  gt?: Num;
  gte?: Num;
  in: readonly Num[];
  notIn: readonly Num[];
  ignoreEmpty?: boolean;
}

function checkNumber(r: NumberRules, v: Num, push: (rule: string, message: string) => void): void {
  if (r.ignoreEmpty && (v === 0 || v === 0n)) return;
  if (has(r, "const") && v !== r.const) push(`const = ${r.const}`, `must equal ${r.const} (got ${v})`);
  range(
    {
      ...(has(r, "lt") ? { lt: r.lt } : {}),
      ...(has(r, "lte") ? { lte: r.lte } : {}),
      ...(has(r, "gt") ? { gt: r.gt } : {}),
      ...(has(r, "gte") ? { gte: r.gte } : {}),
    },
    v,
    String,
    push,
  );
  if (r.in.length > 0 && !r.in.includes(v))
    push(`in = [${r.in.join(", ")}]`, `must be one of ${r.in.join(", ")} (got ${v})`);
  if (r.notIn.includes(v)) push(`not_in = [${r.notIn.join(", ")}]`, `must not be ${v}`);
}

/**
 * protoc-gen-validate's range rules: with both a lower (gt/gte) and an upper (lt/lte) bound, the
 * value must lie between them, or, when the upper bound is below the lower one, outside them.
 */
function range<T extends Num>(
  r: { lt?: T; lte?: T; gt?: T; gte?: T },
  v: T,
  show: (x: T) => string,
  push: (rule: string, message: string) => void,
): void {
  const upper =
    r.lt !== undefined
      ? { b: r.lt, strict: true }
      : r.lte !== undefined
        ? { b: r.lte, strict: false }
        : undefined;
  const lower =
    r.gt !== undefined
      ? { b: r.gt, strict: true }
      : r.gte !== undefined
        ? { b: r.gte, strict: false }
        : undefined;
  const below = (u: { b: T; strict: boolean }) => (u.strict ? v < u.b : v <= u.b);
  const above = (l: { b: T; strict: boolean }) => (l.strict ? v > l.b : v >= l.b);
  const name = (b: { strict: boolean }, lo: boolean) =>
    lo ? (b.strict ? "gt" : "gte") : b.strict ? "lt" : "lte";
  if (upper && lower) {
    const rule = () => `${name(lower, true)} = ${show(lower.b)}, ${name(upper, false)} = ${show(upper.b)}`;
    if (upper.b > lower.b) {
      if (!(above(lower) && below(upper)))
        push(rule(), `must be in range ${show(lower.b)}…${show(upper.b)} (got ${show(v)})`);
    } else if (!(above(lower) || below(upper))) {
      push(rule(), `must be outside range ${show(upper.b)}…${show(lower.b)} (got ${show(v)})`);
    }
    return;
  }
  if (upper && !below(upper))
    push(
      `${name(upper, false)} = ${show(upper.b)}`,
      `must be ${upper.strict ? "<" : "≤"} ${show(upper.b)} (got ${show(v)})`,
    );
  if (lower && !above(lower))
    push(
      `${name(lower, true)} = ${show(lower.b)}`,
      `must be ${lower.strict ? ">" : "≥"} ${show(lower.b)} (got ${show(v)})`,
    );
}

const patterns = new Map<string, RegExp | undefined>();
/** Patterns no RegExp form of could be compiled: those rules are not checked (see compileRe2). */
export const untranslatablePatterns = new Set<string>();

function regex(pattern: string): RegExp | undefined {
  if (!patterns.has(pattern)) {
    const re = compileRe2(pattern);
    if (!re) untranslatablePatterns.add(pattern);
    patterns.set(pattern, re);
  }
  return patterns.get(pattern);
}

const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}…` : s);

function checkString(r: StringRules, s: string, push: (rule: string, message: string) => void): void {
  if (r.ignoreEmpty && s === "") return;
  const runes = () => [...s].length;
  const bytes = () => Buffer.byteLength(s, "utf8");
  if (has(r, "const") && s !== r.const) push(`const = ${quote(r.const)}`, `must be ${quote(r.const)}`);
  if (has(r, "len") && BigInt(runes()) !== r.len)
    push(`len = ${r.len}`, `must be ${r.len} characters long (got ${runes()})`);
  if (has(r, "minLen") && BigInt(runes()) < r.minLen)
    push(
      `min_len = ${r.minLen}`,
      s === "" ? "must not be empty" : `must be at least ${r.minLen} characters long (got ${runes()})`,
    );
  if (has(r, "maxLen") && BigInt(runes()) > r.maxLen)
    push(`max_len = ${r.maxLen}`, `must be at most ${r.maxLen} characters long (got ${runes()})`);
  if (has(r, "lenBytes") && BigInt(bytes()) !== r.lenBytes)
    push(`len_bytes = ${r.lenBytes}`, `must be ${r.lenBytes} bytes long (got ${bytes()})`);
  if (has(r, "minBytes") && BigInt(bytes()) < r.minBytes)
    push(`min_bytes = ${r.minBytes}`, `must be at least ${r.minBytes} bytes long (got ${bytes()})`);
  if (has(r, "maxBytes") && BigInt(bytes()) > r.maxBytes)
    push(`max_bytes = ${r.maxBytes}`, `must be at most ${r.maxBytes} bytes long (got ${bytes()})`);
  if (has(r, "pattern")) {
    const re = regex(r.pattern);
    if (re && !re.test(s))
      push(`pattern = ${quote(r.pattern)}`, `must match ${quote(r.pattern)} (got ${quote(s)})`);
  }
  if (has(r, "prefix") && !s.startsWith(r.prefix))
    push(`prefix = ${quote(r.prefix)}`, `must start with ${quote(r.prefix)}`);
  if (has(r, "suffix") && !s.endsWith(r.suffix))
    push(`suffix = ${quote(r.suffix)}`, `must end with ${quote(r.suffix)}`);
  if (has(r, "contains") && !s.includes(r.contains))
    push(`contains = ${quote(r.contains)}`, `must contain ${quote(r.contains)}`);
  if (has(r, "notContains") && s.includes(r.notContains))
    push(`not_contains = ${quote(r.notContains)}`, `must not contain ${quote(r.notContains)}`);
  if (r.in.length > 0 && !r.in.includes(s))
    push(
      `in = [${r.in.map(quote).join(", ")}]`,
      `must be one of ${r.in.map(quote).join(", ")} (got ${quote(s)})`,
    );
  if (r.notIn.includes(s)) push(`not_in = [${r.notIn.map(quote).join(", ")}]`, `must not be ${quote(s)}`);
  const wk = r.wellKnown;
  if (wk.case === undefined || wk.value === false) return;
  const check = (ok: boolean, what: string) => {
    if (!ok) push(`${snake(wk.case!)} = ${String(wk.value)}`, `must be ${what} (got ${quote(s)})`);
  };
  switch (wk.case) {
    case "email":
      check(isEmail(s), "an email address");
      return;
    case "hostname":
      check(isHostname(s), "a host name");
      return;
    case "ip":
      check(isIP(s) !== 0, "an IP address");
      return;
    case "ipv4":
      check(isIP(s) === 4, "an IPv4 address");
      return;
    case "ipv6":
      check(isIP(s) === 6, "an IPv6 address");
      return;
    case "uri":
      check(isUri(s), "an absolute URI");
      return;
    case "uriRef":
      check(isUriRef(s), "a URI reference");
      return;
    case "address":
      check(isAddress(s), "an IP address or host name");
      return;
    case "uuid":
      check(isUuid(s), "a UUID");
      return;
    case "wellKnownRegex": {
      const strict = r.strict ?? true;
      if (wk.value === KnownRegex.HTTP_HEADER_NAME)
        check((strict ? knownRegex.headerName : knownRegex.headerString).test(s), "an HTTP header name");
      else if (wk.value === KnownRegex.HTTP_HEADER_VALUE)
        check((strict ? knownRegex.headerValue : knownRegex.headerString).test(s), "an HTTP header value");
      return;
    }
  }
}

function checkBytes(r: BytesRules, b: Uint8Array, push: (rule: string, message: string) => void): void {
  if (r.ignoreEmpty && b.length === 0) return;
  const n = BigInt(b.length);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (has(r, "const") && !buf.equals(r.const)) push("const", "must equal the given bytes");
  if (has(r, "len") && n !== r.len) push(`len = ${r.len}`, `must be ${r.len} bytes long (got ${b.length})`);
  if (has(r, "minLen") && n < r.minLen)
    push(`min_len = ${r.minLen}`, `must be at least ${r.minLen} bytes long (got ${b.length})`);
  if (has(r, "maxLen") && n > r.maxLen)
    push(`max_len = ${r.maxLen}`, `must be at most ${r.maxLen} bytes long (got ${b.length})`);
  if (has(r, "pattern")) {
    const re = regex(r.pattern);
    if (re && !re.test(buf.toString("utf8")))
      push(`pattern = ${quote(r.pattern)}`, `must match ${quote(r.pattern)}`);
  }
  if (has(r, "prefix") && !buf.subarray(0, r.prefix.length).equals(r.prefix))
    push("prefix", "must start with the given bytes");
  if (
    has(r, "suffix") &&
    (b.length < r.suffix.length || !buf.subarray(b.length - r.suffix.length).equals(r.suffix))
  )
    push("suffix", "must end with the given bytes");
  if (has(r, "contains") && buf.indexOf(r.contains) < 0) push("contains", "must contain the given bytes");
  if (r.in.length > 0 && !r.in.some((x) => buf.equals(x))) push("in", "must be one of the given values");
  if (r.notIn.some((x) => buf.equals(x))) push("not_in", "must not be one of the given values");
  const wk = r.wellKnown;
  if (wk.case === "ip" && wk.value && b.length !== 4 && b.length !== 16)
    push("ip = true", "must be 4 or 16 bytes (an IP address)");
  if (wk.case === "ipv4" && wk.value && b.length !== 4)
    push("ipv4 = true", "must be 4 bytes (an IPv4 address)");
  if (wk.case === "ipv6" && wk.value && b.length !== 16)
    push("ipv6 = true", "must be 16 bytes (an IPv6 address)");
}

function checkEnum(
  r: EnumRules,
  v: number,
  field: DescField,
  push: (rule: string, message: string) => void,
): void {
  if (has(r, "const") && v !== r.const) push(`const = ${r.const}`, `must be ${r.const} (got ${v})`);
  const desc = field.enum;
  if (r.definedOnly && desc && !desc.values.some((x) => x.number === v))
    push("defined_only = true", `must be a value of ${desc.typeName} (got ${v})`);
  if (r.in.length > 0 && !r.in.includes(v))
    push(`in = [${r.in.join(", ")}]`, `must be one of ${r.in.join(", ")} (got ${v})`);
  if (r.notIn.includes(v)) {
    const name = desc?.values.find((x) => x.number === v)?.name;
    push(`not_in = [${r.notIn.join(", ")}]`, `must not be ${name ?? v}`);
  }
}

// ---- repeated and map

function checkRepeated(
  field: DescField,
  r: RepeatedRules,
  list: readonly unknown[],
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  if (r.ignoreEmpty && list.length === 0) return;
  const n = BigInt(list.length);
  if (has(r, "minItems") && n < r.minItems)
    out.push({
      path,
      rule: `repeated.min_items = ${r.minItems}`,
      message: `needs at least ${r.minItems} item(s) (got ${list.length})`,
    });
  if (has(r, "maxItems") && n > r.maxItems)
    out.push({
      path,
      rule: `repeated.max_items = ${r.maxItems}`,
      message: `takes at most ${r.maxItems} item(s) (got ${list.length})`,
    });
  if (r.unique && !(field.fieldKind === "list" && field.listKind === "message")) {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      const key = v instanceof Uint8Array ? Buffer.from(v).toString("base64") : String(v);
      if (seen.has(key))
        out.push({
          path: `${path}[${i}]`,
          rule: "repeated.unique = true",
          message: `repeats an earlier item (${key})`,
        });
      seen.add(key);
    });
  }
  for (const [i, v] of list.entries()) checkItem(field, r.items, v, `${path}[${i}]`, ctx, out);
}

function checkItem(
  field: DescField,
  rules: FieldRules | undefined,
  value: unknown,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  if (
    field.fieldKind === "list"
      ? field.listKind === "message"
      : field.fieldKind === "map" && field.mapKind === "message"
  ) {
    const schema = field.message!;
    if (isWrapper(schema)) {
      if (rules) checkScalar(rules, value, path, field, out);
      return;
    }
    const kind = rules?.type.case;
    if (kind === "duration") checkDuration(rules!.type.value as DurationRules, value as Duration, path, out);
    else if (kind === "timestamp")
      checkTimestamp(rules!.type.value as TimestampRules, value as Duration, path, ctx, out);
    else if (kind === "any")
      checkAnyRules(rules!.type.value as AnyRules, value as { typeUrl: string }, path, out);
    if (!rules?.message?.skip) visitNested(schema, value, path, ctx, out);
    return;
  }
  if (rules) checkScalar(rules, value, path, field, out);
}

function checkMap(
  field: DescField,
  r: MapRules,
  map: Record<string, unknown>,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  const keys = Object.keys(map);
  if (r.ignoreEmpty && keys.length === 0) return;
  const n = BigInt(keys.length);
  if (has(r, "minPairs") && n < r.minPairs)
    out.push({
      path,
      rule: `map.min_pairs = ${r.minPairs}`,
      message: `needs at least ${r.minPairs} entr(ies) (got ${keys.length})`,
    });
  if (has(r, "maxPairs") && n > r.maxPairs)
    out.push({
      path,
      rule: `map.max_pairs = ${r.maxPairs}`,
      message: `takes at most ${r.maxPairs} entr(ies) (got ${keys.length})`,
    });
  for (const k of keys) {
    const at = `${path}[${JSON.stringify(k)}]`;
    if (r.keys) checkScalar(r.keys, mapKey(field, k), at, field, out);
    checkItem(field, r.values, map[k], at, ctx, out);
  }
}

/** protobuf-es keeps map keys as object keys (strings); the rules compare typed values. */
function mapKey(field: DescField, key: string): unknown {
  if (field.fieldKind !== "map") return key;
  switch (field.mapKey) {
    case 9: // string
      return key;
    case 8: // bool
      return key === "true";
    case 3: // int64
    case 4: // uint64
    case 6: // fixed64
    case 16: // sfixed64
    case 18: // sint64
      return BigInt(key);
    default:
      return Number(key);
  }
}

// ---- well-known message types

interface Duration {
  seconds: bigint;
  nanos: number;
}

const nanosOf = (d: { seconds: bigint; nanos: number }) => d.seconds * 1_000_000_000n + BigInt(d.nanos);
const showDuration = (n: bigint) => {
  const s = Number(n) / 1e9;
  return `${s}s`;
};

function checkDuration(r: DurationRules, d: Duration, path: string, out: FieldViolation[]): void {
  const v = nanosOf(d);
  const push = (rule: string, message: string) => out.push({ path, rule: `duration.${rule}`, message });
  if (r.const && v !== nanosOf(r.const))
    push(
      `const = ${showDuration(nanosOf(r.const))}`,
      `must be ${showDuration(nanosOf(r.const))} (got ${showDuration(v)})`,
    );
  range(
    {
      ...(r.lt ? { lt: nanosOf(r.lt) } : {}),
      ...(r.lte ? { lte: nanosOf(r.lte) } : {}),
      ...(r.gt ? { gt: nanosOf(r.gt) } : {}),
      ...(r.gte ? { gte: nanosOf(r.gte) } : {}),
    },
    v,
    showDuration,
    push,
  );
  if (r.in.length > 0 && !r.in.some((x) => nanosOf(x) === v))
    push(
      "in",
      `must be one of ${r.in.map((x) => showDuration(nanosOf(x))).join(", ")} (got ${showDuration(v)})`,
    );
  if (r.notIn.some((x) => nanosOf(x) === v)) push("not_in", `must not be ${showDuration(v)}`);
}

function checkTimestamp(
  r: TimestampRules,
  t: Duration,
  path: string,
  ctx: ValidateContext,
  out: FieldViolation[],
): void {
  const v = nanosOf(t);
  const show = (n: bigint) => new Date(Number(n / 1_000_000n)).toISOString();
  const push = (rule: string, message: string) => out.push({ path, rule: `timestamp.${rule}`, message });
  if (r.const && v !== nanosOf(r.const)) push("const", `must be ${show(nanosOf(r.const))} (got ${show(v)})`);
  range(
    {
      ...(r.lt ? { lt: nanosOf(r.lt) } : {}),
      ...(r.lte ? { lte: nanosOf(r.lte) } : {}),
      ...(r.gt ? { gt: nanosOf(r.gt) } : {}),
      ...(r.gte ? { gte: nanosOf(r.gte) } : {}),
    },
    v,
    show,
    push,
  );
  if (r.ltNow || r.gtNow || r.within) nowChecks++;
  const now = BigInt(ctx.now()) * 1_000_000n;
  if (r.ltNow && !(v < now)) push("lt_now = true", `must be in the past (got ${show(v)})`);
  if (r.gtNow && !(v > now)) push("gt_now = true", `must be in the future (got ${show(v)})`);
  if (r.within) {
    const w = nanosOf(r.within);
    const diff = v > now ? v - now : now - v;
    if (diff > w)
      push(`within = ${showDuration(w)}`, `must be within ${showDuration(w)} of now (got ${show(v)})`);
  }
}

function checkAnyRules(r: AnyRules, any: { typeUrl: string }, path: string, out: FieldViolation[]): void {
  if (r.in.length > 0 && !r.in.includes(any.typeUrl))
    out.push({ path, rule: "any.in", message: `must be one of ${r.in.join(", ")} (got ${any.typeUrl})` });
  if (r.notIn.includes(any.typeUrl))
    out.push({ path, rule: "any.not_in", message: `must not be a ${any.typeUrl}` });
}

/**
 * Whether a rule is set: validate.proto is proto2, and protobuf-es serves an unset optional field's
 * default from the prototype, so only an own property is a rule that was written.
 */
function has(o: object, key: string): boolean {
  return Object.hasOwn(o, key);
}

// ---- paths

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
