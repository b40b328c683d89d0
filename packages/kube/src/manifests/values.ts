import {
  DEFAULT_ISTIO_HUB,
  DEFAULT_ISTIO_PROXY_VERSION,
  SUPPORTED_ISTIO_PROXY_VERSIONS,
} from "../istio-proxy-versions.js";
import { KubeError } from "../kube-error.js";
import { parseQuantity } from "../quantity.js";

/** CPU and memory for a container. */
export interface ResourceValues {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/**
 * Everything `renderManifests` reads, with defaults: the meshlet equivalent of Istio's Helm values,
 * set with `meshlet manifest generate --set <path>=<value>` (paths are listed by `VALUE_KEYS`).
 */
export interface MeshletValues {
  /** Where meshletd runs. */
  namespace: string;
  /** `istio.io/rev` this control plane answers; `""` is the default revision. */
  revision: string;
  global: {
    /** Image registry of Istio's proxy (`docker.io/istio`, or your ACR mirror). */
    hub: string;
    /** The `proxyv2` tag: one of the supported Istio proxy versions. */
    proxyVersion: string;
    trustDomain: string;
    clusterDomain: string;
    /** `ISTIO_META_CLUSTER_ID`. */
    clusterId: string;
    meshId: string;
    network: string;
    imagePullSecrets: string[];
    imagePullPolicy: "" | "Always" | "IfNotPresent" | "Never";
    logLevel: "debug" | "info" | "warn" | "error";
  };
  meshletd: {
    /** The meshletd image (built from examples/reference-mesh/aks/Dockerfile.meshletd and pushed to your registry). */
    image: string;
    replicas: number;
    resources: ResourceValues;
    autoscale: { enabled: boolean; min: number; max: number; targetCPUUtilizationPercentage: number };
    podDisruptionBudget: { minAvailable: number };
    priorityClassName: string;
    nodeSelector: Record<string, string>;
  };
  proxy: {
    resources: ResourceValues;
    logLevel: string;
    componentLogLevel: string;
    holdApplicationUntilProxyStarts: boolean;
    includeIPRanges: string;
    excludeIPRanges: string;
    excludeInboundPorts: string;
    excludeOutboundPorts: string;
  };
  injection: {
    enabled: boolean;
    /** `Ignore`: a meshletd outage never blocks pod creation (pods start without a sidecar). */
    failurePolicy: "Ignore" | "Fail";
    timeoutSeconds: number;
    rewriteAppHTTPProbe: boolean;
    /** base64 PEM of the CA that signs the webhook certificate; empty: meshletd patches it in. */
    caBundle: string;
  };
  validation: {
    enabled: boolean;
    /** `Ignore` until meshletd serves, as Istio's validator starts; `Fail` refuses config while meshletd is down. */
    failurePolicy: "Ignore" | "Fail";
    timeoutSeconds: number;
    caBundle: string;
  };
  ca: {
    /** `self-signed`: meshletd's own root, kept in Secret istio-ca-secret. `plugged`: Secret cacerts (Istio's plug-in CA). `vault`: Vault PKI. */
    mode: "self-signed" | "plugged" | "vault";
    /**
     * `role` signs workload SVIDs (URI SAN only); `servingRole` signs meshletd's own serving
     * certificates (its SPIFFE ID and DNS names meshletd.<ns>.svc, istiod.istio-system.svc).
     */
    vault: {
      address: string;
      pkiMount: string;
      role: string;
      servingRole: string;
      authMount: string;
      authRole: string;
    };
  };
  telemetry: {
    /** OpenTelemetry collector for traces (`host:port`, OTLP/gRPC); empty: tracing off. */
    otelCollector: string;
    samplingPercentage: number;
  };
  gateway: {
    enabled: boolean;
    name: string;
    namespace: string;
    replicas: number;
    resources: ResourceValues;
    autoscale: { enabled: boolean; min: number; max: number; targetCPUUtilizationPercentage: number };
    service: {
      type: "LoadBalancer" | "NodePort" | "ClusterIP";
      externalTrafficPolicy: "Cluster" | "Local";
      /** `service.beta.kubernetes.io/azure-load-balancer-internal`. */
      azureInternal: boolean;
      azureInternalSubnet: string;
      azureResourceGroup: string;
      azurePipName: string;
      azureDnsLabelName: string;
      loadBalancerSourceRanges: string[];
    };
  };
}

/** Defaults: what `meshlet manifest generate` renders with no `--set`. */
export function defaultValues(): MeshletValues {
  return {
    namespace: "meshlet-system",
    revision: "",
    global: {
      hub: DEFAULT_ISTIO_HUB,
      proxyVersion: DEFAULT_ISTIO_PROXY_VERSION,
      trustDomain: "cluster.local",
      clusterDomain: "cluster.local",
      clusterId: "Kubernetes",
      meshId: "",
      network: "",
      imagePullSecrets: [],
      imagePullPolicy: "",
      logLevel: "info",
    },
    meshletd: {
      image: "meshlet/meshletd:0.1.0",
      replicas: 2,
      resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "2", memory: "1Gi" } },
      autoscale: { enabled: true, min: 2, max: 5, targetCPUUtilizationPercentage: 80 },
      podDisruptionBudget: { minAvailable: 1 },
      priorityClassName: "",
      nodeSelector: { "kubernetes.io/os": "linux" },
    },
    proxy: {
      resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } },
      logLevel: "warning",
      componentLogLevel: "misc:error",
      holdApplicationUntilProxyStarts: false,
      includeIPRanges: "*",
      excludeIPRanges: "",
      excludeInboundPorts: "",
      excludeOutboundPorts: "",
    },
    injection: {
      enabled: true,
      failurePolicy: "Ignore",
      timeoutSeconds: 10,
      rewriteAppHTTPProbe: true,
      caBundle: "",
    },
    validation: { enabled: true, failurePolicy: "Ignore", timeoutSeconds: 10, caBundle: "" },
    ca: {
      mode: "self-signed",
      vault: {
        address: "",
        pkiMount: "pki_int",
        role: "meshlet-workloads",
        servingRole: "meshletd-serving",
        authMount: "kubernetes",
        authRole: "meshletd",
      },
    },
    telemetry: { otelCollector: "", samplingPercentage: 1 },
    gateway: {
      enabled: true,
      name: "istio-ingressgateway",
      namespace: "istio-ingress",
      replicas: 2,
      resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } },
      autoscale: { enabled: true, min: 2, max: 5, targetCPUUtilizationPercentage: 80 },
      service: {
        type: "LoadBalancer",
        externalTrafficPolicy: "Cluster",
        azureInternal: false,
        azureInternalSubnet: "",
        azureResourceGroup: "",
        azurePipName: "",
        azureDnsLabelName: "",
        loadBalancerSourceRanges: [],
      },
    },
  };
}

