import { X509Certificate } from "node:crypto";

// Tables of an Envoy config dump (proto3 JSON with proto field names, as GetProxyConfig and Envoy's
// /config_dump give it), with istioctl proxy-config's columns (istio/istio
// istioctl/pkg/writer/envoy/configdump/{cluster,listener,route,endpoint}.go and its testdata).

// biome-ignore lint/suspicious/noExplicitAny: the dump is JSON of many Envoy types, read defensively.
type Json = any;

/** The part of a config dump kind `proxy-config` shows. */
export type DumpKind = "listeners" | "routes" | "clusters" | "endpoints" | "secrets";

const DUMP_TYPE: Readonly<Record<DumpKind, string>> = {
  listeners: "envoy.admin.v3.ListenersConfigDump",
  routes: "envoy.admin.v3.RoutesConfigDump",
  clusters: "envoy.admin.v3.ClustersConfigDump",
  endpoints: "envoy.admin.v3.EndpointsConfigDump",
  secrets: "envoy.admin.v3.SecretsConfigDump",
};

/** The resources of one kind in a dump (what `-o json` prints, as istioctl does). */
export function dumpResources(dump: Json, kind: DumpKind): Json[] {
  const part = (dump?.configs ?? []).find((c: Json) => String(c?.["@type"] ?? "").endsWith(DUMP_TYPE[kind]));
  if (part === undefined) return [];
  switch (kind) {
    case "listeners":
      return (part.dynamic_listeners ?? []).map((l: Json) => l.active_state?.listener).filter(Boolean);
    case "routes":
      return (part.dynamic_route_configs ?? []).map((r: Json) => r.route_config).filter(Boolean);
    case "clusters":
      return (part.dynamic_active_clusters ?? []).map((c: Json) => c.cluster).filter(Boolean);
    case "endpoints":
      return (part.dynamic_endpoint_configs ?? []).map((e: Json) => e.endpoint_config).filter(Boolean);
    case "secrets":
      return (part.dynamic_active_secrets ?? []).map((s: Json) => s.secret).filter(Boolean);
  }
}

/** `istio.config` metadata (`/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>`) as istioctl shows it: `<name>.<ns>`. */
function istioConfig(metadata: Json): string {
  const path: string | undefined = metadata?.filter_metadata?.istio?.config;
  const m = path === undefined ? null : /\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(path);
  return m === null ? "" : `${m[2]}.${m[1]}`;
}

/** The rows of `proxy-config <kind>`, header first. */
export function dumpTable(dump: Json, kind: DumpKind, now = Date.now()): string[][] {
  const resources = dumpResources(dump, kind);
  switch (kind) {
    case "clusters": {
      const rows = [["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]];
      for (const c of resources) {
        const type = c.type ?? c.cluster_type?.name ?? "STATIC";
        const parts = String(c.name).split("|");
        if (parts.length === 4) {
          const [direction, port, subset, fqdn] = parts as [string, string, string, string];
          rows.push([fqdn, port, subset === "" ? "-" : subset, direction, type, istioConfig(c.metadata)]);
        } else rows.push([c.name, "-", "-", "-", type, istioConfig(c.metadata)]);
      }
      return rows;
    }
    case "listeners": {
      const rows = [["NAME", "ADDRESSES", "PORT", "TYPE", "DESTINATION"]];
      for (const l of resources) {
        const sa = l.address?.socket_address;
        const hcm = l.api_listener?.api_listener ?? findHcm(l);
        const tcp = findFilter(l, "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
        const type =
          l.api_listener !== undefined ? "API" : hcm !== undefined ? "HTTP" : tcp !== undefined ? "TCP" : "-";
        const destination =
          hcm?.rds?.route_config_name !== undefined
            ? `Route: ${hcm.rds.route_config_name}`
            : hcm?.route_config !== undefined
              ? `Inline Route: ${hcm.route_config.name ?? ""}`.trimEnd()
              : tcp?.cluster !== undefined
                ? `Cluster: ${tcp.cluster}`
                : "-";
        rows.push([
          l.name,
          sa?.address ?? "-",
          sa?.port_value !== undefined ? String(sa.port_value) : "-",
          type,
          destination,
        ]);
      }
      return rows;
    }
    case "routes": {
      const rows = [["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]];
      for (const rc of resources) {
        for (const vh of rc.virtual_hosts ?? []) {
          const domains: string[] = vh.domains ?? [];
          const shown =
            domains.length > 1 ? `${domains[0]} + ${domains.length - 1} more...` : (domains[0] ?? "");
          for (const r of vh.routes ?? []) {
            rows.push([
              rc.name ?? "",
              vh.name ?? "",
              shown,
              matchText(r.match),
              istioConfig(r.metadata) || "-",
            ]);
          }
        }
      }
      return rows;
    }
    case "endpoints": {
      const rows = [["ENDPOINT", "STATUS", "LOCALITY", "CLUSTER"]];
      for (const cla of resources) {
        for (const group of cla.endpoints ?? []) {
          const loc = group.locality;
          const locality = loc ? [loc.region, loc.zone, loc.sub_zone].filter(Boolean).join("/") : "";
          for (const e of group.lb_endpoints ?? []) {
            const sa = e.endpoint?.address?.socket_address;
            const pipe = e.endpoint?.address?.pipe?.path;
            rows.push([
              sa ? `${sa.address}:${sa.port_value ?? 0}` : (pipe ?? "-"),
              e.health_status ?? "UNKNOWN",
              locality,
              cla.cluster_name ?? "",
            ]);
          }
        }
      }
      return rows;
    }
    case "secrets": {
      const rows = [
        ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
      ];
      for (const s of resources) {
        const chain = s.tls_certificate?.certificate_chain;
        const ca = s.validation_context?.trusted_ca;
        const source = chain ?? ca;
        const cert = source !== undefined ? firstCertificate(source) : undefined;
        rows.push([
          s.name ?? "",
          chain !== undefined ? "Cert Chain" : ca !== undefined ? "CA" : "-",
          "ACTIVE",
          cert !== undefined
            ? String(Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo))
            : "false",
          cert?.serialNumber.toLowerCase().replace(/^0+(?=.)/, "") ?? "",
          cert !== undefined ? iso(cert.validTo) : "",
          cert !== undefined ? iso(cert.validFrom) : "",
        ]);
      }
      return rows;
    }
  }
}

function iso(date: string): string {
  return new Date(date).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function firstCertificate(source: Json): X509Certificate | undefined {
  const pem =
    source.inline_bytes !== undefined
      ? Buffer.from(source.inline_bytes, "base64").toString("utf8")
      : (source.inline_string as string | undefined);
  if (pem === undefined) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function findFilter(listener: Json, typeSuffix: string): Json | undefined {
  for (const fc of listener.filter_chains ?? []) {
    for (const f of fc.filters ?? []) {
      if (String(f.typed_config?.["@type"] ?? "").endsWith(typeSuffix)) return f.typed_config;
    }
  }
  return undefined;
}

function findHcm(listener: Json): Json | undefined {
  return findFilter(
    listener,
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
}

function matchText(match: Json): string {
  if (match === undefined) return "-";
  if (match.prefix !== undefined) return `${match.prefix}*`;
  if (match.path !== undefined) return match.path;
  if (match.safe_regex?.regex !== undefined) return match.safe_regex.regex;
  if (match.path_separated_prefix !== undefined) return `${match.path_separated_prefix}/*`;
  return "-";
}
