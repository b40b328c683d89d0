import { SpiffeId } from "@meshlet/ca";
import { MeshError } from "../mesh-error.js";

/**
 * A workload's SPIFFE ID as Istio writes it, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`
 * (istio/istio pkg/spiffe/spiffe.go `genSpiffeURI`; `@` in the trust domain becomes `.` as Istio's
 * `sanitizeTrustDomain` does). Validated by `@meshlet/ca`'s SPIFFE-ID rules; throws `MeshError`
 * (`INVALID_ARGUMENT`) for an empty namespace or service account, which Istio also refuses.
 */
export function workloadIdentity(trustDomain: string, namespace: string, serviceAccount: string): string {
  if (namespace === "" || serviceAccount === "") {
    throw new MeshError(
      "INVALID_ARGUMENT",
      `a workload identity needs a namespace and a service account (got namespace=${JSON.stringify(namespace)}, serviceAccount=${JSON.stringify(serviceAccount)})`,
    );
  }
  try {
    return SpiffeId.istio(trustDomain.replaceAll("@", "."), namespace, serviceAccount).toString();
  } catch (cause) {
    throw new MeshError(
      "INVALID_ARGUMENT",
      `cannot form a SPIFFE ID from trust domain ${JSON.stringify(trustDomain)}, namespace ${JSON.stringify(namespace)}, service account ${JSON.stringify(serviceAccount)}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** Namespace and service account of an Istio workload SPIFFE ID; undefined for other IDs. */
export function parseWorkloadIdentity(
  id: string,
): { readonly trustDomain: string; readonly namespace: string; readonly serviceAccount: string } | undefined {
  const parsed = SpiffeId.tryParse(id);
  const istio = parsed?.istio;
  if (parsed === undefined || istio === undefined) return undefined;
  return { trustDomain: parsed.trustDomain, ...istio };
}