type ValueKind =
  | { kind: "string"; pattern?: RegExp; hint?: string }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "int"; min: number; max: number }
  | { kind: "bool" }
  | { kind: "quantity" }
  | { kind: "list"; pattern?: RegExp }
  | { kind: "map" };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CIDR_LIST = /^(\*|([0-9a-fA-F.:]+\/\d{1,3})(,[0-9a-fA-F.:]+\/\d{1,3})*)?$/;
const PORT_LIST = /^(\d{1,5}(,\d{1,5})*)?$/;
const resources = (prefix: string): Array<[string, ValueKind]> => [
  [`${prefix}.requests.cpu`, { kind: "quantity" }],
  [`${prefix}.requests.memory`, { kind: "quantity" }],
  [`${prefix}.limits.cpu`, { kind: "quantity" }],
  [`${prefix}.limits.memory`, { kind: "quantity" }],
];
const autoscale = (prefix: string): Array<[string, ValueKind]> => [
  [`${prefix}.enabled`, { kind: "bool" }],
  [`${prefix}.min`, { kind: "int", min: 1, max: 100 }],
  [`${prefix}.max`, { kind: "int", min: 1, max: 100 }],
  [`${prefix}.targetCPUUtilizationPercentage`, { kind: "int", min: 1, max: 100 }],
];

