import { type InjectPodOptions, injectPod } from "../inject/inject-pod.js";
import type { InjectorConfig } from "../inject/injector-config.js";
import { type Pod, podDisplayName } from "../inject/pod-model.js";
import {
  type AdmissionRequest,
  type AdmissionReview,
  admissionResponse,
  warning,
} from "./admission-review.js";
import type { WebhookEvent } from "./webhook-event.js";

/** A webhook handler: a parsed review in, the review to answer with and what happened out. Pure. */
export type AdmissionHandler = (
  review: AdmissionReview & { readonly request: AdmissionRequest },
  path: string,
) => { readonly review: AdmissionReview; readonly event: WebhookEvent };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Just enough shape to inject: metadata an object, spec an object with a list of named containers. */
function asPod(object: unknown): Pod | string {
  if (!isRecord(object)) return "request.object is not a pod";
  if (object.metadata !== undefined && !isRecord(object.metadata))
    return "the pod's metadata is not an object";
  const spec = object.spec;
  if (!isRecord(spec) || !Array.isArray(spec.containers)) return "the pod has no spec.containers";
  if (!spec.containers.every((c) => isRecord(c) && typeof c.name === "string")) {
    return "a container of the pod has no name";
  }
  return {
    ...object,
    metadata: (object.metadata ?? {}) as Pod["metadata"],
    spec: spec as unknown as Pod["spec"],
  };
}

/**
 * The sidecar injection webhook (`/inject`): AdmissionReview for a pod CREATE in, AdmissionReview
 * with a base64 JSON Patch out. It never refuses a pod: a pod it does not inject (policy, host
 * network, opt-out) is allowed as it is; a pod it cannot inject (bad annotation, unknown template) is
 * allowed as it is with a warning the user sees at `kubectl apply` — the behaviour
 * `failurePolicy: Ignore` gives when meshletd is down.
 */
export function createInjectionWebhook(
  config: InjectorConfig,
  options: Omit<InjectPodOptions, "path" | "namespace"> = {},
): AdmissionHandler {
  return (review, path) => {
    const started = performance.now();
    const request = review.request;
    const done = (outcome: "injected" | "skipped" | "failed", pod: string, reason?: string) => ({
      type: "injection" as const,
      outcome,
      pod,
      ...(reason !== undefined ? { reason } : {}),
      durationMs: performance.now() - started,
    });
    const target = `${request.namespace ?? ""}/${request.name ?? "?"}`;
    if (
      request.kind.kind !== "Pod" ||
      request.resource.resource !== "pods" ||
      (request.subResource ?? "") !== ""
    ) {
      return {
        review: admissionResponse(review, { allowed: true }),
        event: done("skipped", target, `not a pod (${request.kind.kind})`),
      };
    }
    if (request.operation !== "CREATE") {
      return {
        review: admissionResponse(review, { allowed: true }),
        event: done("skipped", target, `operation ${request.operation}`),
      };
    }
    const pod = asPod(request.object);
    if (typeof pod === "string") {
      return {
        review: admissionResponse(review, {
          allowed: true,
          warnings: [warning(`meshlet: sidecar not injected: ${pod}`)],
        }),
        event: done("failed", target, pod),
      };
    }
    const namespace = pod.metadata.namespace || request.namespace || "default";
    const name = podDisplayName({ ...pod, metadata: { ...pod.metadata, namespace } });
    const result = injectPod(pod, config, { ...options, namespace, path });
    if (result.injected) {
      return {
        review: admissionResponse(review, {
          allowed: true,
          patchType: "JSONPatch",
          patch: Buffer.from(JSON.stringify(result.patch)).toString("base64"),
        }),
        event: done("injected", name),
      };
    }
    if (result.failed) {
      return {
        review: admissionResponse(review, {
          allowed: true,
          warnings: [warning(`meshlet: sidecar not injected into ${name}: ${result.reason}`)],
        }),
        event: done("failed", name, result.reason),
      };
    }
    return {
      review: admissionResponse(review, { allowed: true }),
      event: done("skipped", name, result.reason),
    };
  };
}
