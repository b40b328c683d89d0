// The meshlet console: a page over the MeshAdmin API (Connect protocol through
// @connectrpc/connect-web, same origin). No framework: a handful of panels that poll or stream and
// rebuild their DOM with textContent (names in the mesh's config are never parsed as HTML).
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  type Event as AdminEvent,
  type Proxy as AdminProxy,
  ConfigType,
  type ExplainResponse,
  type GetMeshGraphResponse,
  MeshAdmin,
  ProxyKind,
  SyncStatus,
  type TypeSync,
} from "@meshlet/api/meshlet/admin/v1/admin_pb";

const TOKEN_KEY = "meshlet-admin-token";
const auth: Interceptor = (next) => (req) => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const client = createClient(
  MeshAdmin,
  createConnectTransport({ baseUrl: location.origin, interceptors: [auth] }),
);

const $ = <T extends HTMLElement | SVGElement = HTMLElement>(id: string) => document.getElementById(id) as T;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { text?: string; cls?: string; title?: string } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.text !== undefined) e.textContent = props.text;
  if (props.cls !== undefined) e.className = props.cls;
  if (props.title !== undefined) e.title = props.title;
  for (const c of children) e.append(c);
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function onError(error: unknown): void {
  const e = ConnectError.from(error);
  if (e.code === Code.Unauthenticated) {
    $("token-form").hidden = false;
    setConnection(false, "token needed");
  } else setConnection(false, e.rawMessage);
}
function setConnection(live: boolean, text: string): void {
  const c = $("connection");
  c.textContent = text;
  c.className = live ? "badge live" : "badge";
}

// ---- proxies ------------------------------------------------------------------------------------
const KIND: Record<number, string> = {
  [ProxyKind.SIDECAR]: "sidecar",
  [ProxyKind.GATEWAY]: "gateway",
  [ProxyKind.PROXYLESS]: "proxyless",
};
function statusText(t: TypeSync | undefined): string {
  switch (t?.status) {
    case SyncStatus.SYNCED:
      return "SYNCED";
    case SyncStatus.STALE:
      return t.versionAcked === "" ? "STALE (Never Acknowledged)" : "STALE";
    case SyncStatus.ERROR:
      return "ERROR";
    default:
      return "NOT SENT";
  }
}
let selectedProxy: string | undefined;
async function refreshProxies(): Promise<void> {
  const res = await client.listProxies({});
  setConnection(true, "live");
  $("plane").textContent = `control plane ${res.controlPlane}`;
  $("version").textContent = res.configVersion ? `config v${res.configVersion}` : "";
  $("proxy-count").textContent = `(${res.proxies.length})`;
  const body = document.querySelector("#proxies tbody") as HTMLTableSectionElement;
  body.replaceChildren(...res.proxies.map(proxyRow));
  if (selectedProxy === undefined && res.proxies[0] !== undefined) selectProxy(res.proxies[0].id);
}
function proxyRow(p: AdminProxy): HTMLTableRowElement {
  const byType = new Map(p.types.map((t) => [t.type, t]));
  const short = p.workload ? `${p.workload}.${p.namespace}` : p.id;
  const row = el(
    "tr",
    {},
    el("td", { text: short, cls: "name", title: p.id }),
    el("td", { text: KIND[p.kind] ?? "?" }),
  );
  for (const c of ["CDS", "LDS", "EDS", "RDS"]) {
    const t = byType.get(c);
    const text = statusText(t);
    row.append(
      el("td", {
        text,
        cls: text.split(" ")[0] === "NOT" ? "NOT-SENT" : (text.split(" ")[0] as string),
        title: t?.nackError ?? "",
      }),
    );
  }
  row.append(el("td", { text: p.clientVersion || p.client }));
  row.dataset.proxy = p.id;
  if (p.id === selectedProxy) row.classList.add("selected");
  row.addEventListener("click", () => selectProxy(p.id));
  return row;
}

// ---- config viewer ------------------------------------------------------------------------------
const TYPE: Record<
  string,
  { type: ConfigType; dump: string; item: (x: Record<string, unknown>) => unknown }