const SCHEMA: ReadonlyArray<[string, ValueKind]> = [
  ["namespace", { kind: "string", pattern: DNS1123_LABEL, hint: "a DNS-1123 label" }],
  [
    "revision",
    { kind: "string", pattern: /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/, hint: "empty or a DNS-1123 label" },
  ],
  [
    "global.hub",
    {
      kind: "string",
      pattern: /^[^\s:]+(:\d+)?(\/[^\s:]+)*$/,
      hint: "a registry path such as docker.io/istio",
    },
  ],
  ["global.proxyVersion", { kind: "enum", values: SUPPORTED_ISTIO_PROXY_VERSIONS }],
  ["global.trustDomain", { kind: "string", pattern: DOMAIN, hint: "a DNS name such as cluster.local" }],
  ["global.clusterDomain", { kind: "string", pattern: DOMAIN, hint: "a DNS name such as cluster.local" }],
  [
    "global.clusterId",
    { kind: "string", pattern: /^[A-Za-z0-9][-A-Za-z0-9_.]*$/, hint: "letters, digits, '-', '_', '.'" },
  ],
  [
    "global.meshId",
    {
      kind: "string",
      pattern: /^([A-Za-z0-9][-A-Za-z0-9_.]*)?$/,
      hint: "empty, or letters, digits, '-', '_', '.'",
    },
  ],
  [
    "global.network",
    {
      kind: "string",
      pattern: /^([A-Za-z0-9][-A-Za-z0-9_.]*)?$/,
      hint: "empty, or letters, digits, '-', '_', '.'",
    },
  ],
  ["global.imagePullSecrets", { kind: "list", pattern: DOMAIN }],
  ["global.imagePullPolicy", { kind: "enum", values: ["", "Always", "IfNotPresent", "Never"] }],
  ["global.logLevel", { kind: "enum", values: ["debug", "info", "warn", "error"] }],
  ["meshletd.image", { kind: "string", pattern: /^\S+$/, hint: "an image reference" }],
  ["meshletd.replicas", { kind: "int", min: 1, max: 100 }],
  ...resources("meshletd.resources"),
  ...autoscale("meshletd.autoscale"),
  ["meshletd.podDisruptionBudget.minAvailable", { kind: "int", min: 0, max: 100 }],
  [
    "meshletd.priorityClassName",
    { kind: "string", pattern: /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/, hint: "empty or a PriorityClass name" },
  ],
  ["meshletd.nodeSelector", { kind: "map" }],
  ...resources("proxy.resources"),
  [
    "proxy.logLevel",
    { kind: "enum", values: ["trace", "debug", "info", "warning", "error", "critical", "off"] },
  ],
  [
    "proxy.componentLogLevel",
    { kind: "string", pattern: /^[a-z0-9_]+:[a-z]+(,[a-z0-9_]+:[a-z]+)*$/, hint: "component:level[,…]" },
  ],
  ["proxy.holdApplicationUntilProxyStarts", { kind: "bool" }],
  ["proxy.includeIPRanges", { kind: "string", pattern: CIDR_LIST, hint: '"*" or comma-separated CIDRs' }],
  ["proxy.excludeIPRanges", { kind: "string", pattern: CIDR_LIST, hint: "comma-separated CIDRs" }],
  ["proxy.excludeInboundPorts", { kind: "string", pattern: PORT_LIST, hint: "comma-separated ports" }],
  ["proxy.excludeOutboundPorts", { kind: "string", pattern: PORT_LIST, hint: "comma-separated ports" }],
  ["injection.enabled", { kind: "bool" }],
  ["injection.failurePolicy", { kind: "enum", values: ["Ignore", "Fail"] }],
  ["injection.timeoutSeconds", { kind: "int", min: 1, max: 30 }],
  ["injection.rewriteAppHTTPProbe", { kind: "bool" }],
  ["injection.caBundle", { kind: "string", pattern: /^[A-Za-z0-9+/=]*$/, hint: "base64 of a PEM bundle" }],
  ["validation.enabled", { kind: "bool" }],
  ["validation.failurePolicy", { kind: "enum", values: ["Ignore", "Fail"] }],
  ["validation.timeoutSeconds", { kind: "int", min: 1, max: 30 }],
  ["validation.caBundle", { kind: "string", pattern: /^[A-Za-z0-9+/=]*$/, hint: "base64 of a PEM bundle" }],
  ["ca.mode", { kind: "enum", values: ["self-signed", "plugged", "vault"] }],
  [
    "ca.vault.address",
    { kind: "string", pattern: /^(https?:\/\/\S+)?$/, hint: "https://vault.example:8200" },
  ],
  [
    "ca.vault.pkiMount",
    { kind: "string", pattern: /^[A-Za-z0-9_/-]+$/, hint: "a mount path such as pki_int" },
  ],
  ["ca.vault.role", { kind: "string", pattern: /^[A-Za-z0-9_.-]+$/, hint: "a PKI role name" }],
  ["ca.vault.servingRole", { kind: "string", pattern: /^[A-Za-z0-9_.-]+$/, hint: "a PKI role name" }],
  [
    "ca.vault.authMount",
    { kind: "string", pattern: /^[A-Za-z0-9_/-]+$/, hint: "an auth mount such as kubernetes" },
  ],
  [
    "ca.vault.authRole",
    { kind: "string", pattern: /^[A-Za-z0-9_.-]+$/, hint: "a Kubernetes auth role name" },
  ],
  [
    "telemetry.otelCollector",
    { kind: "string", pattern: /^([A-Za-z0-9.-]+:\d{1,5})?$/, hint: "host:port of an OTLP/gRPC collector" },
  ],
  ["telemetry.samplingPercentage", { kind: "int", min: 0, max: 100 }],
  ["gateway.enabled", { kind: "bool" }],
  ["gateway.name", { kind: "string", pattern: DNS1123_LABEL, hint: "a DNS-1123 label" }],
  ["gateway.namespace", { kind: "string", pattern: DNS1123_LABEL, hint: "a DNS-1123 label" }],
  ["gateway.replicas", { kind: "int", min: 1, max: 100 }],
  ...resources("gateway.resources"),
  ...autoscale("gateway.autoscale"),
  ["gateway.service.type", { kind: "enum", values: ["LoadBalancer", "NodePort", "ClusterIP"] }],
  ["gateway.service.externalTrafficPolicy", { kind: "enum", values: ["Cluster", "Local"] }],
  ["gateway.service.azureInternal", { kind: "bool" }],
  [
    "gateway.service.azureInternalSubnet",
    { kind: "string", pattern: /^[A-Za-z0-9._-]*$/, hint: "a subnet name" },
  ],
  [
    "gateway.service.azureResourceGroup",
    { kind: "string", pattern: /^[A-Za-z0-9._()-]*$/, hint: "a resource group name" },
  ],
  [
    "gateway.service.azurePipName",
    { kind: "string", pattern: /^[A-Za-z0-9._-]*$/, hint: "a public IP resource name" },
  ],
  [
    "gateway.service.azureDnsLabelName",
    { kind: "string", pattern: /^([a-z][a-z0-9-]{1,61}[a-z0-9])?$/, hint: "a DNS label" },
  ],
  ["gateway.service.loadBalancerSourceRanges", { kind: "list", pattern: /^[0-9a-fA-F.:]+\/\d{1,3}$/ }],
];
const SCHEMA_BY_KEY = new Map(SCHEMA);

