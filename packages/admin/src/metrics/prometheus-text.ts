/** One sample of a Prometheus metric: its labels and value. */
export interface MetricSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The samples of one metric family in Prometheus' text exposition format (prometheus/docs
 * content/docs/instrumenting/exposition_formats.md): `name{label="value",…} value [timestamp]`,
 * label values escaped with `\\`, `\"` and `\n`; comment and `# HELP`/`# TYPE` lines skipped. A line
 * that does not parse is skipped rather than trusted (a scrape of a half-written page must not
 * invent samples).
 */
export function parseSamples(text: string, metric: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    if (rest[0] !== "{" && rest[0] !== " " && rest[0] !== "\t") continue;
    const parsed = parseLine(rest);
    if (parsed !== undefined) out.push(parsed);
  }
  return out;
}

function parseLine(rest: string): MetricSample | undefined {
  const labels: Record<string, string> = {};
  let i = 0;
  if (rest[0] === "{") {
    i = 1;
    for (;;) {
      while (rest[i] === " " || rest[i] === ",") i++;
      if (rest[i] === "}") {
        i++;
        break;
      }
      const eq = rest.indexOf("=", i);
      if (eq < 0) return undefined;
      const name = rest.slice(i, eq).trim();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || rest[eq + 1] !== '"') return undefined;
      let value = "";
      let j = eq + 2;
      for (;;) {
        const c = rest[j];
        if (c === undefined) return undefined;
        if (c === "\\") {
          const n = rest[j + 1];
          value += n === "n" ? "\n" : (n ?? "");
          j += 2;
          continue;
        }
        if (c === '"') break;
        value += c;
        j++;
      }
      labels[name] = value;
      i = j + 1;
    }
  }
  const fields = rest.slice(i).trim().split(/\s+/);
  const text = fields[0];
  if (text === undefined || text === "") return undefined;
  const value =
    text === "+Inf" ? Number.POSITIVE_INFINITY : text === "-Inf" ? Number.NEGATIVE_INFINITY : Number(text);
  if (Number.isNaN(value) && text !== "NaN") return undefined;
  return { labels, value };
}
