import type { Event } from "@meshlet/api/meshlet/admin/v1/admin_pb";

/** An event of the feed as a person reads it: a short kind and one line of text. */
export interface EventText {
  /** `push`, `nack`, `config`/`analysis` (diagnostics, by origin), `cert`, `denial`, `proxy`, `dropped`. */
  readonly kind: string;
  readonly text: string;
}

/**
 * One line for a WatchEvents event, as the console's feed and `meshlet events` print it. No Node
 * or DOM dependency: the console bundles it.
 */
export function describeEvent(e: Event): EventText {
  const ev = e.event;
  switch (ev.case) {
    case "push": {
      const p = ev.value;
      const why = p.configs.length > 0 ? ` (${p.configs.join(", ")})` : "";
      return {
        kind: "push",
        text: `${p.cause}${why} → ${p.proxies.length} proxies, ${p.resourcesChanged} resources, ${p.durationMs.toFixed(0)} ms, config v${p.configVersion}`,
      };
    }
    case "nack":
      return {
        kind: "nack",
        text: `${ev.value.proxy} rejected ${ev.value.typeUrl.split(".").pop()} ${ev.value.rejectedVersion}: ${ev.value.error}`,
      };
    case "diagnostic": {
      const d = ev.value.diagnostic;
      const where = d?.file ? `${d.file}:${d.line} ` : "";
      return {
        kind: ev.value.origin,
        text: `${ev.value.resolved ? "resolved: " : ""}${where}${d?.code} ${d?.message}`,
      };
    }
    case "certificate":
      return { kind: "cert", text: `${ev.value.kind} ${ev.value.identity} ${ev.value.detail}`.trim() };
    case "policyDenial":
      return {
        kind: "denial",
        text: `${ev.value.status} ${ev.value.method} ${ev.value.host}${ev.value.path} (${ev.value.reason}${ev.value.policy ? `, ${ev.value.policy}` : ""})`,
      };
    case "proxy":
      return {
        kind: "proxy",
        text: ev.value.refused
          ? `refused ${ev.value.proxy}: ${ev.value.refused}`
          : `${ev.value.connected ? "connected" : "left"} ${ev.value.proxy}`,
      };
    case "dropped":
      return { kind: "dropped", text: `${ev.value.count} events dropped (read too slowly)` };
    default:
      return { kind: "?", text: "" };
  }
}
