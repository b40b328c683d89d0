import type { Constant, Expr } from "@bufbuild/cel-spec/cel/expr/syntax_pb.js";
import { assignable, type CelCheckType, join, T, typeName } from "./cel-types.js";

/**
 * A CEL type checker for a declared environment, written from the CEL language definition
 * (cel-spec `doc/langdef.md`: name resolution, field selection, the standard function overloads,
 * macros as comprehensions) for the subset meshlet's conditions use: the standard operators and
 * functions and the `strings` extension. `@bufbuild/cel` 0.6 parses and evaluates but does not
 * export a checker yet; this one is what makes a typo a load-time error.
 */
export class CelTypeError extends Error {}

type Scope = ReadonlyMap<string, CelCheckType>;

const NUMERIC = new Set(["int", "uint", "double"]);
const ORDERED = new Set(["int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"]);

function constType(c: Constant | undefined): CelCheckType {
  switch (c?.constantKind.case) {
    case "boolValue":
      return T.bool;
    case "int64Value":
      return T.int;
    case "uint64Value":
      return T.uint;
    case "doubleValue":
      return T.double;
    case "stringValue":
      return T.string;
    case "bytesValue":
      return T.bytes;
    case "nullValue":
      return T.null;
    case "durationValue":
      return T.duration;
    case "timestampValue":
      return T.timestamp;
    default:
      return T.dyn;
  }
}

const fail = (message: string): never => {
  throw new CelTypeError(message);
};

function expect(actual: CelCheckType, wanted: readonly string[], what: string): void {
  if (actual.kind === "dyn" || wanted.includes(actual.kind)) return;
  fail(`${what} expects ${wanted.join(" or ")}, found ${typeName(actual)}`);
}

/** Methods of the standard library and the `strings` extension: receiver kinds, arity, result. */
const METHODS: Record<
  string,
  { receiver: string[]; args: (CelCheckType | "any")[][]; result: CelCheckType }
> = {
  startsWith: { receiver: ["string"], args: [[T.string]], result: T.bool },
  endsWith: { receiver: ["string"], args: [[T.string]], result: T.bool },
  contains: { receiver: ["string"], args: [[T.string]], result: T.bool },
  matches: { receiver: ["string"], args: [[T.string]], result: T.bool },
  size: { receiver: ["string", "bytes", "list", "map"], args: [[]], result: T.int },
  charAt: { receiver: ["string"], args: [[T.int]], result: T.string },
  indexOf: { receiver: ["string"], args: [[T.string], [T.string, T.int]], result: T.int },
  lastIndexOf: { receiver: ["string"], args: [[T.string], [T.string, T.int]], result: T.int },
  lowerAscii: { receiver: ["string"], args: [[]], result: T.string },
  upperAscii: { receiver: ["string"], args: [[]], result: T.string },
  trim: { receiver: ["string"], args: [[]], result: T.string },
  reverse: { receiver: ["string"], args: [[]], result: T.string },
  replace: {
    receiver: ["string"],
    args: [
      [T.string, T.string],
      [T.string, T.string, T.int],
    ],
    result: T.string,
  },
  split: { receiver: ["string"], args: [[T.string], [T.string, T.int]], result: T.list(T.string) },
  substring: { receiver: ["string"], args: [[T.int], [T.int, T.int]], result: T.string },
  join: { receiver: ["list"], args: [[], [T.string]], result: T.string },
  format: { receiver: ["string"], args: [[T.list(T.dyn)]], result: T.string },
};

/** Global functions: conversions and `size`. */
const FUNCTIONS: Record<string, CelCheckType> = {
  size: T.int,
  int: T.int,
  uint: T.uint,
  double: T.double,
  string: T.string,
  bool: T.bool,
  bytes: T.bytes,
  dyn: T.dyn,
  type: T.type,
  duration: T.duration,
  timestamp: T.timestamp,
  matches: T.bool,
  "strings.quote": T.string,
};

