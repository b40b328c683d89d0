import {
  defaultValues,
  KubeError,
  type KubeObject,
  renderManifests,
  toJsonList,
  toYamlDocuments,
  VALUE_KEYS,
  validateManifests,
  valuesFromSets,
} from "@meshlet/kube";
import { type Command, type CommandIo, EXIT_USAGE } from "../command.js";

const USAGE = `Usage: meshlet manifest generate [--set key=value …] [-o yaml|json]

Renders the Kubernetes manifests of the reference mesh, like istioctl manifest generate:
namespace, service account and least-privilege RBAC, meshletd (Deployment, Service, PodDisruptionBudget,
HorizontalPodAutoscaler, config), the sidecar-injection and validation webhook configurations, and
the ingress gateway (Istio's proxy in router mode behind a LoadBalancer). Istio's CRDs are not
included: install them from Istio's base chart first (docs/aks.md).

Options:
  --set key=value    Set a value; repeat for several (meshletd.replicas=3,
                     gateway.service.azureInternal=true, global.imagePullSecrets=a,b).
  -o, --output       yaml (default: multi-document YAML) or json (a v1 List).
  --list-values      Print every key --set accepts, with its default, and exit.

Exit status: 0 rendered, 1 the rendered objects fail Kubernetes' schema check, 2 usage errors.`;

/** `meshlet manifest generate`: the reference mesh's manifests for a cluster. */
export const command: Command = {
  name: "manifest",
  summary: "Render the Kubernetes manifests of the reference mesh (manifest generate).",
  usage: USAGE,
  run: runManifest,
};

function defaultOf(key: string): string {
  let node: unknown = defaultValues();
  for (const part of key.split(".")) node = (node as Record<string, unknown>)[part];
  if (Array.isArray(node)) return node.join(",");
  if (typeof node === "object" && node !== null) {
    return Object.entries(node)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(",");
  }
  return String(node);
}

async function runManifest(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help") {
    io.out(USAGE);
    return sub === undefined ? EXIT_USAGE : 0;
  }
  if (sub !== "generate") {
    io.err(`meshlet manifest: unknown subcommand "${sub}"\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const sets: string[] = [];
  let format = "yaml";
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--set") {
      const value = rest[++i];
      if (value === undefined) {
        io.err("meshlet manifest generate: --set needs key=value");
        return EXIT_USAGE;
      }
      sets.push(value);
    } else if (arg.startsWith("--set=")) sets.push(arg.slice("--set=".length));
    else if (arg === "-o" || arg === "--output") format = rest[++i] ?? "";
    else if (arg.startsWith("--output=")) format = arg.slice("--output=".length);
    else if (arg === "--list-values") {
      for (const key of VALUE_KEYS) io.out(`${key}=${defaultOf(key)}`);
      return 0;
    } else if (arg === "-h" || arg === "--help") {
      io.out(USAGE);
      return 0;
    } else {
      io.err(`meshlet manifest generate: unknown option ${arg}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
  }
  if (format !== "yaml" && format !== "json") {
    io.err(`meshlet manifest generate: --output must be yaml or json, got "${format}"`);
    return EXIT_USAGE;
  }
  let objects: KubeObject[];
  try {
    objects = renderManifests(valuesFromSets(sets));
  } catch (error) {
    if (error instanceof KubeError) {
      io.err(`meshlet manifest generate: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }
  const problems = validateManifests(objects);
  if (problems.length > 0) {
    for (const p of problems) io.err(`meshlet manifest generate: invalid manifest: ${p}`);
    return 1;
  }
  const text = format === "json" ? toJsonList(objects) : toYamlDocuments(objects);
  io.out(text.replace(/\n$/, ""));
  return 0;
}
