/**
 * Every diagnostic code `@meshlet/config` reports. Codes are stable: scripts may match on them.
 * `MC0xxx` are problems of one resource (errors keep it out; MC0008 is a note); `MC1xxx` are
 * warnings. Analysis findings that `istioctl analyze` also reports carry Istio's own code and level
 * (istio/istio pkg/config/analysis/msg/messages.yaml): `IST0101` ReferencedResourceNotFound and
 * `IST0109` ConflictingMeshGatewayVirtualServiceHosts are errors there, and here.
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
  /** The resource breaks one of Istio's validation rules beyond the schema (its admission webhook's). */
  RuleViolation: "MC0007",
  /** A kind meshlet does not read (e.g. a PersistentVolumeClaim in a manifest): skipped, not validated (info). */
  KindNotValidated: "MC0008",
  /** A CRD the Kubernetes API server does not serve: the kind is skipped (warning in source status). */
  KindNotServed: "MC0009",
  /** A warning from Istio's validation rules (deprecated field, setting with no effect). */
  RuleWarning: "MC1006",
  /** A VirtualService routes to a DestinationRule subset that does not exist (Istio IST0101 ReferencedResourceNotFound, error). */
  SubsetNotFound: "IST0101",
  /** Two VirtualServices on the same gateway claim one host (Istio IST0109, error). */
  ConflictingVirtualServiceHosts: "IST0109",
  /** A Gateway's selector matches no workload (Istio IST0101 ReferencedResourceNotFound, selector). */
  GatewaySelectorMatchesNothing: "IST0101",
  /** PeerAuthentications at the same scope ask for different mTLS modes. */
  ConflictingPeerAuthenticationModes: "MC1004",
  /** A VirtualService names a Gateway that does not exist (Istio IST0101 ReferencedResourceNotFound, error). */
  GatewayNotFound: "IST0101",
} as const;

/** One of the {@link DiagnosticCode} values. */
export type DiagnosticCode = (typeof DiagnosticCode)[keyof typeof DiagnosticCode];
