import { SpiffeId } from "../spiffe-id.js";

/**
 * Maps a Kubernetes service-account username (`system:serviceaccount:<ns>:<sa>`) to Istio's SPIFFE
 * ID `spiffe://<td>/ns/<ns>/sa/<sa>`; undefined for any other username.
 */
export function serviceAccountToSpiffeId(username: string, trustDomain: string): SpiffeId | undefined {
  const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (!match) return undefined;
  return SpiffeId.tryParse(SpiffeId.istio(trustDomain, match[1] as string, match[2] as string).toString());
}
