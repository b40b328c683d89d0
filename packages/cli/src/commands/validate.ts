import { relative } from "node:path";
import { formatDiagnostic, KindRegistry, validateFiles } from "@meshlet/config";
import { registerPolicyRules } from "@meshlet/policy/config-rules";
import type { Command, CommandIo } from "../command.js";

const USAGE = `Usage: meshlet validate <files or directories…> [options]

Validates Istio and Kubernetes YAML/JSON config, like istioctl analyze.

Options:
  --output, -o text|json      Output format (default text: file:line:column code message).
  --no-warnings               Print errors only.
  --default-namespace <ns>    Namespace for resources written without one (default "default").

Exit status: 0 when there are no errors, 1 when there are errors, 2 on usage errors.`;

/** `meshlet validate`: the `istioctl analyze` for CI. */
export const command: Command = {
  name: "validate",
  summary: "Validate Istio and Kubernetes YAML/JSON config, like istioctl analyze.",
  usage: USAGE,
  run: runValidate,
};

async function runValidate(args: readonly string[], io: CommandIo): Promise<number> {
  const out = (line: string) => io.out(line);
  const err = (line: string) => io.err(line);
  const paths: string[] = [];
  let format = "text";
  let warnings = true;
  let defaultNamespace: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "-o" || arg === "--output") format = args[++i] ?? "";
    else if (arg.startsWith("--output=")) format = arg.slice("--output=".length);
    else if (arg === "--no-warnings") warnings = false;
    else if (arg === "--default-namespace") defaultNamespace = args[++i];
    else if (arg === "-h" || arg === "--help") {
      out(USAGE);
      return 0;
    } else if (arg.startsWith("-")) {
      err(`meshlet validate: unknown option ${arg}\n\n${USAGE}`);
      return 2;
    } else paths.push(arg);
  }
  if (format !== "text" && format !== "json") {
    err(`meshlet validate: --output must be text or json, got "${format}"`);
    return 2;
  }
  if (paths.length === 0) {
    err(`meshlet validate: name at least one file or directory\n\n${USAGE}`);
    return 2;
  }
  // Istio's kinds and rules, plus the rules of meshlet's own extensions that the engines enforce
  // (@meshlet/policy's CEL condition annotation), so validate refuses what `serve` would refuse.
  // They run inside config's validation, so each finding keeps its file:line:column.
  const registry = registerPolicyRules(new KindRegistry());
  const result = await validateFiles(paths, {
    registry,
    ...(defaultNamespace !== undefined ? { defaultNamespace } : {}),
  });
  const cwd = process.cwd();
  const shown = result.diagnostics
    .filter((d) => warnings || d.severity === "error")
    .map((d) => (d.file !== undefined ? { ...d, file: relative(cwd, d.file) || d.file } : d));
  if (format === "json") {
    out(
      JSON.stringify(
        {
          files: result.files,
          resources: result.snapshot.size,
          errors: result.errors,
          warnings: result.warnings,
          diagnostics: shown,
        },
        null,
        2,
      ),
    );
  } else {
    for (const d of shown) out(formatDiagnostic(d));
    err(
      `${result.snapshot.size} resources in ${result.files} files: ${result.errors} errors, ${result.warnings} warnings`,
    );
  }
  return result.errors > 0 ? 1 : 0;
}
