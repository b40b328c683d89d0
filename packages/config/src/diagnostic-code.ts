/**
 * Every diagnostic code `@meshlet/config` reports. Codes are stable: scripts may match on them.
 * `MC0xxx` are errors (the resource is left out); `MC1xxx` are warnings from semantic analysis,
 * modelled on `istioctl analyze` (the equivalent istioctl code is noted where there is one).
 */
export const DiagnosticCode = {
  /** The file is not valid YAML/JSON. */
  ParseError: "MC0001",
  /** `apiVersion`/`kind` name no registered kind. */
  UnknownKind: "MC0002",
  /** `metadata` is missing or malformed (name, namespace, labels). */
  InvalidMetadata: "MC0003",
  /** The resource does not match its kind's schema. */
  SchemaViolation: "MC0004",
  /** Two entries of the same source define one resource; the first (by location) wins. */
  DuplicateResource: "MC0005",
  /** A source could not be read (I/O, connection); its last good resources are kept. */
  SourceError: "MC0006",
  /** A VirtualService routes to a DestinationRule subset that does not exist (istioctl IST0101). */
  SubsetNotFound: "MC1001",
  /** Two VirtualServices on the same gateway claim one host (istioctl IST0109). */
  ConflictingVirtualServiceHosts: "MC1002",
  /** A Gateway's selector matches no workload (istioctl IST0101, selector not found). */
  GatewaySelectorMatchesNothing: "MC1003",
  /** PeerAuthentications at the same scope ask for different mTLS modes. */
  ConflictingPeerAuthenticationModes: "MC1004",
  /** A VirtualService names a Gateway that does not exist (istioctl IST0101). */
  GatewayNotFound: "MC1005",
} as const;

/** One of the {@link DiagnosticCode} values. */
export type DiagnosticCode = (typeof DiagnosticCode)[keyof typeof DiagnosticCode];
