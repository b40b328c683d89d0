import { type Diagnostic, KindRegistry, validateResource } from "@meshlet/config";
import { admissionResponse, warning } from "./admission-review.js";
import type { AdmissionHandler } from "./injection-webhook.js";

/** Options for {@link createValidationWebhook}. */
export interface ValidationWebhookOptions {
  /** The kinds validated; defaults to `@meshlet/config`'s built-in kinds (Istio's and the core ones). */
  readonly registry?: KindRegistry;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(d: Diagnostic): string {
  const where = [d.resource, d.path].filter((x) => x !== undefined && x !== "").join(" ");
  const expected = d.expected !== undefined ? ` (expected ${d.expected})` : "";
  return `${where !== "" ? `${where}: ` : ""}${d.message}${expected}`;
}

/**
 * The config validation webhook (`/validate`), Galley's job: Istio config created or updated
 * through the API server is checked with `@meshlet/config`'s `validateResource`, the same checks
 * `meshlet validate` runs on files. An invalid object is refused (`allowed: false`, status 400)
 * with every error's resource, field path and message, so `kubectl apply` prints where to look;
 * warnings travel as AdmissionResponse warnings. A kind meshlet does not know is admitted with a
 * warning (Istio adds kinds; meshlet must not block them), and so are DELETE and CONNECT.
 */
export function createValidationWebhook(options: ValidationWebhookOptions = {}): AdmissionHandler {
  const registry = options.registry ?? new KindRegistry();
  return (review) => {
    const started = performance.now();
    const request = review.request;
    const object = request.object;
    const apiVersion = isRecord(object) && typeof object.apiVersion === "string" ? object.apiVersion : "";
    const kind = isRecord(object) && typeof object.kind === "string" ? object.kind : request.kind.kind;
    const label = `${kind}/${request.namespace ? `${request.namespace}/` : ""}${request.name ?? "?"}`;
    const event = (outcome: "allowed" | "denied" | "unchecked", reason?: string) => ({
      type: "validation" as const,
      outcome,
      resource: label,
      gvr: request.resource,
      ...(reason !== undefined ? { reason } : {}),
      durationMs: performance.now() - started,
    });
    if (request.operation !== "CREATE" && request.operation !== "UPDATE") {
      return {
        review: admissionResponse(review, { allowed: true }),
        event: event("unchecked", `operation ${request.operation}`),
      };
    }
    if (registry.get(kind) === undefined) {
      const note = `meshlet does not validate ${kind} (${apiVersion || request.kind.group}); admitted unchecked`;
      return {
        review: admissionResponse(review, { allowed: true, warnings: [warning(note)] }),
        event: event("unchecked", note),
      };
    }
    const result = validateResource(
      object,
      { source: "admission", location: `${apiVersion}/${label}` },
      { registry, ...(request.namespace !== undefined ? { defaultNamespace: request.namespace } : {}) },
    );
    const errors = result.diagnostics.filter((d) => d.severity === "error");
    const warnings = result.diagnostics
      .filter((d) => d.severity !== "error")
      .map((d) => warning(describe(d)));
    if (errors.length > 0) {
      const message = `configuration is invalid: ${errors.map(describe).join("; ")}`;
      return {
        review: admissionResponse(review, {
          allowed: false,
          status: { code: 400, reason: "BadRequest", message },
          ...(warnings.length > 0 ? { warnings } : {}),
        }),
        event: event("denied", message),
      };
    }
    return {
      review: admissionResponse(review, { allowed: true, ...(warnings.length > 0 ? { warnings } : {}) }),
      event: event("allowed"),
    };
  };
}
