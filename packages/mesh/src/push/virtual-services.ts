import { type ResourceKey, resourceKeyOf, type VirtualService } from "@meshlet/config";
import { getOrCreate, pushTo } from "../collections.js";
import {
  creationTime,
  type Destination,
  type HttpMatchRequest,
  type HttpRoute,
  type StringMatch,
  type TcpRoute,
  type TlsRoute,
} from "../config-access.js";
import { resolveGatewayName, resolveShortname } from "../model/host.js";
import { exportTargets, isExportedTo } from "./visibility.js";

/** The gateway name of sidecars and proxyless clients (Istio `constants.IstioMeshGateway`). */
export const MESH_GATEWAY = "mesh";

/**
 * A VirtualService as generators use it (Istio's `initVirtualServices` output): hosts and
 * destination hosts resolved to FQDNs, gateways to `namespace/name` (or `mesh`), and delegate
 * VirtualServices merged into the root's HTTP routes.
 */
export interface MeshVirtualService {
  /** The resource as written (for origins and diagnostics). */
  readonly resource: VirtualService;
  readonly key: ResourceKey;
  readonly namespace: string;
  readonly name: string;
  /** FQDN hosts. */
  readonly hosts: readonly string[];
  /** `mesh` and/or `namespace/name` of Gateways; `["mesh"]` when the resource names none. */
  readonly gateways: readonly string[];
  /** HTTP routes, destinations resolved, delegates merged in. */
  readonly http: readonly HttpRoute[];
  readonly tcp: readonly TcpRoute[];
  readonly tls: readonly TlsRoute[];
  readonly exportTo?: ReadonlySet<string>;
  /** Delegate VirtualServices this root referenced (found or not). */
  readonly delegates: readonly ResourceKey[];
  readonly creationTime?: number;
}

/**
 * Resolves short names the way Istio's `resolveVirtualServiceShortnames` does: top-level hosts,
 * destination and mirror hosts become FQDNs relative to the VirtualService's namespace; gateway
 * references become `namespace/name`.
 */
export function resolveVirtualService(vs: VirtualService, domainSuffix: string): MeshVirtualService {
  const ns = vs.metadata.namespace;
  const spec = vs.spec;
  const host = (h: string) => resolveShortname(h, ns, domainSuffix);
  const dest = (d: Destination): Destination => ({ ...d, host: host(d.host) });
  const gw = (g: string) => resolveGatewayName(g, ns);
  // HTTP and L4 matches may name gateways (Istio HTTPMatchRequest / L4MatchAttributes / TLSMatchAttributes).
  const withGateways = <M extends object>(m: M): M => {
    const g = (m as { gateways?: unknown }).gateways;
    return Array.isArray(g) ? { ...m, gateways: g.map((x) => gw(String(x))) } : m;
  };
  const http = (spec.http ?? []).map(
    (r): HttpRoute => ({
      ...r,
      ...(r.match !== undefined ? { match: r.match.map(withGateways) } : {}),
      ...(r.route !== undefined
        ? { route: r.route.map((d) => ({ ...d, destination: dest(d.destination) })) }
        : {}),
      ...(r.mirror !== undefined ? { mirror: dest(r.mirror) } : {}),
      ...(r.mirrors !== undefined
        ? { mirrors: r.mirrors.map((m) => ({ ...m, destination: dest(m.destination) })) }
        : {}),
    }),
  );
  const tcp = (spec.tcp ?? []).map(
    (r): TcpRoute => ({
      ...r,
      ...(r.match !== undefined ? { match: r.match.map(withGateways) } : {}),
      route: (r.route ?? []).map((d) => ({ ...d, destination: dest(d.destination) })),
    }),
  );
  const tls = (spec.tls ?? []).map(
    (r): TlsRoute => ({
      ...r,
      match: (r.match ?? []).map(withGateways),
      route: (r.route ?? []).map((d) => ({ ...d, destination: dest(d.destination) })),
    }),
  );
  const created = creationTime(vs);
  return {
    resource: vs,
    key: resourceKeyOf(vs),
    namespace: ns,
    name: vs.metadata.name,
    hosts: (spec.hosts ?? []).map(host),
    gateways:
      spec.gateways === undefined || spec.gateways.length === 0 ? [MESH_GATEWAY] : spec.gateways.map(gw),
    http,
    tcp,
    tls,
    ...(spec.exportTo !== undefined && spec.exportTo.length > 0 ? { exportTo: new Set(spec.exportTo) } : {}),
    delegates: [],
    ...(created !== undefined ? { creationTime: created } : {}),
  };
}

