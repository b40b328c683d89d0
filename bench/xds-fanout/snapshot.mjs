// The benchmark's xDS content: 1000 clusters (each with an Istio-style mTLS transport socket, so
// each encodes to about 1 KiB), 1000 load assignments, listeners and route configurations.
// `generation` is baked into every resource, so two generations differ in every resource.
import { create } from "@bufbuild/protobuf";
import { anyPack, StructSchema } from "@bufbuild/protobuf/wkt";
import { TransportSocketSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  SubjectAltNameMatcher_SanType,
  SubjectAltNameMatcherSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/common_pb";
import { UpstreamTlsContextSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { resources, Snapshot } from "@meshlet/xds";

const namespace = "bench";
const trustDomain = "cluster.local";

export function clusterName(i) {
  return `outbound|8080||svc-${i}.${namespace}.svc.${trustDomain}`;
}

export function routeName(i) {
  return `route-${i}`;
}

/** mTLS to the upstream the way an Istio sidecar does it: SDS certs, SAN checks, ALPN, SNI. */
function transportSocket(i, generation, sanCount) {
  const host = `svc-${i}.${namespace}.svc.${trustDomain}`;
  const sans = [];
  for (let s = 0; s < sanCount; s++) {
    sans.push(
      create(SubjectAltNameMatcherSchema, {
        sanType: SubjectAltNameMatcher_SanType.URI,
        matcher: {
          matchPattern: {
            case: "exact",
            value: `spiffe://${trustDomain}/ns/${namespace}/sa/svc-${i}-account-${s}-g${generation}`,
          },
        },
      }),
    );
  }
  const ads = { configSourceSpecifier: { case: "ads", value: {} }, resourceApiVersion: 2 };
  const tls = create(UpstreamTlsContextSchema, {
    sni: `outbound_.8080_._.${host}`,
    commonTlsContext: {
      alpnProtocols: ["istio-peer-exchange", "istio", "h2"],
      tlsParams: { tlsMinimumProtocolVersion: 3, cipherSuites: ["ECDHE-ECDSA-AES256-GCM-SHA384"] },
      tlsCertificateSdsSecretConfigs: [{ name: "default", sdsConfig: ads }],
      validationContextType: {
        case: "combinedValidationContext",
        value: {
          defaultValidationContext: { matchTypedSubjectAltNames: sans },
          validationContextSdsSecretConfig: { name: "ROOTCA", sdsConfig: ads },
        },
      },
    },
  });
  return create(TransportSocketSchema, {
    name: "envoy.transport_sockets.tls",
    configType: { case: "typedConfig", value: anyPack(UpstreamTlsContextSchema, tls) },
  });
}

function cluster(i, generation, sanCount) {
  const c = resources.cluster({ name: clusterName(i), connectTimeoutMs: 10_000 });
  c.transportSocket = transportSocket(i, generation, sanCount);
  c.metadata = {
    $typeName: "envoy.config.core.v3.Metadata",
    filterMetadata: {
      istio: create(StructSchema, {
        fields: {
          generation: { kind: { case: "numberValue", value: generation } },
          service: { kind: { case: "stringValue", value: `svc-${i}.${namespace}.svc.${trustDomain}` } },
        },
      }),
    },
    typedFilterMetadata: {},
  };
  return c;
}

function loadAssignment(i, generation, endpointsPerCluster) {
  const endpoints = [];
  for (let e = 0; e < endpointsPerCluster; e++) {
    endpoints.push({
      address: `10.${(i >> 8) & 255}.${i & 255}.${e + 1}`,
      port: 8080 + (generation % 1000),
      locality: { region: "eu-west", zone: `eu-west-${e % 3}` },
    });
  }
  return resources.loadAssignment({ clusterName: clusterName(i), endpoints });
}

/**
 * The benchmark's resource set for one generation.
 * @param {{ clusters: number, listeners: number, endpointsPerCluster: number, sanCount: number }} shape
 */
export function buildInput(shape, generation) {
  const clusters = [];
  const endpoints = [];
  for (let i = 0; i < shape.clusters; i++) {
    clusters.push(cluster(i, generation, shape.sanCount));
    endpoints.push(loadAssignment(i, generation, shape.endpointsPerCluster));
  }
  const listeners = [];
  const routes = [];
  const perRoute = Math.ceil(shape.clusters / shape.listeners);
  for (let l = 0; l < shape.listeners; l++) {
    const listener = resources.apiListener({ name: `listener-${l}`, routeConfigName: routeName(l) });
    listener.statPrefix = `listener-${l}-g${generation}`;
    listeners.push(listener);
    const virtualHosts = [];
    for (let i = l * perRoute; i < Math.min(shape.clusters, (l + 1) * perRoute); i++) {
      virtualHosts.push({
        name: `svc-${i}:8080`,
        domains: [`svc-${i}.${namespace}.svc.${trustDomain}`, `svc-${i}`, `g${generation}`],
        routes: [{ prefix: "/", cluster: clusterName(i), timeoutMs: 15_000 }],
      });
    }
    routes.push(resources.routeConfiguration({ name: routeName(l), virtualHosts }));
  }
  return { clusters, endpoints, listeners, routes };
}

/** Replaces one resource of a type in an input with its next generation. */
export function withOneChanged(input, kind, index, generation, shape) {
  const next = { ...input };
  if (kind === "endpoint") {
    next.endpoints = [...input.endpoints];
    next.endpoints[index] = loadAssignment(index, generation, shape.endpointsPerCluster);
  } else if (kind === "cluster") {
    next.clusters = [...input.clusters];
    next.clusters[index] = cluster(index, generation, shape.sanCount);
  } else {
    throw new Error(`unknown resource kind ${kind}`);
  }
  return next;
}

export function createSnapshot(input) {
  const snapshot = Snapshot.create(input);
  snapshot.consistent();
  return snapshot;
}

/**
 * A proxy's own listeners (per-proxy mode): `count` inbound listeners on the proxy's pod IP,
 * routed through the shared first route configuration. Proxy -1 is the fresh set used to time
 * "building one" snapshot.
 */
export function ownListeners(proxy, count) {
  const out = [];
  const ip =
    proxy < 0 ? "10.255.255.254" : `10.${128 + ((proxy >> 16) & 127)}.${(proxy >> 8) & 255}.${proxy & 255}`;
  for (let k = 0; k < count; k++) {
    out.push(
      resources.listener({
        name: `inbound|${15006 + k}|proxy-${proxy}`,
        routeConfigName: routeName(0),
        address: ip,
        port: 15006 + k,
      }),
    );
  }
  return out;
}
