/** `admission.k8s.io/v1` (and the identical `v1beta1`) AdmissionReview, as the API server sends it. */
export interface AdmissionReview {
  readonly apiVersion: "admission.k8s.io/v1" | "admission.k8s.io/v1beta1";
  readonly kind: "AdmissionReview";
  readonly request?: AdmissionRequest;
  readonly response?: AdmissionResponse;
}

/** The request half: what is being admitted. */
export interface AdmissionRequest {
  /** Echoed in the response; the API server matches answers by it. */
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly resource: { readonly group: string; readonly version: string; readonly resource: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  readonly userInfo?: {
    readonly username?: string;
    readonly uid?: string;
    readonly groups?: readonly string[];
  };
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
  readonly [field: string]: unknown;
}

/** The response half: allowed or not, an optional JSON Patch, warnings shown to the client. */
export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code?: number; readonly message?: string; readonly reason?: string };
  /** Base64 of a JSON Patch (RFC 6902). */
  readonly patch?: string;
  readonly patchType?: "JSONPatch";
  /** Shown by kubectl as `Warning: …`; Kubernetes asks for at most 120 characters each, truncates past 256. */
  readonly warnings?: readonly string[];
}

/** A review the API server can act on, or why the request is not one. */
export type ParsedAdmissionReview =
  | { readonly review: AdmissionReview & { readonly request: AdmissionRequest }; readonly error?: undefined }
  | { readonly review?: undefined; readonly error: string };

const OPERATIONS = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);
// A request UID is a UUID in practice; anything printable up to 128 characters is accepted, since
// it is only echoed back.
const UID = /^[\x21-\x7e]{1,128}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isGvk(value: unknown, keys: readonly string[]): boolean {
  return isRecord(value) && keys.every((k) => typeof value[k] === "string");
}

/**
 * Checks that a decoded request body is an AdmissionReview with a request the webhooks can answer
 * (Kubernetes docs, "Dynamic Admission Control": the response must echo `request.uid` in an
 * AdmissionReview of the same `apiVersion`). Anything else is refused with a message naming the
 * field, and the server answers it with HTTP 400: there is no uid to answer otherwise.
 *
 * Why the body is not authenticated: the webhook port accepts any caller in the cluster, not only
 * the API server, but an answer changes nothing by itself — it is a patch or a verdict returned to
 * the caller, and only the API server applies it, to the object it sent. A forged review therefore
 * only shows its sender what the webhook would do with an object it chose, which `meshlet manifest`
 * and the injection templates already disclose. Its content is still parsed strictly (above).
 */
export function parseAdmissionReview(body: unknown): ParsedAdmissionReview {
  if (!isRecord(body)) return { error: "the body must be a JSON object (an AdmissionReview)" };
  if (body.apiVersion !== "admission.k8s.io/v1" && body.apiVersion !== "admission.k8s.io/v1beta1") {
    return {
      error: `apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, got ${JSON.stringify(body.apiVersion)}`,
    };
  }
  if (body.kind !== "AdmissionReview")
    return { error: `kind must be AdmissionReview, got ${JSON.stringify(body.kind)}` };
  const request = body.request;
  if (!isRecord(request))
    return { error: "request is missing: an AdmissionReview sent to a webhook carries one" };
  if (typeof request.uid !== "string" || !UID.test(request.uid)) {
    return { error: "request.uid must be a non-empty string of at most 128 printable characters" };
  }
  if (!isGvk(request.kind, ["group", "version", "kind"]))
    return { error: "request.kind must have group, version and kind" };
  if (!isGvk(request.resource, ["group", "version", "resource"])) {
    return { error: "request.resource must have group, version and resource" };
  }
  if (typeof request.operation !== "string" || !OPERATIONS.has(request.operation)) {
    return {
      error: `request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got ${JSON.stringify(request.operation)}`,
    };
  }
  for (const field of ["name", "namespace", "subResource"] as const) {
    if (request[field] !== undefined && typeof request[field] !== "string") {
      return { error: `request.${field} must be a string` };
    }
  }
  return { review: body as unknown as AdmissionReview & { request: AdmissionRequest } };
}

/** The AdmissionReview that answers `review` with `response` (same apiVersion, uid echoed). */
export function admissionResponse(
  review: AdmissionReview & { readonly request: AdmissionRequest },
  response: Omit<AdmissionResponse, "uid">,
): AdmissionReview {
  return {
    apiVersion: review.apiVersion,
    kind: "AdmissionReview",
    response: { uid: review.request.uid, ...response },
  };
}

/** A warning cut to the 256 characters the API server keeps. */
export function warning(text: string): string {
  return text.length <= 256 ? text : `${text.slice(0, 253)}...`;
}