> = {
  listeners: {
    type: ConfigType.LISTENERS,
    dump: "ListenersConfigDump",
    item: (x) => (x.active_state as Record<string, unknown> | undefined)?.listener,
  },
  routes: { type: ConfigType.ROUTES, dump: "RoutesConfigDump", item: (x) => x.route_config },
  clusters: { type: ConfigType.CLUSTERS, dump: "ClustersConfigDump", item: (x) => x.cluster },
  endpoints: { type: ConfigType.ENDPOINTS, dump: "EndpointsConfigDump", item: (x) => x.endpoint_config },
  secrets: { type: ConfigType.SECRETS, dump: "SecretsConfigDump", item: (x) => x.secret },
};
let configItems: Array<{ name: string; json: string }> = [];
function selectProxy(id: string): void {
  selectedProxy = id;
  for (const r of document.querySelectorAll<HTMLTableRowElement>("#proxies tbody tr"))
    r.classList.toggle("selected", r.dataset.proxy === id);
  $("config-proxy").textContent = id;
  void loadConfig();
}
async function loadConfig(): Promise<void> {
  if (selectedProxy === undefined) return;
  const kind = ($("config-type") as HTMLSelectElement).value;
  const t = TYPE[kind] as (typeof TYPE)[string];
  try {
    const res = await client.getProxyConfig({ proxy: selectedProxy, types: [t.type] });
    const dump = res.configDump as { configs?: Array<Record<string, unknown>> } | undefined;
    const part = (dump?.configs ?? []).find((c) => String(c["@type"]).endsWith(t.dump)) ?? {};
    const list = Object.entries(part)
      .filter(([k, v]) => k.startsWith("dynamic") && Array.isArray(v))
      .flatMap(([, v]) => v as Array<Record<string, unknown>>);
    configItems = list.map((x) => {
      const item = (t.item(x) ?? x) as Record<string, unknown>;
      const name = String(item.name ?? item.cluster_name ?? x.name ?? "(unnamed)");
      return { name, json: JSON.stringify(item, null, 2) };
    });
    renderConfig();
  } catch (error) {
    $("config").replaceChildren(el("p", { text: ConnectError.from(error).rawMessage, cls: "error-text" }));
  }
}
function renderConfig(): void {
  const q = ($("config-search") as HTMLInputElement).value.trim().toLowerCase();
  const shown = configItems.filter((i) => q === "" || i.json.toLowerCase().includes(q));
  $("config").replaceChildren(
    el("p", { text: `${shown.length} of ${configItems.length}`, cls: "muted" }),
    ...shown.map((i) => {
      const pre = el("pre");
      highlight(pre, i.json, q);
      const d = el("details", {}, el("summary", { text: i.name }), pre);
      if (q !== "" && shown.length <= 3) d.open = true;
      return d;
    }),
  );
}
function highlight(target: HTMLElement, text: string, q: string): void {
  if (q === "") {
    target.textContent = text;
    return;
  }
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
    target.append(text.slice(at, i), el("mark", { text: text.slice(i, i + q.length) }));
    at = i + q.length;
  }
  target.append(text.slice(at));
}

// ---- events -------------------------------------------------------------------------------------
function describe(e: AdminEvent): { kind: string; cls: string; text: string } {
  const ev = e.event;
  switch (ev.case) {
    case "push": {
      const p = ev.value;
      const why = p.configs.length > 0 ? ` (${p.configs.join(", ")})` : "";
      return {
        kind: "push",
        cls: "push",
        text: `${p.cause}${why} → ${p.proxies.length} proxies, ${p.resourcesChanged} resources, ${p.durationMs.toFixed(0)} ms, config v${p.configVersion}`,
      };
    }
    case "nack":
      return {
        kind: "nack",
        cls: "nack",
        text: `${ev.value.proxy} rejected ${ev.value.typeUrl.split(".").pop()} ${ev.value.rejectedVersion}: ${ev.value.error}`,
      };
    case "diagnostic": {
      const d = ev.value.diagnostic;
      const where = d?.file ? `${d.file}:${d.line} ` : "";
      return {
        kind: ev.value.origin,
        cls: ev.value.origin,
        text: `${ev.value.resolved ? "resolved: " : ""}${where}${d?.code} ${d?.message}`,
      };
    }
    case "certificate":
      return {
        kind: "cert",
        cls: "cert",
        text: `${ev.value.kind} ${ev.value.identity} ${ev.value.detail}`.trim(),
      };
    case "policyDenial":
      return {
        kind: "denial",
        cls: "denial",
        text: `${ev.value.status} ${ev.value.method} ${ev.value.host}${ev.value.path} (${ev.value.reason}${ev.value.policy ? `, ${ev.value.policy}` : ""})`,
      };
    case "proxy":
      return {
        kind: "proxy",
        cls: "proxy",
        text: ev.value.refused
          ? `refused ${ev.value.proxy}: ${ev.value.refused}`
          : `${ev.value.connected ? "connected" : "left"} ${ev.value.proxy}`,
      };
    case "dropped":
      return {
        kind: "dropped",
        cls: "error",
        text: `${ev.value.count} events dropped (this page read too slowly)`,
      };
    default:
      return { kind: "?", cls: "", text: "" };
  }
}
async function watchEvents(): Promise<void> {
  for (;;) {
    try {
      for await (const e of client.watchEvents({ replay: 50 }, { timeoutMs: 0 })) {
        const d = describe(e);
        const t = e.time
          ? new Date(Number(e.time.seconds) * 1000).toLocaleTimeString([], { hour12: false })
          : "";
        const li = el(
          "li",
          {},
          el("span", { text: t, cls: "time" }),
          el("span", { text: d.kind, cls: `kind ${d.cls}` }),
          el("span", { text: d.text, cls: "text" }),
        );
        const list = $("events");
        list.prepend(li);
        while (list.childElementCount > 300) list.lastElementChild?.remove();
        if (e.event.case === "push" || e.event.case === "nack" || e.event.case === "proxy")
          void refreshProxies().catch(onError);
        if (e.event.case === "push" && selectedProxy !== undefined) void loadConfig();
      }
    } catch (error) {
      onError(error);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---- graph --------------------------------------------------------------------------------------
function drawGraph(g: GetMeshGraphResponse): void {
  const root = $<SVGSVGElement>("graph");
  $("graph-note").textContent =
    g.note || (g.windowSeconds > 0 ? `rates over ${g.windowSeconds.toFixed(0)} s` : "");
  const defs = svg("defs", {});
  for (const [id, color] of [
    ["ok", "#1f8a4c"],
    ["warn", "#b7791f"],
    ["bad", "#c53030"],
  ]) {
    const m = svg("marker", {
      id: `arrow-${id}`,
      viewBox: "0 0 10 10",
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    });
    m.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: color as string }));
    defs.append(m);
  }
  const n = g.nodes.length;
  const pos = new Map<string, { x: number; y: number }>();
  g.nodes.forEach((node, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    pos.set(node.id, { x: 320 + 220 * Math.cos(a), y: 160 + 115 * Math.sin(a) });
  });
  const children: SVGElement[] = [defs];
  for (const e of g.edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.destination);
    if (!a || !b) continue;
    const level = e.errorRate >= 0.05 ? "bad" : e.errorRate > 0 ? "warn" : "ok";
    const color = level === "bad" ? "#c53030" : level === "warn" ? "#b7791f" : "#1f8a4c";
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const r = 20;
    const group = svg("g", { class: "edge" });
    group.append(
      svg("line", {
        x1: a.x + (dx / len) * r,
        y1: a.y + (dy / len) * r,
        x2: b.x - (dx / len) * r,
        y2: b.y - (dy / len) * r,
        stroke: color,
        "marker-end": `url(#arrow-${level})`,
      }),
    );
    // The label sits beside the middle of the edge, on its left as it points, so opposite edges do not overlap.
    const label = svg("text", {
      x: (a.x + b.x) / 2 + (dy / len) * 10,
      y: (a.y + b.y) / 2 - (dx / len) * 10 + 3,
    });
    label.textContent = `${e.requestRate.toFixed(1)} rps · ${(e.errorRate * 100).toFixed(1)}% err`;
    group.append(label);
    children.push(group);
  }
  for (const node of g.nodes) {
    const p = pos.get(node.id) as { x: number; y: number };
    const group = svg("g", { class: "node" });
    group.append(svg("circle", { cx: p.x, cy: p.y, r: 18 }));
    const name = svg("text", { x: p.x, y: p.y + 32 });
    name.textContent = node.name;
    const ns = svg("text", { x: p.x, y: p.y + 44, class: "ns" });
    ns.textContent = node.namespace;
    group.append(name, ns);
    children.push(group);
  }
  root.replaceChildren(...children);
}
async function refreshGraph(): Promise<void> {
  drawGraph(await client.getMeshGraph({}));
}