/**
 * Type-checks a parsed expression against the declared variables and returns its type.
 * @throws CelTypeError naming what is wrong (undeclared variable, unknown field or function, no
 *   matching overload).
 */
export function checkCel(expr: Expr, declared: Readonly<Record<string, CelCheckType>>): CelCheckType {
  return check(expr, new Map(Object.entries(declared)));
}

function check(e: Expr | undefined, scope: Scope): CelCheckType {
  const k = e?.exprKind;
  switch (k?.case) {
    case "constExpr":
      return constType(k.value);
    case "identExpr": {
      const t = scope.get(k.value.name);
      return t ?? fail(`undeclared reference to '${k.value.name}'`);
    }
    case "selectExpr": {
      const operand = check(k.value.operand, scope);
      const field = k.value.field;
      let t: CelCheckType;
      if (operand.kind === "object") {
        const f = operand.fields[field];
        if (!f) {
          fail(
            `undefined field '${field}' of ${operand.name} (fields: ${Object.keys(operand.fields).join(", ")})`,
          );
        }
        t = f as CelCheckType;
      } else if (operand.kind === "map") {
        if (!assignable(operand.key, T.string)) fail(`cannot select '${field}' from ${typeName(operand)}`);
        t = operand.value;
      } else if (operand.kind === "dyn") {
        t = T.dyn;
      } else {
        t = fail(`cannot select field '${field}' from ${typeName(operand)}`);
      }
      return k.value.testOnly ? T.bool : t;
    }
    case "listExpr": {
      let elem: CelCheckType | undefined;
      for (const el of k.value.elements) {
        const t = check(el, scope);
        elem = elem === undefined ? t : assignable(elem, t) ? join(elem, t) : T.dyn;
      }
      return T.list(elem ?? T.dyn);
    }
    case "structExpr": {
      if (k.value.messageName !== "") fail(`message construction (${k.value.messageName}) is not supported`);
      let key: CelCheckType | undefined;
      let value: CelCheckType | undefined;
      for (const entry of k.value.entries) {
        if (entry.keyKind.case !== "mapKey") fail("map literal entries need keys");
        const kt = check(entry.keyKind.value as Expr, scope);
        const vt = check(entry.value, scope);
        key = key === undefined ? kt : join(key, kt);
        value = value === undefined ? vt : join(value, vt);
      }
      return T.map(key ?? T.dyn, value ?? T.dyn);
    }
    case "comprehensionExpr": {
      const c = k.value;
      const range = check(c.iterRange, scope);
      let iter: CelCheckType = T.dyn;
      let iter2: CelCheckType | undefined;
      if (range.kind === "list") {
        iter = c.iterVar2 ? T.int : range.elem;
        if (c.iterVar2) iter2 = range.elem;
      } else if (range.kind === "map") {
        iter = range.key;
        if (c.iterVar2) iter2 = range.value;
      } else if (range.kind !== "dyn") {
        fail(`cannot iterate over ${typeName(range)}`);
      }
      const accu = check(c.accuInit, scope);
      const inner = new Map(scope);
      inner.set(c.iterVar, iter);
      if (c.iterVar2) inner.set(c.iterVar2, iter2 ?? T.dyn);
      inner.set(c.accuVar, accu);
      const cond = check(c.loopCondition, inner);
      expect(cond, ["bool"], "a loop condition");
      check(c.loopStep, inner);
      const result = new Map(scope);
      result.set(c.accuVar, accu);
      return check(c.result, result);
    }
    case "callExpr":
      return checkCall(k.value.function, k.value.target, k.value.args, scope);
    default:
      return fail("empty expression");
  }
}

