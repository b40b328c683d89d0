import { isIP } from "node:net";
import { parseQuantity } from "../quantity.js";
import { parseProxyConfig } from "./proxy-config.js";

/** The pod annotations and labels the injector reads (names from istio/api `annotation` and `label`). */
export const Annotation = {
  inject: "sidecar.istio.io/inject",
  templates: "inject.istio.io/templates",
  status: "sidecar.istio.io/status",
  proxyConfig: "proxy.istio.io/config",
  overrides: "proxy.istio.io/overrides",
  proxyImage: "sidecar.istio.io/proxyImage",
  proxyCPU: "sidecar.istio.io/proxyCPU",
  proxyMemory: "sidecar.istio.io/proxyMemory",
  proxyCPULimit: "sidecar.istio.io/proxyCPULimit",
  proxyMemoryLimit: "sidecar.istio.io/proxyMemoryLimit",
  interceptionMode: "sidecar.istio.io/interceptionMode",
  logLevel: "sidecar.istio.io/logLevel",
  componentLogLevel: "sidecar.istio.io/componentLogLevel",
  agentLogLevel: "sidecar.istio.io/agentLogLevel",
  enableCoreDump: "sidecar.istio.io/enableCoreDump",
  capNetBindService: "sidecar.istio.io/capNetBindService",
  bootstrapOverride: "sidecar.istio.io/bootstrapOverride",
  userVolume: "sidecar.istio.io/userVolume",
  userVolumeMount: "sidecar.istio.io/userVolumeMount",
  rewriteAppHTTPProbers: "sidecar.istio.io/rewriteAppHTTPProbers",
  statusPort: "status.sidecar.istio.io/port",
  readinessInitialDelaySeconds: "readiness.status.sidecar.istio.io/initialDelaySeconds",
  readinessPeriodSeconds: "readiness.status.sidecar.istio.io/periodSeconds",
  readinessFailureThreshold: "readiness.status.sidecar.istio.io/failureThreshold",
  includeOutboundIPRanges: "traffic.sidecar.istio.io/includeOutboundIPRanges",
  excludeOutboundIPRanges: "traffic.sidecar.istio.io/excludeOutboundIPRanges",
  includeInboundPorts: "traffic.sidecar.istio.io/includeInboundPorts",
  excludeInboundPorts: "traffic.sidecar.istio.io/excludeInboundPorts",
  includeOutboundPorts: "traffic.sidecar.istio.io/includeOutboundPorts",
  excludeOutboundPorts: "traffic.sidecar.istio.io/excludeOutboundPorts",
  kubevirtInterfaces: "traffic.sidecar.istio.io/kubevirtInterfaces",
  excludeInterfaces: "traffic.sidecar.istio.io/excludeInterfaces",
  prometheusMergeMetrics: "prometheus.istio.io/merge-metrics",
  defaultContainer: "kubectl.kubernetes.io/default-container",
  defaultLogsContainer: "kubectl.kubernetes.io/default-logs-container",
} as const;

/** Labels the injector reads or sets. */
export const Label = {
  inject: "sidecar.istio.io/inject",
  rev: "istio.io/rev",
  tlsMode: "security.istio.io/tlsMode",
  canonicalName: "service.istio.io/canonical-name",
  canonicalRevision: "service.istio.io/canonical-revision",
  network: "topology.istio.io/network",
} as const;

const LOG_LEVELS = ["trace", "debug", "info", "warning", "warn", "error", "critical", "off"];
const SCOPED_LOG_LEVELS =
  /^[a-zA-Z0-9_.-]+:(trace|debug|info|warning|warn|error|critical|off|none)(,[a-zA-Z0-9_.-]+:(trace|debug|info|warning|warn|error|critical|off|none))*$/;
// Linux interface names: at most 15 characters, no whitespace, '/' or ','; a strict set so a value
// can only ever be one iptables argument (istio 1.30 validates excludeInterfaces the same way).
const INTERFACE = /^[a-zA-Z0-9_.@-]{1,15}$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

type Check = (value: string) => string | undefined;

const list = (value: string): string[] =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

const ports: Check = (value) => {
  for (const p of list(value)) {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) return `"${p}" is not a port (1-65535)`;
  }
  return undefined;
};
const portsOrStar: Check = (value) => (value.trim() === "*" ? undefined : ports(value));
const cidrs: Check = (value) => {
  for (const c of list(value)) {
    const [ip = "", prefix, extra] = c.split("/");
    const family = isIP(ip);
    const max = family === 4 ? 32 : 128;
    if (
      family === 0 ||
      extra !== undefined ||
      (prefix !== undefined && !/^\d+$/.test(prefix)) ||
      Number(prefix ?? 0) > max
    ) {
      return `"${c}" is not an IP address or CIDR range`;
    }
  }
  return undefined;
};
const cidrsOrStar: Check = (value) => (value.trim() === "*" ? undefined : cidrs(value));
const uint32: Check = (value) =>
  /^\d+$/.test(value) && Number(value) <= 4294967295 ? undefined : `"${value}" is not a non-negative integer`;
