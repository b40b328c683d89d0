import { z } from "zod";
import {
  Duration,
  ExportTo,
  Host,
  PolicyTargetReference,
  PortNumber,
  StringMap,
  StringMatch,
  WorkloadSelector,
} from "./common.js";

// Field names and enums follow the Istio API reference (networking.istio.io v1). Objects whose
// full shape is enumerated here are strict, so a typo (`subet:`) is an error at its exact path;
// deep option bags that Istio evolves often (retries, fault, corsPolicy, …) are checked for shape
// only and keep unknown fields.

const PortSelector = z.strictObject({ number: PortNumber });

/** Istio `Destination`: a host in the registry, optional subset and port. */
export const Destination = z.strictObject({
  host: Host,
  subset: z.string().min(1).optional(),
  port: PortSelector.optional(),
});

const Headers = z.looseObject({});

const HTTPMatchRequest = z.strictObject({
  name: z.string().optional(),
  uri: StringMatch.optional(),
  scheme: StringMatch.optional(),
  method: StringMatch.optional(),
  authority: StringMatch.optional(),
  headers: z.record(z.string(), StringMatch).optional(),
  port: PortNumber.optional(),
  sourceLabels: StringMap.optional(),
  gateways: z.array(z.string()).optional(),
  queryParams: z.record(z.string(), StringMatch).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: z.record(z.string(), StringMatch).optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
});

const HTTPRouteDestination = z.strictObject({
  destination: Destination,
  weight: z.int().min(0).max(100).optional(),
  headers: Headers.optional(),
});

const HTTPRoute = z
  .strictObject({
    name: z.string().optional(),
    match: z.array(HTTPMatchRequest).optional(),
    route: z.array(HTTPRouteDestination).optional(),
    redirect: z.looseObject({}).optional(),
    directResponse: z.looseObject({ status: z.int().min(200).max(599) }).optional(),
    delegate: z.strictObject({ name: z.string().min(1), namespace: z.string().optional() }).optional(),
    rewrite: z.looseObject({}).optional(),
    timeout: Duration.optional(),
    retries: z
      .looseObject({ attempts: z.int().min(0).optional(), perTryTimeout: Duration.optional() })
      .optional(),
    fault: z.looseObject({}).optional(),
    mirror: Destination.optional(),
    mirrors: z.array(z.looseObject({ destination: Destination })).optional(),
    mirrorPercentage: z.strictObject({ value: z.number().min(0).max(100) }).optional(),
    corsPolicy: z.looseObject({}).optional(),
    headers: Headers.optional(),
  })
  .refine(
    (r) =>
      r.route !== undefined ||
      r.redirect !== undefined ||
      r.directResponse !== undefined ||
      r.delegate !== undefined,
    {
      error: "expected one of route, redirect, directResponse or delegate",
    },
  );

const RouteDestination = z.strictObject({
  destination: Destination,
  weight: z.int().min(0).max(100).optional(),
});

const L4MatchAttributes = z.looseObject({
  destinationSubnets: z.array(z.string()).optional(),
  port: PortNumber.optional(),
  sourceLabels: StringMap.optional(),
  gateways: z.array(z.string()).optional(),
});

const TLSMatchAttributes = z.looseObject({
  sniHosts: z.array(z.string()).min(1),
  port: PortNumber.optional(),
});

/** `VirtualService.spec`. */
export const VirtualServiceSpec = z.strictObject({
  hosts: z.array(Host).optional(),
  gateways: z.array(z.string().min(1)).optional(),
  http: z.array(HTTPRoute).optional(),
  tls: z
    .array(z.strictObject({ match: z.array(TLSMatchAttributes).min(1), route: z.array(RouteDestination) }))
    .optional(),
  tcp: z
    .array(z.strictObject({ match: z.array(L4MatchAttributes).optional(), route: z.array(RouteDestination) }))
    .optional(),
  exportTo: ExportTo.optional(),
});

const ClientTLSSettings = z.looseObject({
  mode: z.enum(["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]).optional(),
});

const TrafficPolicy = z.looseObject({
  loadBalancer: z.looseObject({}).optional(),
  connectionPool: z.looseObject({}).optional(),
  outlierDetection: z.looseObject({}).optional(),
  tls: ClientTLSSettings.optional(),
  portLevelSettings: z
    .array(z.looseObject({ port: PortSelector.optional(), tls: ClientTLSSettings.optional() }))
    .optional(),
  tunnel: z.looseObject({}).optional(),
  proxyProtocol: z.looseObject({}).optional(),
});

/** `DestinationRule.spec`. */
export const DestinationRuleSpec = z.strictObject({
  host: Host,
  trafficPolicy: TrafficPolicy.optional(),
  subsets: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        labels: StringMap.optional(),
        trafficPolicy: TrafficPolicy.optional(),
      }),
    )
    .optional(),
  exportTo: ExportTo.optional(),
  workloadSelector: WorkloadSelector.optional(),
});

