import { SpiffeId } from "../spiffe-id.js";

// Kubernetes "Object Names and IDs": a namespace is a DNS-1123 label, a service account's name a
// DNS-1123 subdomain. The API server's service-account authenticator names its users
// `system:serviceaccount:<namespace>:<name>` (Kubernetes "Authenticating: Service account tokens").
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const isSubdomain = (name: string) =>
  name.length <= 253 && name.split(".").every((l) => DNS1123_LABEL.test(l));

/**
 * Maps a Kubernetes service-account username (`system:serviceaccount:<ns>:<sa>`) to Istio's SPIFFE
 * ID `spiffe://<td>/ns/<ns>/sa/<sa>`; undefined for any other username, including one whose
 * namespace is not a DNS-1123 label or whose name is not a DNS-1123 subdomain (no API server
 * answers with those: such a name must not reach a certificate's SAN).
 */
export function serviceAccountToSpiffeId(username: string, trustDomain: string): SpiffeId | undefined {
  const parts = username.split(":");
  if (parts.length !== 4 || parts[0] !== "system" || parts[1] !== "serviceaccount") return undefined;
  const [, , namespace, name] = parts as [string, string, string, string];
  if (!DNS1123_LABEL.test(namespace) || !isSubdomain(name)) return undefined;
  return SpiffeId.tryParse(SpiffeId.istio(trustDomain, namespace, name).toString());
}
