import { z } from "zod";
import { Duration, PolicyTargetReference, WorkloadSelector } from "./common.js";

// Field names and enums follow the Istio API reference (security.istio.io v1).

const MtlsMode = z.enum(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]);

/** `PeerAuthentication.spec`. */
export const PeerAuthenticationSpec = z.strictObject({
  selector: WorkloadSelector.optional(),
  mtls: z.strictObject({ mode: MtlsMode }).optional(),
  portLevelMtls: z
    .record(
      z.string().regex(/^\d+$/, { error: "expected a port number" }),
      z.strictObject({ mode: MtlsMode }),
    )
    .optional(),
});

const StringList = z.array(z.string());

const Source = z.strictObject({
  principals: StringList.optional(),
  notPrincipals: StringList.optional(),
  requestPrincipals: StringList.optional(),
  notRequestPrincipals: StringList.optional(),
  namespaces: StringList.optional(),
  notNamespaces: StringList.optional(),
  ipBlocks: StringList.optional(),
  notIpBlocks: StringList.optional(),
  remoteIpBlocks: StringList.optional(),
  notRemoteIpBlocks: StringList.optional(),
  serviceAccounts: StringList.optional(),
  notServiceAccounts: StringList.optional(),
});

const Operation = z.strictObject({
  hosts: StringList.optional(),
  notHosts: StringList.optional(),
  ports: StringList.optional(),
  notPorts: StringList.optional(),
  methods: StringList.optional(),
  notMethods: StringList.optional(),
  paths: StringList.optional(),
  notPaths: StringList.optional(),
});

/** `AuthorizationPolicy.spec`. */
export const AuthorizationPolicySpec = z
  .strictObject({
    selector: WorkloadSelector.optional(),
    targetRef: PolicyTargetReference.optional(),
    targetRefs: z.array(PolicyTargetReference).optional(),
    rules: z
      .array(
        z.strictObject({
          from: z.array(z.strictObject({ source: Source })).optional(),
          to: z.array(z.strictObject({ operation: Operation })).optional(),
          when: z
            .array(
              z.strictObject({
                key: z.string().min(1),
                values: StringList.optional(),
                notValues: StringList.optional(),
              }),
            )
            .optional(),
        }),
      )
      .optional(),
    action: z.enum(["ALLOW", "DENY", "AUDIT", "CUSTOM"]).optional(),
    provider: z.strictObject({ name: z.string().min(1) }).optional(),
  })
  .refine((p) => (p.action === "CUSTOM") === (p.provider !== undefined), {
    error: "expected provider exactly when action is CUSTOM",
    path: ["provider"],
  });

/** `RequestAuthentication.spec`. */
export const RequestAuthenticationSpec = z.strictObject({
  selector: WorkloadSelector.optional(),
  targetRef: PolicyTargetReference.optional(),
  targetRefs: z.array(PolicyTargetReference).optional(),
  jwtRules: z
    .array(
      z.strictObject({
        issuer: z.string().min(1),
        audiences: StringList.optional(),
        jwksUri: z.string().optional(),
        jwks: z.string().optional(),
        fromHeaders: z
          .array(z.strictObject({ name: z.string().min(1), prefix: z.string().optional() }))
          .optional(),
        fromParams: StringList.optional(),
        fromCookies: StringList.optional(),
        outputPayloadToHeader: z.string().optional(),
        forwardOriginalToken: z.boolean().optional(),
        outputClaimToHeaders: z
          .array(z.strictObject({ header: z.string().min(1), claim: z.string().min(1) }))
          .optional(),
        timeout: Duration.optional(),
      }),
    )
    .optional(),
});