const ServerTLSSettings = z.looseObject({
  mode: z
    .enum(["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"])
    .optional(),
  credentialName: z.string().optional(),
});

const Protocol = z.string().regex(/^(HTTP|HTTPS|GRPC|GRPC-WEB|HTTP2|MONGO|TCP|TLS|UDP|REDIS|MYSQL)$/i, {
  error: "expected a protocol: HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS",
});

const ServicePort = z.strictObject({
  number: PortNumber,
  protocol: Protocol.optional(),
  name: z.string().optional(),
  targetPort: PortNumber.optional(),
});

/** `Gateway.spec`. */
export const GatewaySpec = z.strictObject({
  servers: z
    .array(
      z.strictObject({
        port: z.strictObject({
          number: PortNumber,
          protocol: Protocol,
          name: z.string().min(1),
          targetPort: PortNumber.optional(),
        }),
        hosts: z.array(z.string().min(1)).min(1),
        tls: ServerTLSSettings.optional(),
        bind: z.string().optional(),
        defaultEndpoint: z.string().optional(),
        name: z.string().optional(),
      }),
    )
    .min(1),
  selector: StringMap.optional(),
});

/** `WorkloadEntry.spec` (also the shape of ServiceEntry endpoints and WorkloadGroup templates). */
export const WorkloadEntrySpec = z.strictObject({
  address: z.string().optional(),
  ports: z.record(z.string(), PortNumber).optional(),
  labels: StringMap.optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.int().min(0).optional(),
  serviceAccount: z.string().optional(),
});

/** `ServiceEntry.spec`. */
export const ServiceEntrySpec = z.strictObject({
  hosts: z.array(Host).min(1),
  addresses: z.array(z.string()).optional(),
  ports: z.array(ServicePort).optional(),
  location: z.enum(["MESH_EXTERNAL", "MESH_INTERNAL"]).optional(),
  resolution: z.enum(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]).optional(),
  endpoints: z.array(WorkloadEntrySpec).optional(),
  workloadSelector: WorkloadSelector.optional(),
  exportTo: ExportTo.optional(),
  subjectAltNames: z.array(z.string()).optional(),
});

/** `Sidecar.spec`. */
export const SidecarSpec = z.strictObject({
  workloadSelector: WorkloadSelector.optional(),
  ingress: z.array(z.looseObject({ port: ServicePort })).optional(),
  egress: z
    .array(
      z.strictObject({
        port: ServicePort.optional(),
        bind: z.string().optional(),
        captureMode: z.enum(["DEFAULT", "IPTABLES", "NONE"]).optional(),
        hosts: z
          .array(
            z
              .string()
              .regex(/^[^/]+\/[^/]+$/, { error: "expected namespace/dnsName, e.g. ./* or istio-system/*" }),
          )
          .min(1),
      }),
    )
    .optional(),
  outboundTrafficPolicy: z
    .looseObject({ mode: z.enum(["REGISTRY_ONLY", "ALLOW_ANY"]).optional() })
    .optional(),
  inboundConnectionPool: z.looseObject({}).optional(),
});

/** `WorkloadGroup.spec`. */
export const WorkloadGroupSpec = z.strictObject({
  metadata: z.strictObject({ labels: StringMap.optional(), annotations: StringMap.optional() }).optional(),
  template: WorkloadEntrySpec,
  probe: z.looseObject({}).optional(),
});

/** `EnvoyFilter.spec`. */
export const EnvoyFilterSpec = z.strictObject({
  workloadSelector: WorkloadSelector.optional(),
  targetRefs: z.array(PolicyTargetReference).optional(),
  configPatches: z
    .array(
      z.strictObject({
        applyTo: z.enum([
          "INVALID",
          "LISTENER",
          "FILTER_CHAIN",
          "NETWORK_FILTER",
          "HTTP_FILTER",
          "ROUTE_CONFIGURATION",
          "VIRTUAL_HOST",
          "HTTP_ROUTE",
          "CLUSTER",
          "EXTENSION_CONFIG",
          "BOOTSTRAP",
          "LISTENER_FILTER",
        ]),
        match: z
          .looseObject({
            context: z.enum(["ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"]).optional(),
          })
          .optional(),
        patch: z.strictObject({
          operation: z.enum([
            "INVALID",
            "MERGE",
            "ADD",
            "REMOVE",
            "INSERT_BEFORE",
            "INSERT_AFTER",
            "INSERT_FIRST",
            "REPLACE",
          ]),
          value: z.record(z.string(), z.unknown()).optional(),
          filterClass: z.enum(["UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"]).optional(),
        }),
      }),
    )
    .optional(),
  priority: z.int().optional(),
});
