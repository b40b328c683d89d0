import { z } from "zod";
import { PolicyTargetReference, WorkloadSelector } from "./common.js";

// Field names follow the Istio API reference (telemetry.istio.io v1).

const ProviderRef = z.strictObject({ name: z.string().min(1) });

/** `Telemetry.spec`. */
export const TelemetrySpec = z.strictObject({
  selector: WorkloadSelector.optional(),
  targetRef: PolicyTargetReference.optional(),
  targetRefs: z.array(PolicyTargetReference).optional(),
  tracing: z
    .array(
      z.looseObject({
        providers: z.array(ProviderRef).optional(),
        randomSamplingPercentage: z.number().min(0).max(100).optional(),
        disableSpanReporting: z.boolean().optional(),
      }),
    )
    .optional(),
  metrics: z
    .array(
      z.looseObject({
        providers: z.array(ProviderRef).optional(),
        overrides: z.array(z.looseObject({})).optional(),
      }),
    )
    .optional(),
  accessLogging: z
    .array(z.looseObject({ providers: z.array(ProviderRef).optional(), disabled: z.boolean().optional() }))
    .optional(),
});