/** Every key `--set` accepts, in the order the values are documented. */
export const VALUE_KEYS: readonly string[] = SCHEMA.map(([key]) => key);

function parseValue(key: string, text: string, kind: ValueKind): unknown {
  const bad = (expected: string) =>
    new KubeError("INVALID_VALUE", `--set ${key}=${text}: expected ${expected}`);
  switch (kind.kind) {
    case "string":
      if (kind.pattern !== undefined && !kind.pattern.test(text))
        throw bad(kind.hint ?? `a value matching ${kind.pattern}`);
      return text;
    case "enum":
      if (!kind.values.includes(text))
        throw bad(`one of ${kind.values.map((v) => (v === "" ? '""' : v)).join(", ")}`);
      return text;
    case "int": {
      if (!/^-?\d+$/.test(text)) throw bad(`an integer from ${kind.min} to ${kind.max}`);
      const n = Number(text);
      if (n < kind.min || n > kind.max) throw bad(`an integer from ${kind.min} to ${kind.max}`);
      return n;
    }
    case "bool":
      if (text !== "true" && text !== "false") throw bad("true or false");
      return text === "true";
    case "quantity":
      try {
        parseQuantity(text);
      } catch {
        throw bad("a Kubernetes quantity such as 500m, 2, 256Mi or 1Gi");
      }
      return text;
    case "list": {
      const items = text === "" ? [] : text.split(",").map((s) => s.trim());
      for (const item of items)
        if (kind.pattern !== undefined && !kind.pattern.test(item))
          throw bad(`a comma-separated list; "${item}" is not valid`);
      return items;
    }
    case "map": {
      const out: Record<string, string> = {};
      if (text === "") return out;
      for (const pair of text.split(",")) {
        const eq = pair.indexOf("=");
        if (eq <= 0) throw bad("comma-separated label=value pairs");
        out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
      }
      return out;
    }
  }
}

