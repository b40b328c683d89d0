// Istio's webhook validation for telemetry.istio.io Telemetry and extensions.istio.io WasmPlugin
// (istio/istio pkg/config/validation/validation.go: ValidateTelemetry, ValidateWasmPlugin).
import type { Resource } from "../resource.js";
import { checkPolicyTargets } from "./common-rules.js";
import { arr, Findings, obj, str } from "./findings.js";

function checkProviders(f: Findings, providers: unknown, path: Array<string | number>): void {
  arr(providers).forEach((p, i) => {
    if (str(obj(p).name) === "") f.error([...path, i, "name"], "providers.name may not be empty");
  });
}

/** Rules of Telemetry beyond its schema. */
export function telemetryRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  checkPolicyTargets(f, spec);
  const tracing = arr(spec.tracing);
  if (tracing.length > 1) f.warn(["spec", "tracing"], "multiple tracing is not currently supported");
  tracing.forEach((raw, i) => {
    const t = obj(raw);
    const at = ["spec", "tracing", i];
    if (arr(t.providers).length > 1)
      f.warn([...at, "providers"], "multiple providers is not currently supported");
    checkProviders(f, t.providers, [...at, "providers"]);
    const pct = t.randomSamplingPercentage;
    if (pct !== undefined && (Number(pct) < 0 || Number(pct) > 100))
      f.error([...at, "randomSamplingPercentage"], "randomSamplingPercentage must be in range [0.0, 100.0]");
    for (const [name, tag] of Object.entries(obj(t.customTags))) {
      const tg = obj(tag);
      if (tg.literal !== undefined && str(obj(tg.literal).value) === "")
        f.error([...at, "customTags", name, "literal", "value"], "literal tag value may not be empty");
      if (tg.header !== undefined && str(obj(tg.header).name) === "")
        f.error([...at, "customTags", name, "header", "name"], "header tag name may not be empty");
      if (tg.environment !== undefined && str(obj(tg.environment).name) === "")
        f.error([...at, "customTags", name, "environment", "name"], "environment tag name may not be empty");
    }
  });
  arr(spec.metrics).forEach((raw, i) => {
    const m = obj(raw);
    const at = ["spec", "metrics", i];
    checkProviders(f, m.providers, [...at, "providers"]);
    arr(m.overrides).forEach((o, j) => {
      for (const [tag, raw2] of Object.entries(obj(obj(o).tagOverrides))) {
        const to = obj(raw2);
        const op = str(to.operation) || "UPSERT";
        if (op === "UPSERT" && str(to.value) === "")
          f.error(
            [...at, "overrides", j, "tagOverrides", tag, "value"],
            "tagOverrides.value must be set when operation is UPSERT",
          );
        if (op === "REMOVE" && str(to.value) !== "")
          f.error(
            [...at, "overrides", j, "tagOverrides", tag, "value"],
            "tagOverrides.value may only be set when operation is UPSERT",
          );
      }
      const match = obj(obj(o).match);
      if (match.customMetric !== undefined && str(match.customMetric) === "")
        f.error([...at, "overrides", j, "match", "customMetric"], "customMetric may not be empty");
    });
  });
  arr(spec.accessLogging).forEach((raw, i) => {
    checkProviders(f, obj(raw).providers, ["spec", "accessLogging", i, "providers"]);
  });
  return f;
}

/** Rules of WasmPlugin beyond its schema. */
export function wasmPluginRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  checkPolicyTargets(f, spec);
  const url = str(spec.url);
  if (url === "") f.error(["spec", "url"], "url field needs to be set");
  else {
    // Istio's strictParseURL: a URL with a scheme (file, http, https, oci), or a bare image reference
    // (`ghcr.io/org/plugin:1.0`) that parses once `http://` is put in front.
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
    if (scheme !== undefined && !["file", "http", "https", "oci"].includes(scheme))
      f.error(["spec", "url"], `url contains unsupported scheme: ${scheme}`);
    else if (!parses(scheme !== undefined ? url : `http://${url}`))
      f.error(["spec", "url"], `failed to parse url: ${url}`);
  }
  const sha = str(spec.sha256);
  if (sha !== "") {
    if (sha.length !== 64) f.error(["spec", "sha256"], "sha256 field must be 64 characters long");
    else if (!/^[a-f0-9]{64}$/.test(sha))
      f.error(["spec", "sha256"], "sha256 field must match [a-f0-9]{64} pattern");
  }
  const names = new Set<string>();
  arr(obj(spec.vmConfig).env).forEach((raw, i) => {
    const env = obj(raw);
    if (env.value !== undefined && str(env.valueFrom) === "HOST")
      f.error(["spec", "vmConfig", "env", i, "value"], "value may only be set when valueFrom is INLINE");
    const name = str(env.name);
    if (name === "") f.error(["spec", "vmConfig", "env", i, "name"], "spec.vmConfig.env invalid");
    else if (names.has(name)) f.error(["spec", "vmConfig", "env", i, "name"], `duplicate env name: ${name}`);
    names.add(name);
  });
  return f;
}

function parses(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === "file:" || u.host !== "";
  } catch {
    return false;
  }
}
