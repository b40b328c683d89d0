import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetMeshGraphResponse,
  GetMeshGraphResponseSchema,
  type GraphEdge,
  type GraphNode,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { type MetricSample, parseSamples } from "./prometheus-text.js";

/** Istio's standard request counter (istio.io docs/reference/config/metrics). */
export const ISTIO_REQUESTS_TOTAL = "istio_requests_total";

/** Reads the current values of `istio_requests_total`, one sample per label set. */
export type MetricsSource = () => Promise<readonly MetricSample[]>;

/**
 * A {@link MetricsSource} that scrapes Prometheus text pages (`/metrics` of the services that
 * record Istio's metrics) and concatenates their `istio_requests_total` samples. A page that fails
 * to load fails the read (the graph then says why) rather than showing partial rates.
 */
export function scrapeMetrics(
  urls: readonly string[],
  options: { readonly timeoutMs?: number; readonly fetch?: typeof fetch } = {},
): MetricsSource {
  const get = options.fetch ?? fetch;
  return async () => {
    const pages = await Promise.all(
      urls.map(async (url) => {
        const res = await get(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
        if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
        return res.text();
      }),
    );
    return pages.flatMap((page) => parseSamples(page, ISTIO_REQUESTS_TOTAL));
  };
}

/**
 * A {@link MetricsSource} over an in-process prom-client `Registry` (structurally typed: anything
 * with `getMetricsAsJSON()`), e.g. the one `createPrometheusReportAdapter` of @meshlet/adapters
 * records into.
 */
export function registryMetrics(registry: {
  getMetricsAsJSON(): Promise<
    ReadonlyArray<{
      readonly name: string;
      readonly values: ReadonlyArray<{ readonly labels: object; readonly value: number }>;
    }>
  >;
}): MetricsSource {
  return async () => {
    const metrics = await registry.getMetricsAsJSON();
    const out: MetricSample[] = [];
    for (const m of metrics) {
      if (m.name !== ISTIO_REQUESTS_TOTAL) continue;
      for (const v of m.values) {
        const labels: Record<string, string> = {};
        for (const [k, x] of Object.entries(v.labels)) labels[k] = String(x);
        out.push({ labels, value: v.value });
      }
    }
    return out;
  };
}

/** Options of {@link MeshGraph}. */
export interface MeshGraphOptions {
  readonly source: MetricsSource;
  /** Rates are computed over this span (default 60 s, Kiali's default). */
  readonly windowMs?: number;
  /** Reads closer together than this reuse the last sample (default 1 s). */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

interface Totals {
  requests: number;
  errors: number;
}

interface Sample {
  readonly at: number;
  readonly edges: Map<string, Totals>;
}

const UNKNOWN = "unknown";

/**
 * Services as nodes and request/error rates on edges, from `istio_requests_total` — what Kiali
 * draws. Each read samples the source (at most once per `minIntervalMs`); rates are the counters'
 * increase between the oldest and newest sample within `windowMs`, per second. The first read has
 * totals and no rates yet.
 *
 * From Istio's labels (istio.io docs/reference/config/metrics): the source node is the
 * `source_canonical_service` (else `source_workload`) in `source_workload_namespace`; the
 * destination node is `destination_service_name` in `destination_service_namespace` (else the
 * canonical service). Both proxies of a request report it (`reporter="source"` and
 * `"destination"`); as Kiali does, an edge counts the source's reports and falls back to the
 * destination's only when no source reported it (callers outside the mesh). A request failed when
 * its `response_code` is 5xx or, for gRPC, its `grpc_response_status` is not 0 (OK).
 */
export class MeshGraph {
  readonly #options: MeshGraphOptions;
  readonly #now: () => number;
  #samples: Sample[] = [];
  #nodes = new Map<string, { name: string; namespace: string }>();

  constructor(options: MeshGraphOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The graph now. A failing source gives an empty graph whose `note` says why. */
  async read(): Promise<GetMeshGraphResponse> {
    const now = this.#now();
    const last = this.#samples.at(-1);
    if (last === undefined || now - last.at >= (this.#options.minIntervalMs ?? 1000)) {
      try {
        this.#add(now, await this.#options.source());
      } catch (error) {
        return create(GetMeshGraphResponseSchema, {
          time: timestampFromMs(now),
          note: `metrics could not be read: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    }
    return this.#graph();
  }

  #add(at: number, samples: readonly MetricSample[]): void {
    const bySource = new Map<string, Totals>();
    const byDestination = new Map<string, Totals>();
    for (const s of samples) {
      const l = s.labels;
      const src = node(l.source_canonical_service, l.source_workload, l.source_workload_namespace);
      const dst = node(
        l.destination_service_name,
        l.destination_canonical_service,
        l.destination_service_namespace ?? l.destination_workload_namespace,
      );
      if (dst === undefined) continue;
      const source = src ?? { name: UNKNOWN, namespace: UNKNOWN };
      this.#nodes.set(id(source), source);
      this.#nodes.set(id(dst), dst);
      const key = `${id(source)}\u0000${id(dst)}`;
      const into = l.reporter === "destination" ? byDestination : bySource;
      const t = into.get(key) ?? { requests: 0, errors: 0 };
      t.requests += s.value;
      if (failed(l)) t.errors += s.value;
      into.set(key, t);
    }
    const edges = new Map(bySource);
    for (const [k, t] of byDestination) if (!edges.has(k)) edges.set(k, t);
    this.#samples.push({ at, edges });
    const windowMs = this.#options.windowMs ?? 60_000;
    while (this.#samples.length > 2 && at - (this.#samples[1] as Sample).at >= windowMs)
      this.#samples.shift();
  }

  #graph(): GetMeshGraphResponse {
    const newest = this.#samples.at(-1) as Sample;
    const oldest = this.#samples[0] as Sample;
    const seconds = (newest.at - oldest.at) / 1000;
    const edges: GraphEdge[] = [];
    const used = new Set<string>();
    for (const [key, t] of newest.edges) {
      const [source, destination] = key.split("\u0000") as [string, string];
      used.add(source);
      used.add(destination);
      const before = oldest.edges.get(key) ?? { requests: 0, errors: 0 };
      // A counter that went down was reset (a restarted process): count from zero.
      const dReq = t.requests >= before.requests ? t.requests - before.requests : t.requests;
      const dErr = t.errors >= before.errors ? t.errors - before.errors : t.errors;
      edges.push({
        $typeName: "meshlet.admin.v1.GraphEdge",
        source,
        destination,
        requestRate: seconds > 0 ? dReq / seconds : 0,
        errorRate: dReq > 0 ? dErr / dReq : 0,
        requestsTotal: t.requests,
        errorsTotal: t.errors,
      });
    }
    edges.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
    const nodes: GraphNode[] = [...used].sort().map((k) => {
      const n = this.#nodes.get(k) as { name: string; namespace: string };
      return { $typeName: "meshlet.admin.v1.GraphNode", id: k, name: n.name, namespace: n.namespace };
    });
    return create(GetMeshGraphResponseSchema, {
      nodes,
      edges,
      time: timestampFromMs(newest.at),
      windowSeconds: seconds,
      ...(edges.length === 0 ? { note: `no ${ISTIO_REQUESTS_TOTAL} samples yet` } : {}),
    });
  }
}

function known(v: string | undefined): string | undefined {
  return v === undefined || v === "" || v === UNKNOWN ? undefined : v;
}

function node(
  name: string | undefined,
  fallback: string | undefined,
  namespace: string | undefined,
): { name: string; namespace: string } | undefined {
  const n = known(name) ?? known(fallback);
  if (n === undefined) return undefined;
  return { name: n, namespace: known(namespace) ?? UNKNOWN };
}

function id(n: { name: string; namespace: string }): string {
  return `${n.namespace}/${n.name}`;
}

function failed(l: Readonly<Record<string, string>>): boolean {
  if (/^5\d\d$/.test(l.response_code ?? "")) return true;
  const grpc = known(l.grpc_response_status);
  return grpc !== undefined && grpc !== "0";
}