/**
 * Sets one value from its `--set` text (`meshletd.replicas=3`, `global.imagePullSecrets=a,b`,
 * `meshletd.nodeSelector=agentpool=system`). Throws `INVALID_VALUE` for an unknown key (listing
 * the valid ones) or a value of the wrong kind (saying what was expected).
 */
export function setValue(values: MeshletValues, key: string, text: string): void {
  const kind = SCHEMA_BY_KEY.get(key);
  if (kind === undefined) {
    throw new KubeError("INVALID_VALUE", `unknown value "${key}"; valid keys:\n  ${VALUE_KEYS.join("\n  ")}`);
  }
  const path = key.split(".");
  let node = values as unknown as Record<string, unknown>;
  for (const part of path.slice(0, -1)) node = node[part] as Record<string, unknown>;
  node[path[path.length - 1] as string] = parseValue(key, text, kind);
}

/** Applies `key=value` strings in order (the part before the first `=` is the key). */
export function valuesFromSets(
  sets: readonly string[],
  base: MeshletValues = defaultValues(),
): MeshletValues {
  const values = structuredClone(base);
  for (const set of sets) {
    const eq = set.indexOf("=");
    if (eq <= 0) throw new KubeError("INVALID_VALUE", `--set ${set}: expected key=value`);
    setValue(values, set.slice(0, eq), set.slice(eq + 1));
  }
  checkValues(values);
  return values;
}

/** Checks what no single value can: limits not below requests, autoscaler min ≤ max, Vault needs an address. */
export function checkValues(values: MeshletValues): void {
  const problems: string[] = [];
  for (const [name, r] of [
    ["meshletd.resources", values.meshletd.resources],
    ["proxy.resources", values.proxy.resources],
    ["gateway.resources", values.gateway.resources],
  ] as const) {
    for (const res of ["cpu", "memory"] as const) {
      if (parseQuantity(r.limits[res]).nanos < parseQuantity(r.requests[res]).nanos) {
        problems.push(
          `${name}.limits.${res} (${r.limits[res]}) is below ${name}.requests.${res} (${r.requests[res]})`,
        );
      }
    }
  }
  for (const [name, a] of [
    ["meshletd.autoscale", values.meshletd.autoscale],
    ["gateway.autoscale", values.gateway.autoscale],
  ] as const) {
    if (a.enabled && a.min > a.max) problems.push(`${name}.min (${a.min}) is above ${name}.max (${a.max})`);
  }
  if (values.ca.mode === "vault" && values.ca.vault.address === "") {
    problems.push("ca.mode=vault needs ca.vault.address (e.g. https://vault.vault.svc:8200)");
  }
  if (problems.length > 0) throw new KubeError("INVALID_VALUE", problems.join("\n"));
}