const port0: Check = (value) =>
  /^\d+$/.test(value) && Number(value) <= 65535 ? undefined : `"${value}" is not a port (0 disables)`;
const bool: Check = (value) =>
  ["true", "false"].includes(value.toLowerCase()) ? undefined : `"${value}" must be true or false`;
const quantity: Check = (value) => {
  try {
    parseQuantity(value);
    return undefined;
  } catch {
    return `"${value}" is not a Kubernetes quantity (examples: 100m, 2, 128Mi)`;
  }
};
const interfaces: Check = (value) => {
  for (const name of list(value))
    if (!INTERFACE.test(name)) return `"${name}" is not a network interface name`;
  return undefined;
};
const jsonObject: Check = (value) => {
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? undefined
      : "must be a JSON object keyed by volume name";
  } catch {
    return "is not valid JSON";
  }
};

const CHECKS: ReadonlyArray<readonly [string, Check]> = [
  [
    Annotation.interceptionMode,
    (v) =>
      ["REDIRECT", "TPROXY", "NONE"].includes(v) ? undefined : `"${v}" must be REDIRECT, TPROXY or NONE`,
  ],
  [Annotation.includeOutboundIPRanges, cidrsOrStar],
  [Annotation.excludeOutboundIPRanges, cidrs],
  [Annotation.includeInboundPorts, portsOrStar],
  [Annotation.excludeInboundPorts, ports],
  [Annotation.includeOutboundPorts, ports],
  [Annotation.excludeOutboundPorts, ports],
  [Annotation.kubevirtInterfaces, interfaces],
  [Annotation.excludeInterfaces, interfaces],
  [Annotation.statusPort, port0],
  [Annotation.readinessInitialDelaySeconds, uint32],
  [Annotation.readinessPeriodSeconds, uint32],
  [Annotation.readinessFailureThreshold, uint32],
  [Annotation.prometheusMergeMetrics, bool],
  [Annotation.rewriteAppHTTPProbers, bool],
  [Annotation.enableCoreDump, bool],
  [Annotation.capNetBindService, bool],
  [Annotation.proxyCPU, quantity],
  [Annotation.proxyMemory, quantity],
  [Annotation.proxyCPULimit, quantity],
  [Annotation.proxyMemoryLimit, quantity],
  [
    Annotation.logLevel,
    (v) => (LOG_LEVELS.includes(v) ? undefined : `"${v}" must be one of ${LOG_LEVELS.join(", ")}`),
  ],
  [
    Annotation.componentLogLevel,
    (v) => (SCOPED_LOG_LEVELS.test(v) ? undefined : `"${v}" must read component:level[,component:level…]`),
  ],
  [
    Annotation.agentLogLevel,
    (v) => (SCOPED_LOG_LEVELS.test(v) ? undefined : `"${v}" must read scope:level[,scope:level…]`),
  ],
  [
    Annotation.proxyImage,
    (v) => (/^[^\s]+$/.test(v) ? undefined : "must be an image reference without spaces"),
  ],
  [
    Annotation.bootstrapOverride,
    (v) => (DNS1123_SUBDOMAIN.test(v) ? undefined : `"${v}" is not a ConfigMap name`),
  ],
  [Annotation.userVolume, jsonObject],
  [Annotation.userVolumeMount, jsonObject],
  [
    Annotation.proxyConfig,
    (v) => {
      const { errors } = parseProxyConfig(v);
      return errors.length > 0 ? errors.join("; ") : undefined;
    },
  ],
];

/**
 * Checks the injection annotations a pod carries, as Istio's `validateAnnotations` does before it
 * renders a template: each value goes into the proxy's arguments or iptables rules, so a value
 * that is not what the annotation means stops injection (the pod is then admitted as it is, with
 * a warning). Returns one message per bad annotation, naming it.
 */
export function validateAnnotations(annotations: Readonly<Record<string, string>> = {}): string[] {
  const problems: string[] = [];
  for (const [name, check] of CHECKS) {
    const value = annotations[name];
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== undefined) problems.push(`annotation ${name}: ${problem}`);
  }
  return problems;
}
