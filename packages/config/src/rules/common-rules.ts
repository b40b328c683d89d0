import { arr, type Findings, obj, str } from "./findings.js";
import { labelProblem } from "./values.js";

type Path = ReadonlyArray<string | number>;

/** Istio's validateWorkloadSelector (type.v1beta1.WorkloadSelector, `matchLabels`). */
export function checkWorkloadSelector(f: Findings, selector: unknown, path: Path): void {
  if (selector === undefined) return;
  const labels = obj(obj(selector).matchLabels);
  for (const [k, v] of Object.entries(labels)) {
    if (k === "") f.error([...path, "matchLabels"], `empty key is not supported in selector: "=${str(v)}"`);
    if (k.includes("*") || str(v).includes("*"))
      f.error([...path, "matchLabels", k], `wildcard is not supported in selector: "${k}=${str(v)}"`);
  }
  if (Object.keys(labels).length === 0) f.warn(path, "workload selector specified without labels");
}

/** Istio's validateOneOfSelectorType plus validatePolicyTargetReference for each reference. */
export function checkPolicyTargets(f: Findings, spec: Record<string, unknown>): void {
  const set = [spec.selector !== undefined, spec.targetRef !== undefined, arr(spec.targetRefs).length > 0];
  if (set.filter(Boolean).length > 1)
    f.error(["spec"], "only one of targetRefs or workloadSelector can be set");
  checkWorkloadSelector(f, spec.selector, ["spec", "selector"]);
  if (spec.targetRef !== undefined) checkTargetRef(f, spec.targetRef, ["spec", "targetRef"]);
  arr(spec.targetRefs).forEach((r, i) => {
    checkTargetRef(f, r, ["spec", "targetRefs", i]);
  });
}

const ALLOWED_TARGETS = new Set([
  "core/Service",
  "networking.istio.io/ServiceEntry",
  "gateway.networking.k8s.io/Gateway",
]);

function checkTargetRef(f: Findings, ref: unknown, path: Path): void {
  const r = obj(ref);
  if (str(r.name) === "") f.error([...path, "name"], "targetRef name must be set");
  if (str(r.namespace) !== "")
    f.error(
      [...path, "namespace"],
      "targetRef namespace must not be set; cross namespace referencing is not supported",
    );
  const group = str(r.group) === "" ? "core" : str(r.group);
  if (!ALLOWED_TARGETS.has(`${group}/${str(r.kind)}`)) {
    f.error(
      [...path, "kind"],
      `targetRef must be to a Service, a ServiceEntry (networking.istio.io) or a Gateway (gateway.networking.k8s.io) but was ${str(r.group)}/${str(r.kind)}`,
    );
  }
}

/** Istio's labels.Instance.Validate on a plain label map. */
export function checkLabels(f: Findings, labels: unknown, path: Path): void {
  for (const [k, v] of Object.entries(obj(labels))) f.check([...path, k], labelProblem(k, str(v)));
}

/** Istio's validateExportTo. */
export function checkExportTo(
  f: Findings,
  namespace: string,
  exportTo: unknown,
  path: Path,
  options: { serviceEntry?: boolean; destinationRuleWithSelector?: boolean } = {},
): void {
  const list = arr(exportTo).map(str);
  if (list.length === 0) return;
  const seen = new Set<string>();
  list.forEach((e, i) => {
    const key = e === "." ? namespace : e;
    if (seen.has(key)) {
      f.error(
        [...path, i],
        key !== e
          ? `duplicate entries in exportTo: . and current namespace ${namespace}`
          : `duplicate entries in exportTo for entry ${e}`,
      );
      return;
    }
    if (e === "~" && options.serviceEntry) {
      seen.add(key);
      return;
    }
    if (key !== "*" && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(key)) {
      f.error([...path, i], `only . or * or a valid DNS 1123 label is allowed as exportTo entry, got "${e}"`);
      return;
    }
    seen.add(key);
  });
  if (options.destinationRuleWithSelector && seen.size > 0) {
    if (!seen.has(namespace))
      f.error(path, "destination rule with workload selector cannot have exportTo beyond current namespace");
    else if (seen.size > 1)
      f.error(path, "destination rule with workload selector cannot have multiple entries in exportTo");
  }
  if (seen.has("*") && list.length > 1)
    f.error(path, "cannot have both public (*) and non-public exportTo values for a resource");
  if (seen.has("~") && list.length > 1)
    f.error(path, "cannot export service entry to no one (~) and someone");
}
