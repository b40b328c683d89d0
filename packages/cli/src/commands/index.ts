import type { Command } from "../command.js";

/**
 * Every subcommand, loaded on demand so that a command imports only the packages it needs
 * (`validate` must not load the xDS server). Add a command by adding a file under `commands/` that
 * exports `command` and one line here.
 */
export const commands: ReadonlyArray<{
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}> = [
  {
    name: "validate",
    summary: "Validate Istio and Kubernetes YAML/JSON config, like istioctl analyze.",
    load: async () => (await import("./validate.js")).command,
  },
  {
    name: "explain",
    summary:
      "Explain how a proxy would route a request, step by step, from config files or a running control plane.",
    load: async () => (await import("./explain.js")).command,
  },
  {
    name: "proxy-status",
    summary: "Show the connected proxies and whether each runs the config it was sent (admin API).",
    load: async () => (await import("./proxy-status.js")).command,
  },
  {
    name: "proxy-config",
    summary: "Show the listeners, routes, clusters, endpoints or secrets a proxy was sent (admin API).",
    load: async () => (await import("./proxy-config.js")).command,
  },
  {
    name: "manifest",
    summary: "Render the Kubernetes manifests of the reference mesh (manifest generate).",
    load: async () => (await import("./manifest.js")).command,
  },
  {
    name: "serve",
    summary: "Run the reference control plane (xDS, Istio CA API, SDS, ext_authz, rate limit) from YAML.",
    load: async () => (await import("./serve.js")).command,
  },
];