function checkCall(fn: string, target: Expr | undefined, args: Expr[], scope: Scope): CelCheckType {
  const a = args.map((x) => check(x, scope));
  const [x, y] = a as [CelCheckType, CelCheckType];
  switch (fn) {
    case "_&&_":
    case "_||_":
      for (const t of a) expect(t, ["bool"], `'${fn === "_&&_" ? "&&" : "||"}'`);
      return T.bool;
    case "!_":
    case "@not_strictly_false":
      expect(x, ["bool"], "'!'");
      return T.bool;
    case "_==_":
    case "_!=_":
      if (!assignable(x, y) && x.kind !== "null" && y.kind !== "null") {
        fail(
          `no matching overload for '${fn === "_==_" ? "==" : "!="}' applied to (${typeName(x)}, ${typeName(y)})`,
        );
      }
      return T.bool;
    case "_<_":
    case "_<=_":
    case "_>_":
    case "_>=_": {
      const op = fn.slice(1, -1);
      expect(x, [...ORDERED], `'${op}'`);
      expect(y, [...ORDERED], `'${op}'`);
      if (!assignable(x, y) && !(NUMERIC.has(x.kind) && NUMERIC.has(y.kind))) {
        fail(`no matching overload for '${op}' applied to (${typeName(x)}, ${typeName(y)})`);
      }
      return T.bool;
    }
    case "_+_":
      expect(x, ["int", "uint", "double", "string", "bytes", "list", "timestamp", "duration"], "'+'");
      if (!assignable(x, y) && !(x.kind === "timestamp" && y.kind === "duration")) {
        fail(`no matching overload for '+' applied to (${typeName(x)}, ${typeName(y)})`);
      }
      return join(x, y);
    case "_-_":
    case "_*_":
    case "_/_":
    case "_%_": {
      const op = fn.slice(1, -1);
      expect(x, ["int", "uint", "double", "timestamp", "duration"], `'${op}'`);
      if (!assignable(x, y) && !(x.kind === "timestamp" && y.kind === "duration")) {
        fail(`no matching overload for '${op}' applied to (${typeName(x)}, ${typeName(y)})`);
      }
      return x.kind === "timestamp" && y.kind === "timestamp" ? T.duration : join(x, y);
    }
    case "-_":
      expect(x, ["int", "double"], "unary '-'");
      return x;
    case "_?_:_": {
      expect(x, ["bool"], "the condition of '?:'");
      const z = a[2] as CelCheckType;
      if (!assignable(y, z))
        fail(`the branches of '?:' have different types (${typeName(y)}, ${typeName(z)})`);
      return join(y, z);
    }
    case "_[_]":
      if (x.kind === "list") {
        expect(y, ["int", "uint"], "a list index");
        return x.elem;
      }
      if (x.kind === "map") {
        if (!assignable(x.key, y)) fail(`a ${typeName(x)} cannot be indexed with ${typeName(y)}`);
        return x.value;
      }
      if (x.kind === "dyn") return T.dyn;
      return fail(`${typeName(x)} cannot be indexed`);
    case "@in":
      if (y.kind === "list" && !assignable(y.elem, x))
        fail(`'in' tests ${typeName(x)} against ${typeName(y)}`);
      else if (y.kind === "map" && !assignable(y.key, x))
        fail(`'in' tests ${typeName(x)} against ${typeName(y)}`);
      else if (y.kind !== "list" && y.kind !== "map" && y.kind !== "dyn")
        fail(`'in' needs a list or map, found ${typeName(y)}`);
      return T.bool;
  }
  if (target !== undefined) {
    const recv = check(target, scope);
    const m = METHODS[fn];
    if (!m) return fail(`undeclared reference to method '${fn}'`);
    expect(recv, m.receiver, `'${fn}'`);
    const overload = m.args.find(
      (o) => o.length === a.length && o.every((t, i) => t === "any" || assignable(t, a[i] as CelCheckType)),
    );
    if (!overload) {
      fail(`no matching overload for '${typeName(recv)}.${fn}(${a.map(typeName).join(", ")})'`);
    }
    return m.result;
  }
  const result = FUNCTIONS[fn];
  if (!result) return fail(`undeclared reference to function '${fn}'`);
  if (fn === "size") expect(x, ["string", "bytes", "list", "map"], "'size'");
  if (fn === "matches" && (a.length !== 2 || !assignable(T.string, x) || !assignable(T.string, y))) {
    fail("'matches' takes (string, string)");
  }
  return result;
}
