// Rules of Kubernetes' own API validation (kubernetes/kubernetes pkg/apis/core/validation and
// pkg/apis/discovery/validation) that its OpenAPI schema does not carry, for the fields the mesh reads.
import type { Resource } from "../resource.js";
import { arr, Findings, obj } from "./findings.js";

function checkPodSpec(f: Findings, spec: unknown, path: Array<string | number>): void {
  if (arr(obj(spec).containers).length === 0)
    f.error([...path, "containers"], "a pod needs at least one container");
}

/** Pods and the pod templates of workload kinds: at least one container. */
export function podTemplateRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  switch (resource.kind) {
    case "Pod":
      checkPodSpec(f, spec, ["spec"]);
      break;
    case "CronJob":
      checkPodSpec(f, obj(obj(obj(obj(spec.jobTemplate).spec).template).spec), [
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
      ]);
      break;
    default:
      checkPodSpec(f, obj(obj(spec.template).spec), ["spec", "template", "spec"]);
  }
  return f;
}

/** EndpointSlice: each endpoint has 1 to 100 addresses. */
export function endpointSliceRules(resource: Resource): Findings {
  const f = new Findings();
  arr((resource as Record<string, unknown>).endpoints).forEach((e, i) => {
    const n = arr(obj(e).addresses).length;
    if (n === 0) f.error(["endpoints", i, "addresses"], "an endpoint needs at least one address");
    if (n > 100) f.error(["endpoints", i, "addresses"], "an endpoint has at most 100 addresses");
  });
  return f;
}
