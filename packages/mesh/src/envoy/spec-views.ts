import type { GatewayServer } from "../config-access.js";

// Typed views of the Istio spec fields the Envoy generators read that @meshlet/config's schemas may
// declare loosely (its schemas keep unknown fields; a typed-CRD version is on its way). Each view
// reads a field only when it has the documented JSON type, so the generators see Istio's shape or
// nothing, never a value of the wrong type.

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === "boolean" ? v : undefined);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** Istio `ServerTLSSettings` (networking.istio.io Gateway `servers[].tls`). */
export interface ServerTlsView {
  readonly mode:
    | "PASSTHROUGH"
    | "SIMPLE"
    | "MUTUAL"
    | "AUTO_PASSTHROUGH"
    | "ISTIO_MUTUAL"
    | "OPTIONAL_MUTUAL";
  readonly httpsRedirect: boolean;
  readonly credentialName?: string;
  readonly serverCertificate?: string;
  readonly subjectAltNames: readonly string[];
  readonly verifyCertificateSpki: readonly string[];
  readonly verifyCertificateHash: readonly string[];
  readonly minProtocolVersion?: string;
  readonly maxProtocolVersion?: string;
  readonly cipherSuites: readonly string[];
}

const TLS_MODES = new Set([
  "PASSTHROUGH",
  "SIMPLE",
  "MUTUAL",
  "AUTO_PASSTHROUGH",
  "ISTIO_MUTUAL",
  "OPTIONAL_MUTUAL",
]);

/** The TLS settings of a Gateway server, or undefined when it has none; an unset mode is PASSTHROUGH, the proto's zero value. */
export function serverTls(server: GatewayServer): ServerTlsView | undefined {
  const raw = (server as { tls?: unknown }).tls;
  if (raw === undefined || raw === null || typeof raw !== "object") return undefined;
  const t = raw as Record<string, unknown>;
  const mode = str(t.mode);
  const credentialName = str(t.credentialName);
  const serverCertificate = str(t.serverCertificate);
  const minProtocolVersion = str(t.minProtocolVersion);
  const maxProtocolVersion = str(t.maxProtocolVersion);
  return {
    // Istio's ServerTLSSettings.TLSmode zero value is PASSTHROUGH.
    mode: (mode !== undefined && TLS_MODES.has(mode) ? mode : "PASSTHROUGH") as ServerTlsView["mode"],
    httpsRedirect: bool(t.httpsRedirect) ?? false,
    ...(credentialName !== undefined ? { credentialName } : {}),
    ...(serverCertificate !== undefined ? { serverCertificate } : {}),
    subjectAltNames: strings(t.subjectAltNames),
    verifyCertificateSpki: strings(t.verifyCertificateSpki),
    verifyCertificateHash: strings(t.verifyCertificateHash),
    ...(minProtocolVersion !== undefined ? { minProtocolVersion } : {}),
    ...(maxProtocolVersion !== undefined ? { maxProtocolVersion } : {}),
    cipherSuites: strings(t.cipherSuites),
  };
}

/** Istio `Port` of a Gateway server. */
export interface ServerPortView {
  readonly number: number;
  readonly protocol: string;
  readonly name: string;
  readonly targetPort?: number;
}

/** The port of a Gateway server. */
export function serverPort(server: GatewayServer): ServerPortView {
  const p = (server as { port?: Record<string, unknown> }).port ?? {};
  const targetPort = typeof p.targetPort === "number" ? p.targetPort : undefined;
  return {
    number: typeof p.number === "number" ? p.number : 0,
    protocol: str(p.protocol) ?? "",
    name: str(p.name) ?? "",
    ...(targetPort !== undefined ? { targetPort } : {}),
  };
}

/** The hosts of a Gateway server (`namespace/host` or `host`). */
export function serverHosts(server: GatewayServer): string[] {
  return strings((server as { hosts?: unknown }).hosts);
}

/** The optional `bind` and `name` of a Gateway server. */
export function serverBindAndName(server: GatewayServer): { bind?: string; name?: string } {
  const s = server as { bind?: unknown; name?: unknown };
  const bind = str(s.bind);
  const name = str(s.name);
  return {
    ...(bind !== undefined && bind !== "" ? { bind } : {}),
    ...(name !== undefined && name !== "" ? { name } : {}),
  };
}
