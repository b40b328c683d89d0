import { z } from "zod";
import { PortNumber, StringMap } from "./common.js";

// The core Kubernetes kinds the service registry needs. Only the fields the mesh reads are
// checked; everything else Kubernetes adds (status, managedFields, …) is kept as is.

const Protocol = z.enum(["TCP", "UDP", "SCTP"]);

/** `Service` (v1): `spec`. */
export const ServiceSpec = z.looseObject({
  type: z.enum(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]).optional(),
  selector: StringMap.optional(),
  clusterIP: z.string().optional(),
  externalName: z.string().optional(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: PortNumber,
        targetPort: z.union([PortNumber, z.string().min(1)]).optional(),
        protocol: Protocol.optional(),
        appProtocol: z.string().optional(),
        nodePort: PortNumber.optional(),
      }),
    )
    .optional(),
});

/** `EndpointSlice` (discovery.k8s.io/v1) body: it has no `spec`, its fields are top-level. */
export const EndpointSliceBody = z.looseObject({
  addressType: z.enum(["IPv4", "IPv6", "FQDN"]),
  endpoints: z.array(
    z.looseObject({
      addresses: z.array(z.string().min(1)).min(1),
      conditions: z
        .looseObject({
          ready: z.boolean().optional(),
          serving: z.boolean().optional(),
          terminating: z.boolean().optional(),
        })
        .optional(),
      hostname: z.string().optional(),
      nodeName: z.string().optional(),
      zone: z.string().optional(),
      targetRef: z
        .looseObject({
          kind: z.string().optional(),
          name: z.string().optional(),
          namespace: z.string().optional(),
        })
        .optional(),
    }),
  ),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: PortNumber.optional(),
        protocol: Protocol.optional(),
        appProtocol: z.string().optional(),
      }),
    )
    .nullable()
    .optional(),
});

/** `Pod` (v1): `spec`. */
export const PodSpec = z.looseObject({
  containers: z
    .array(
      z.looseObject({
        name: z.string().min(1),
        image: z.string().optional(),
        ports: z.array(z.looseObject({ containerPort: PortNumber })).optional(),
      }),
    )
    .min(1),
  serviceAccountName: z.string().optional(),
  nodeName: z.string().optional(),
});

/** `Pod` status fields the registry reads. */
export const PodStatus = z.looseObject({ podIP: z.string().optional(), phase: z.string().optional() });

/** `Namespace` (v1): `spec`. */
export const NamespaceSpec = z.looseObject({ finalizers: z.array(z.string()).optional() });