/**
 * Istio's ordering of config objects (`sortConfigByCreationTime`): oldest first, then by name,
 * then by namespace. Objects without a creation time sort as time 0.
 */
export function byCreation<
  T extends { readonly creationTime?: number; readonly name: string; readonly namespace: string },
>(a: T, b: T): number {
  return (
    (a.creationTime ?? 0) - (b.creationTime ?? 0) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0)
  );
}

/** VirtualServices indexed by gateway and visibility (Istio `virtualServiceIndex`). */
export class VirtualServiceIndex {
  /** Every non-delegate VirtualService, delegates merged, oldest first. */
  readonly all: readonly MeshVirtualService[];
  /** Root VirtualService key → the delegates it references. */
  readonly delegatesByRoot: ReadonlyMap<string, readonly ResourceKey[]>;
  readonly #private = new Map<string, MeshVirtualService[]>();
  readonly #exported = new Map<string, MeshVirtualService[]>();
  readonly #public = new Map<string, MeshVirtualService[]>();

  constructor(
    resources: readonly VirtualService[],
    domainSuffix: string,
    defaultExportTo: readonly string[],
  ) {
    const resolved = resources.map((vs) => resolveVirtualService(vs, domainSuffix)).sort(byCreation);
    const { merged, delegatesByRoot } = mergeDelegates(resolved, defaultExportTo);
    this.all = merged;
    this.delegatesByRoot = delegatesByRoot;
    for (const vs of merged) {
      const targets = exportTargets(vs.exportTo, vs.namespace, defaultExportTo);
      for (const gw of vs.gateways) {
        if (targets === "*") pushTo(this.#public, gw, vs);
        else {
          for (const ns of targets) {
            pushTo(ns === vs.namespace ? this.#private : this.#exported, `${ns}|${gw}`, vs);
          }
        }
      }
    }
  }

  /**
   * VirtualServices bound to `gateway` (`mesh` or `namespace/name`) and visible from `namespace`,
   * in Istio's precedence order (`VirtualServicesForGateway`): those private to the namespace, then
   * those exported to it by name, then public ones; oldest first within each group.
   */
  forGateway(namespace: string, gateway: string): MeshVirtualService[] {
    const key = `${namespace}|${gateway}`;
    return [
      ...(this.#private.get(key) ?? []),
      ...(this.#exported.get(key) ?? []),
      ...(this.#public.get(gateway) ?? []),
    ];
  }
}

/**
 * Merges delegate VirtualServices (ones without hosts) into the HTTP routes of the roots that
 * delegate to them (Istio `mergeVirtualServicesIfNeeded`): a missing delegate, or one not exported
 * to the root's namespace, drops just that route; each delegate route is merged with the root route
 * and dropped when their matches conflict. Delegates themselves are not returned.
 */
function mergeDelegates(
  vses: readonly MeshVirtualService[],
  defaultExportTo: readonly string[],
): { merged: MeshVirtualService[]; delegatesByRoot: Map<string, ResourceKey[]> } {
  const delegates = new Map<string, MeshVirtualService>();
  const out: MeshVirtualService[] = [];
  const roots: MeshVirtualService[] = [];
  for (const vs of vses) {
    if (vs.hosts.length === 0) delegates.set(`${vs.namespace}/${vs.name}`, vs);
    else if (vs.http.some((r) => r.delegate !== undefined)) roots.push(vs);
    else out.push(vs);
  }
  const delegatesByRoot = new Map<string, ResourceKey[]>();
  for (const root of roots) {
    const refs: ResourceKey[] = [];
    const http: HttpRoute[] = [];
    for (const route of root.http) {
      const d = route.delegate;
      if (d === undefined) {
        http.push(route);
        continue;
      }
      const ns = d.namespace ?? root.namespace;
      refs.push({ kind: "VirtualService", namespace: ns, name: d.name ?? "" });
      const delegate = delegates.get(`${ns}/${d.name}`);
      if (delegate === undefined) continue;
      if (!isExportedTo(delegate.exportTo, delegate.namespace, root.namespace, defaultExportTo)) continue;
      for (const sub of delegate.http) {
        const merged = mergeHttpRoute(route, sub);
        if (merged !== undefined) http.push(merged);
      }
    }
    delegatesByRoot.set(`${root.namespace}/${root.name}`, refs);
    out.push({ ...root, http, delegates: refs });
  }
  out.sort(byCreation);
  return { merged: out, delegatesByRoot };
}

/** Root route + delegate route (Istio `mergeHTTPRoute`); undefined when their matches conflict. */
function mergeHttpRoute(root: HttpRoute, delegate: HttpRoute): HttpRoute | undefined {
  const match = mergeMatches(root.match ?? [], delegate.match ?? []);
  if (match === undefined) return undefined;
  const name = mergedName(root.name, delegate.name);
  return {
    ...delegate,
    ...(match.length > 0 ? { match } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(delegate.rewrite === undefined && root.rewrite !== undefined ? { rewrite: root.rewrite } : {}),
    ...(delegate.timeout === undefined && root.timeout !== undefined ? { timeout: root.timeout } : {}),
    ...(delegate.retries === undefined && root.retries !== undefined ? { retries: root.retries } : {}),
    ...(delegate.fault === undefined && root.fault !== undefined ? { fault: root.fault } : {}),
    ...(delegate.mirror === undefined && root.mirror !== undefined ? { mirror: root.mirror } : {}),
    ...(delegate.mirrorPercentage === undefined && root.mirrorPercentage !== undefined
      ? { mirrorPercentage: root.mirrorPercentage }
      : {}),
    ...(delegate.corsPolicy === undefined && root.corsPolicy !== undefined
      ? { corsPolicy: root.corsPolicy }
      : {}),
    ...(delegate.headers === undefined && root.headers !== undefined ? { headers: root.headers } : {}),
  };
}

function mergeMatches(
  root: readonly HttpMatchRequest[],
  delegate: readonly HttpMatchRequest[],
): HttpMatchRequest[] | undefined {
  if (root.length === 0) return [...delegate];
  if (delegate.length === 0) return [...root];
  const out: HttpMatchRequest[] = [];
  for (const sub of delegate) {
    let found = false;
    for (const r of root) {
      if (matchConflict(r, sub)) continue;
      out.push(mergeMatch(r, sub));
      found = true;
    }
    if (!found) return undefined;
  }
  return out.length === 0 ? undefined : out;
}

function mergeMatch(root: HttpMatchRequest, d: HttpMatchRequest): HttpMatchRequest {
  const name = mergedName(root.name, d.name);
  const maps = <K extends "headers" | "withoutHeaders" | "queryParams" | "sourceLabels">(k: K) =>
    root[k] === undefined && d[k] === undefined ? {} : { [k]: { ...(root[k] ?? {}), ...(d[k] ?? {}) } };
  return {
    ...d,
    ...(name !== undefined ? { name } : {}),
    ...(d.uri === undefined && root.uri !== undefined ? { uri: root.uri } : {}),
    ...(d.scheme === undefined && root.scheme !== undefined ? { scheme: root.scheme } : {}),
    ...(d.method === undefined && root.method !== undefined ? { method: root.method } : {}),
    ...(d.authority === undefined && root.authority !== undefined ? { authority: root.authority } : {}),
    ...maps("headers"),
    ...maps("withoutHeaders"),
    ...maps("queryParams"),
    ...maps("sourceLabels"),
    ...(d.port === undefined && root.port !== undefined ? { port: root.port } : {}),
    ...((d.sourceNamespace === undefined || d.sourceNamespace === "") && root.sourceNamespace !== undefined
      ? { sourceNamespace: root.sourceNamespace }
      : {}),
    ...((d.gateways === undefined || d.gateways.length === 0) && root.gateways !== undefined
      ? { gateways: root.gateways }
      : {}),
  };
}

/** Istio names a merged route or match `<root>-<delegate>`, or whichever of the two is set. */
function mergedName(root: string | undefined, delegate: string | undefined): string | undefined {
  if (delegate === undefined || delegate === "") return root;
  return root !== undefined && root !== "" ? `${root}-${delegate}` : delegate;
}

/** Istio `hasConflict`: the delegate match must be narrower than the root match. */
function matchConflict(root: HttpMatchRequest, leaf: HttpMatchRequest): boolean {
  const pairs: Array<[StringMatch | undefined, StringMatch | undefined]> = [
    [root.uri, leaf.uri],
    [root.scheme, leaf.scheme],
    [root.method, leaf.method],
    [root.authority, leaf.authority],
  ];
  for (const [r, l] of pairs) if (stringMatchConflict(r, l)) return true;
  for (const k of ["headers", "withoutHeaders", "queryParams"] as const) {
    for (const [name, l] of Object.entries(leaf[k] ?? {})) {
      if (stringMatchConflict(root[k]?.[name], l)) return true;
    }
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return true;
  if (
    root.sourceNamespace !== undefined &&
    root.sourceNamespace !== "" &&
    leaf.sourceNamespace !== root.sourceNamespace
  ) {
    return true;
  }
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    const rv = root.sourceLabels?.[k];
    if (rv !== undefined && rv !== v) return true;
  }
  const rg = root.gateways ?? [];
  const lg = leaf.gateways ?? [];
  if (rg.length > 0 && lg.length > 0) {
    if (rg.length < lg.length) return true;
    if (lg.some((g) => !rg.includes(g))) return true;
  }
  return false;
}

/** Istio `stringMatchConflict`. */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (root === undefined || leaf === undefined) return false;
  const set = (s: string | undefined) => s !== undefined && s !== "";
  if (set(root.regex) && (set(leaf.regex) || set(leaf.prefix) || set(leaf.exact))) return true;
  if (set(leaf.regex) && (set(root.regex) || set(root.prefix) || set(root.exact))) return true;
  if (set(root.exact)) {
    if (set(leaf.prefix)) return true;
    return leaf.exact !== root.exact;
  }
  if (set(root.prefix)) {
    if (set(leaf.prefix)) return !(leaf.prefix as string).startsWith(root.prefix as string);
    if (set(leaf.exact)) return !(leaf.exact as string).startsWith(root.prefix as string);
  }
  return true;
}

/**
 * Hosts a VirtualService routes to, with the destination ports per host (0 = "no port given, every
 * port"), skipping HTTP routes whose `sourceNamespace` matches exclude `namespace` (Istio
 * `virtualServiceDestinationsFilteredBySourceNamespace`; pass `undefined` for all routes).
 */
export function virtualServiceDestinations(
  vs: MeshVirtualService,
  namespace?: string,
): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const add = (d: Destination) => {
    getOrCreate(out, d.host, () => new Set<number>()).add(d.port?.number ?? 0);
  };
  for (const r of vs.http) {
    if (namespace !== undefined) {
      let matched = true;
      for (const m of r.match ?? []) {
        if (m.sourceNamespace !== undefined && m.sourceNamespace !== "") {
          if (m.sourceNamespace === namespace) {
            matched = true;
            break;
          }
          matched = false;
        }
      }
      if (!matched) continue;
    }
    for (const d of r.route ?? []) add(d.destination);
    if (r.mirror !== undefined) add(r.mirror);
    for (const m of r.mirrors ?? []) add(m.destination);
  }
  for (const r of [...vs.tcp, ...vs.tls]) for (const d of r.route ?? []) add(d.destination);
  return out;
}
