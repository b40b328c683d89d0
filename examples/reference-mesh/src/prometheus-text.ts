// Reading what the workloads expose at /metrics: the Prometheus text exposition format
// (prometheus.io docs/instrumenting/exposition_formats): `name{label="value",…} value` lines,
// `#` comments, label values with `\\`, `\"` and `\n` escapes. Just enough of a scraper for the
// terminal view; Prometheus itself would scrape the same endpoints (the pods carry
// prometheus.io/scrape annotations).

/** One sample. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

/** Parses a text exposition; lines it cannot read are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    const body = m[2] ?? "";
    LABEL.lastIndex = 0;
    let ok = true;
    while (LABEL.lastIndex < body.length) {
      const l = LABEL.exec(body);
      if (l === null) {
        ok = false;
        break;
      }
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    const value = Number(m[3] === "+Inf" ? Number.POSITIVE_INFINITY : m[3]);
    if (ok && !Number.isNaN(value)) samples.push({ name: m[1] as string, labels, value });
  }
  return samples;
}

/**
 * The q-quantile of a histogram from its cumulative buckets (`le` → count), as PromQL's
 * `histogram_quantile` computes it for classic histograms (prometheus/prometheus
 * promql/quantile.go `BucketQuantile`): the first bucket whose count reaches the rank q·total,
 * linear interpolation inside it — from 0 when the lowest bucket's bound is positive, its bound
 * when it is not — and the highest finite bound when the rank falls in `+Inf`. NaN without
 * observations.
 */
export function histogramQuantile(
  q: number,
  buckets: ReadonlyArray<readonly [le: number, count: number]>,
): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0 || Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const rank = q * total;
  const i = sorted.findIndex(([, count]) => count >= rank);
  const [le, count] = sorted[i] as readonly [number, number];
  if (le === Number.POSITIVE_INFINITY)
    return sorted.length > 1 ? (sorted[sorted.length - 2] as readonly [number, number])[0] : Number.NaN;
  if (i === 0 && le <= 0) return le;
  const [lower, below] = i === 0 ? [0, 0] : (sorted[i - 1] as readonly [number, number]);
  const inBucket = count - below;
  return inBucket <= 0 ? le : lower + ((le - lower) * (rank - below)) / inBucket;
}