// ---- explain ------------------------------------------------------------------------------------
function renderExplain(r: ExplainResponse): void {
  const out: Node[] = [el("div", { text: `${r.outcome}: ${r.summary}`, cls: `outcome ${r.outcome}` })];
  for (const h of r.hops) {
    out.push(el("div", { text: `${h.mode} at ${h.proxy}`, cls: "hop" }));
    const ol = el("ol");
    for (const s of h.steps) {
      const li = el("li", {}, el("span", { text: s.step, cls: "step" }), document.createTextNode(s.detail));
      for (const c of s.config)
        li.append(
          el("div", {
            text: `← ${c.kind} ${c.namespace}/${c.name}${c.file ? ` (${c.file}:${c.line})` : ""}`,
            cls: "ref",
          }),
        );
      ol.append(li);
    }
    if (h.error) ol.append(el("li", { text: `stop: ${h.error}`, cls: "error-text" }));
    out.push(ol);
  }
  out.push(el("p", { text: `config v${r.configVersion}`, cls: "muted" }));
  $("explain").replaceChildren(...out);
}
$("explain-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = (id: string) => ($(id) as HTMLInputElement).value.trim();
  const headers: Record<string, string> = {};
  for (const part of value("explain-headers").split(/[;\n]/)) {
    const i = part.indexOf(":");
    if (i > 0) headers[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim();
  }
  client
    .explain({
      proxy: value("explain-proxy"),
      to: value("explain-to"),
      method: value("explain-method"),
      path: value("explain-path"),
      headers,
    })
    .then(renderExplain)
    .catch((error) =>
      $("explain").replaceChildren(el("p", { text: ConnectError.from(error).rawMessage, cls: "error-text" })),
    );
});

// ---- wiring -------------------------------------------------------------------------------------
$("config-type").addEventListener("change", () => void loadConfig());
$("config-search").addEventListener("input", renderConfig);
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, ($("token") as HTMLInputElement).value);
  $("token-form").hidden = true;
  void refreshProxies().catch(onError);
});
const every = (ms: number, fn: () => Promise<void>) => {
  const tick = () =>
    void fn()
      .catch(onError)
      .finally(() => setTimeout(tick, ms));
  tick();
};
every(3000, refreshProxies);
every(5000, refreshGraph);
void watchEvents();
