/**
 * What the webhooks did, one event per request: the material for Istio's webhook metrics
 * (`sidecar_injection_success_total`, `sidecar_injection_skip_total`,
 * `sidecar_injection_failure_total`, `galley_validation_passed`, `galley_validation_failed`).
 */
export type WebhookEvent =
  | {
      readonly type: "injection";
      readonly outcome: "injected" | "skipped" | "failed";
      /** `namespace/name` (or `namespace/generateName*`). */
      readonly pod: string;
      readonly reason?: string;
      readonly durationMs: number;
    }
  | {
      readonly type: "validation";
      readonly outcome: "allowed" | "denied" | "unchecked";
      /** `Kind/namespace/name`. */
      readonly resource: string;
      /** The request's `resource` (group, version, plural name), as Istio's galley_validation_* metrics label it. */
      readonly gvr?: { readonly group: string; readonly version: string; readonly resource: string };
      readonly reason?: string;
      readonly durationMs: number;
    }
  | {
      /** A certificate from `certificate$`: now served, or refused (the current one stays). */
      readonly type: "certificate";
      readonly outcome: "rotated" | "rejected";
      readonly reason?: string;
    }
  | {
      /** A request that was not an answerable AdmissionReview (HTTP 4xx). */
      readonly type: "bad-request";
      readonly path: string;
      readonly status: number;
      readonly reason: string;
    };
