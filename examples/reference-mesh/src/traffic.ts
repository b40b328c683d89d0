import * as grpc from "@grpc/grpc-js";
import { histogramQuantile, parsePrometheusText, type Sample } from "./prometheus-text.js";

// What the terminal view shows, computed from scrapes of the workloads' Istio metrics the way a
// Prometheus query over a window would: counter increases between the newest scrape and the one
// a window earlier (`increase(istio_requests_total[5s])`), quantiles from histogram bucket
// increases (`histogram_quantile`). Edges are what the client reported (`reporter="source"`);
// identities combine both reports: the client's principal as the server verified it, the
// server's as the client verified it.

/** One scrape of every workload. */
export interface Scrape {
  readonly at: number;
  readonly samples: readonly Sample[];
}

/** Requests from one workload to one service over the window. */
export interface EdgeStats {
  /** `productpage-v1`. */
  readonly source: string;
  /** `reviews`. */
  readonly destination: string;
  readonly requests: number;
  readonly rps: number;
  /** Requests with a gRPC status other than OK. */
  readonly errors: number;
  /** gRPC status name → requests (`OK`, `PERMISSION_DENIED`…). */
  readonly statuses: ReadonlyMap<string, number>;
  /** Envoy response flags other than `-` → requests (`FI`, `RL`). */
  readonly flags: ReadonlyMap<string, number>;
  /** Destination version → requests (`unknown` when the server did not say, e.g. refused before it answered). */
  readonly versions: ReadonlyMap<string, number>;
  /** Milliseconds; NaN without requests. */
  readonly p50: number;
  readonly p99: number;
}

/** The identities of one workload-to-workload pair, from the certificates each side verified. */
export interface IdentityPair {
  readonly source: string;
  readonly destination: string;
  /** The client's SPIFFE ID as the server verified it (`unknown` without mTLS). */
  readonly sourcePrincipal: string;
  /** The server's SPIFFE ID as the client verified it. */
  readonly destinationPrincipal: string;
  /** `mutual_tls` or `none`, as the server reported it. */
  readonly securityPolicy: string;
}

/** The view's numbers for one window. */
export interface TrafficWindow {
  /** Seconds between the two scrapes compared. */
  readonly seconds: number;
  readonly edges: readonly EdgeStats[];
  readonly identities: readonly IdentityPair[];
}

const REQUESTS = "istio_requests_total";
const BUCKETS = "istio_request_duration_milliseconds_bucket";

const seriesKey = (s: Sample) =>
  `${s.name}{${Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${s.labels[k]}`)
    .join(",")}}`;

/** Counter increases between two scrapes, per series (a reset counts from zero). */
function increases(older: Scrape | undefined, newer: Scrape): Sample[] {
  const before = new Map((older?.samples ?? []).map((s) => [seriesKey(s), s.value]));
  const out: Sample[] = [];
  for (const s of newer.samples) {
    if (s.name !== REQUESTS && s.name !== BUCKETS) continue;
    const prev = before.get(seriesKey(s)) ?? 0;
    const delta = s.value >= prev ? s.value - prev : s.value;
    if (delta > 0) out.push({ ...s, value: delta });
  }
  return out;
}

const statusName = (code: string) => grpc.status[Number(code)] ?? `status ${code}`;
const add = <K>(m: Map<K, number>, k: K, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** The window ending at the newest scrape and starting at the newest scrape at least `seconds` older. */
export function trafficWindow(scrapes: readonly Scrape[], seconds: number): TrafficWindow {
  const newest = scrapes.at(-1);
  if (newest === undefined) return { seconds: 0, edges: [], identities: [] };
  const older = [...scrapes].reverse().find((s) => newest.at - s.at >= seconds * 1000) ?? scrapes[0];
  const span = older === newest || older === undefined ? 0 : (newest.at - older.at) / 1000;
  const delta = increases(older === newest ? undefined : older, newest);

  interface Acc {
    requests: number;
    errors: number;
    statuses: Map<string, number>;
    flags: Map<string, number>;
    versions: Map<string, number>;
    buckets: Map<number, number>;
  }
  const edges = new Map<string, Acc>();
  const edge = (l: Readonly<Record<string, string>>) => {
    const key = `${l.source_workload}\u0000${l.destination_service_name}`;
    let acc = edges.get(key);
    if (acc === undefined) {
      acc = {
        requests: 0,
        errors: 0,
        statuses: new Map(),
        flags: new Map(),
        versions: new Map(),
        buckets: new Map(),
      };
      edges.set(key, acc);
    }
    return acc;
  };
  const pairs = new Map<string, { sp?: string; dp?: string; policy?: string }>();
  const pair = (l: Readonly<Record<string, string>>) => {
    const key = `${l.source_workload}\u0000${l.destination_workload}`;
    const p = pairs.get(key) ?? {};
    pairs.set(key, p);
    return p;
  };
  for (const s of delta) {
    const l = s.labels;
    if (s.name === REQUESTS) {
      if (l.reporter === "source") {
        const acc = edge(l);
        acc.requests += s.value;
        if (l.grpc_response_status !== "0") acc.errors += s.value;
        add(acc.statuses, statusName(l.grpc_response_status ?? ""), s.value);
        if (l.response_flags !== undefined && l.response_flags !== "-")
          add(acc.flags, l.response_flags, s.value);
        add(acc.versions, l.destination_version ?? "unknown", s.value);
        if (l.destination_workload !== "unknown" && l.destination_principal !== undefined)
          pair(l).dp = l.destination_principal;
      } else if (l.reporter === "destination" && l.source_workload !== "unknown") {
        const p = pair(l);
        if (l.source_principal !== undefined) p.sp = l.source_principal;
        if (l.connection_security_policy !== undefined) p.policy = l.connection_security_policy;
      }
    } else if (s.name === BUCKETS && l.reporter === "source") {
      const le = l.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(l.le);
      add(edge(l).buckets, le, s.value);
    }
  }
  const out: EdgeStats[] = [...edges.entries()]
    .filter(([, a]) => a.requests > 0)
    .map(([key, a]) => {
      const [source = "", destination = ""] = key.split("\u0000");
      const buckets = [...a.buckets.entries()];
      return {
        source,
        destination,
        requests: a.requests,
        rps: span > 0 ? a.requests / span : 0,
        errors: a.errors,
        statuses: a.statuses,
        flags: a.flags,
        versions: a.versions,
        p50: histogramQuantile(0.5, buckets),
        p99: histogramQuantile(0.99, buckets),
      };
    })
    .sort((x, y) => edgeOrder(x) - edgeOrder(y) || x.source.localeCompare(y.source));
  const identities: IdentityPair[] = [...pairs.entries()]
    .filter(([, p]) => p.sp !== undefined || p.dp !== undefined)
    .map(([key, p]) => {
      const [source = "", destination = ""] = key.split("\u0000");
      return {
        source,
        destination,
        sourcePrincipal: p.sp ?? "unknown",
        destinationPrincipal: p.dp ?? "unknown",
        securityPolicy: p.policy ?? "unknown",
      };
    })
    .sort((x, y) => x.source.localeCompare(y.source) || x.destination.localeCompare(y.destination));
  return { seconds: span, edges: out, identities };
}

const ORDER = ["productpage", "details", "reviews", "ratings"];
const edgeOrder = (e: EdgeStats) => {
  const i = ORDER.indexOf(e.destination);
  return i < 0 ? ORDER.length : i;
};

/** Parses one workload's /metrics text (re-exported for the scraper). */
export const parseScrape = parsePrometheusText;
