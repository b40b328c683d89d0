import { z } from "zod";

/** A map of string to string (labels, annotations, selectors). */
export const StringMap = z.record(z.string(), z.string());

/** A TCP/UDP port number. */
export const PortNumber = z.int().min(1).max(65535);

/** Protobuf duration as Istio writes it: `1.5s`, `100ms`, `1h30m`. */
export const Duration = z
  .string()
  .regex(/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/, { error: "expected a duration such as 5s, 100ms or 1h" });

/** Istio `WorkloadSelector`: only `matchLabels`. */
export const WorkloadSelector = z.strictObject({ matchLabels: StringMap.optional() });

/** Istio `PolicyTargetReference` (Gateway API style attachment). */
export const PolicyTargetReference = z.strictObject({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string().min(1),
  namespace: z.string().optional(),
});

/** Istio `StringMatch`: exactly one of `exact`, `prefix`, `regex`. */
export const StringMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
  .refine((m) => [m.exact, m.prefix, m.regex].filter((v) => v !== undefined).length === 1, {
    error: "expected exactly one of exact, prefix, regex",
  });

/** `exportTo`: `.`, `*`, or namespace names. */
export const ExportTo = z.array(z.string().min(1));

/** A hostname as Istio accepts it: FQDN or short name, optionally with a leading `*` wildcard. */
export const Host = z
  .string()
  .regex(
    /^(\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?)$/,
    {
      error: "expected a host name (e.g. reviews, reviews.default.svc.cluster.local or *.example.com)",
    },
  );

/** A Kubernetes object body whose `spec` follows `spec`; status and unknown top-level fields are kept. */
export function withSpec<S extends z.ZodType>(spec: S) {
  return z.looseObject({ spec });
}
