/**
 * protoc-gen-validate `pattern` rules are RE2 expressions; this runs them as JavaScript RegExps.
 * RE2 and JS agree on the syntax Envoy's protos use (anchors, classes, escapes, quantifiers), and
 * RE2 has no backreferences or lookaround, so an RE2 pattern is almost always a JS pattern too.
 * What differs is translated:
 *
 * - leading inline flags `(?i)`, `(?s)`, `(?m)` become RegExp flags (RE2's `(?U)`, ungreedy, has no
 *   JS equivalent: such a pattern is not translated);
 * - `(?P<name>…)` becomes `(?<name>…)`;
 * - `\A` becomes `^` and `\z` becomes `$` (without the `m` flag JS's `$` matches only at the very
 *   end, which is what `\z` means);
 * - POSIX classes inside brackets (`[[:alpha:]]`) become their ASCII ranges;
 * - one-letter Unicode classes `\pL` become `\p{L}`.
 *
 * Patterns compile with the `u` flag, so `.` and classes match code points as RE2 (UTF-8) does;
 * if JS's stricter Unicode-mode escapes reject one, it compiles without. Matching is a search,
 * not a full match, as RE2's MatchString is: anchors are up to the pattern.
 * A pattern neither form compiles is reported by {@link compileRe2} as undefined.
 */
export function compileRe2(pattern: string): RegExp | undefined {
  let source = pattern;
  let flags = "";
  const inline = /^\(\?([imsU]+)\)/.exec(source);
  if (inline) {
    if (inline[1]!.includes("U")) return undefined;
    flags = [...new Set(inline[1]!)].join("");
    source = source.slice(inline[0].length);
  }
  source = translate(source);
  for (const f of [`${flags}u`, flags]) {
    try {
      return new RegExp(source, f);
    } catch {
      // try the next form
    }
  }
  return undefined;
}

const posix: Readonly<Record<string, string>> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-/:-@[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

function translate(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (!inClass && next === "A") out += "^";
      else if (!inClass && next === "z") out += "$";
      else if (
        (next === "p" || next === "P") &&
        /[A-Za-z]/.test(source[i + 2] ?? "") &&
        source[i + 2] !== "{"
      ) {
        out += `\\${next}{${source[i + 2]}}`;
        i++;
      } else out += c + next;
      i++;
      continue;
    }
    if (inClass && c === "[" && source[i + 1] === ":") {
      const end = source.indexOf(":]", i + 2);
      const name = end > 0 ? source.slice(i + 2, end) : "";
      const negated = name.startsWith("^");
      const range = posix[negated ? name.slice(1) : name];
      if (range !== undefined && !negated) {
        out += range;
        i = end + 1;
        continue;
      }
    }
    if (!inClass && c === "(" && source.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass && out[out.length - 1] !== "[") inClass = false;
    out += c;
  }
  return out;
}
