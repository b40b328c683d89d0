import { create } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  DataSourceSchema,
  type TransportSocket,
  TransportSocketSchema,
} from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  ApiConfigSource_ApiType,
  ApiConfigSourceSchema,
  ApiVersion,
  ConfigSourceSchema,
} from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import {
  GrpcService_EnvoyGrpcSchema,
  GrpcServiceSchema,
} from "@meshlet/api/envoy/config/core/v3/grpc_service_pb";
import {
  CertificateProviderPluginInstanceSchema,
  CertificateValidationContextSchema,
  TlsParameters_TlsProtocol,
  TlsParametersSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/common_pb";
import {
  type SdsSecretConfig,
  SdsSecretConfigSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import {
  type CommonTlsContext,
  CommonTlsContext_CertificateProviderInstanceSchema,
  CommonTlsContext_CombinedCertificateValidationContextSchema,
  CommonTlsContextSchema,
  type DownstreamTlsContext,
  DownstreamTlsContextSchema,
  type UpstreamTlsContext,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { type StringMatcher, StringMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import type { ProxyCapabilities } from "./capabilities.js";
import type { IstioClientTls } from "./istio-fields.js";

// TLS contexts in the two flavours Istio generates (istio/istio pilot/pkg/networking/core/cluster_tls.go
// for Envoy, whose certificates come over SDS from the agent as secrets `default` and `ROOTCA`;
// pilot/pkg/networking/grpcgen/grpcgen.go `buildCommonTLSContext` for proxyless gRPC, whose
// certificates come from the bootstrap's certificate provider instance `default`, certificate names
// `default` and `ROOTCA`, gRFC A29).

/** The transport socket name gRPC requires and Envoy uses (Istio `wellknown.TransportSocketTLS`). */
export const TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls";

/** Istio's SDS names: the workload certificate, the mesh roots, and the agent's SDS cluster. */
export const SdsNames = {
  workload: "default",
  root: "ROOTCA",
  cluster: "sds-grpc",
} as const;

/** The certificate provider instance proxyless clients read (the bootstrap's `certificate_providers.default`). */
export const CERTIFICATE_PROVIDER_INSTANCE = "default";

/** ALPN sets Istio advertises (istio/istio pilot/pkg/networking/util/util.go). */
export const Alpn = {
  /** `ALPNInMeshWithMxc`: in-mesh mTLS with metadata exchange. */
  inMeshWithMxc: ["istio-peer-exchange", "istio"],
  /** `ALPNInMeshH2WithMxc`: in-mesh mTLS to an HTTP/2 cluster. */
  inMeshH2WithMxc: ["istio-peer-exchange", "istio", "h2"],
  /** `ALPNH2Only`. */
  h2Only: ["h2"],
} as const;

/**
 * Istio `ConstructSdsSecretConfig`: a secret fetched over SDS from the agent's `sds-grpc` cluster
 * (gRPC API config source, V3, node on the first message only); `default` and `ROOTCA` also set an
 * initial fetch timeout of 0s (wait for them).
 */
export function sdsSecretConfig(name: string): SdsSecretConfig {
  const wellKnown = name === SdsNames.workload || name === SdsNames.root;
  return create(SdsSecretConfigSchema, {
    name,
    sdsConfig: create(ConfigSourceSchema, {
      configSourceSpecifier: {
        case: "apiConfigSource",
        value: create(ApiConfigSourceSchema, {
          apiType: ApiConfigSource_ApiType.GRPC,
          setNodeOnFirstMessageOnly: true,
          transportApiVersion: ApiVersion.V3,
          grpcServices: [
            create(GrpcServiceSchema, {
              targetSpecifier: {
                case: "envoyGrpc",
                value: create(GrpcService_EnvoyGrpcSchema, { clusterName: SdsNames.cluster }),
              },
            }),
          ],
        }),
      },
      resourceApiVersion: ApiVersion.V3,
      ...(wellKnown ? { initialFetchTimeout: create(DurationSchema, {}) } : {}),
    }),
  });
}

/** A `credentialName` secret as Istio names it for SDS (`kubernetes://<name>`), fetched over ADS. */
export function credentialSecretConfig(credentialName: string, root = false): SdsSecretConfig {
  const base = credentialName.includes("://") ? credentialName : `kubernetes://${credentialName}`;
  return create(SdsSecretConfigSchema, {
    name: root ? `${base}-cacert` : base,
    sdsConfig: create(ConfigSourceSchema, {
      configSourceSpecifier: { case: "ads", value: {} },
      resourceApiVersion: ApiVersion.V3,
    }),
  });
}

/** Exact SAN matchers (Istio `util.StringToExactMatch`). */
export function exactMatchers(values: readonly string[]): StringMatcher[] {
  return values.map((v) => create(StringMatcherSchema, { matchPattern: { case: "exact", value: v } }));
}

/**
 * The common TLS context of a proxyless gRPC client or server (Istio grpcgen `buildCommonTLSContext`):
 * identity from provider instance `default` (certificate `default`), roots from the same instance
 * (certificate `ROOTCA`), exact SAN matchers. Both the current fields
 * (`tls_certificate_provider_instance`, `ca_certificate_provider_instance`) and the deprecated ones
 * are set, as Istio does (grpcgen tls_test.go): grpc-js reads the current ones, older C-core the
 * deprecated ones.
 */
export function certificateProviderTlsContext(sans: readonly string[]): CommonTlsContext {
  const instance = (certificateName: string) =>
    create(CommonTlsContext_CertificateProviderInstanceSchema, {
      instanceName: CERTIFICATE_PROVIDER_INSTANCE,
      certificateName,
    });
  const plugin = (certificateName: string) =>
    create(CertificateProviderPluginInstanceSchema, {
      instanceName: CERTIFICATE_PROVIDER_INSTANCE,
      certificateName,
    });
  return create(CommonTlsContextSchema, {
    tlsCertificateProviderInstance: plugin(SdsNames.workload),
    tlsCertificateCertificateProviderInstance: instance(SdsNames.workload),
    validationContextType: {
      case: "combinedValidationContext",
      value: create(CommonTlsContext_CombinedCertificateValidationContextSchema, {
        defaultValidationContext: create(CertificateValidationContextSchema, {
          matchSubjectAltNames: exactMatchers(sans),
          caCertificateProviderInstance: plugin(SdsNames.root),
        }),
        validationContextCertificateProviderInstance: instance(SdsNames.root),
      }),
    },
  });
}

/** Istio `defaultUpstreamCommonTLSContext`: TLS 1.2 to 1.3. */
function defaultUpstreamCommonTlsContext(): CommonTlsContext {
  return create(CommonTlsContextSchema, {
    tlsParams: create(TlsParametersSchema, {
      tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
      tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
    }),
  });
}

/** What {@link upstreamTlsContext} needs besides the DestinationRule's `tls`. */
export interface UpstreamTlsOptions {
  /** Where certificates come from ({@link ProxyCapabilities.secrets}). */
  readonly secrets: ProxyCapabilities["secrets"];
  /** The cluster speaks HTTP/2 (ALPN `h2`). */
  readonly http2?: boolean;
  /** The cluster name (the default SNI of ISTIO_MUTUAL when none is given). */
  readonly clusterName?: string;
}

/** The result of {@link upstreamTlsContext}: the context, or why none could be built. */
export type UpstreamTlsResult =
  | { readonly context: UpstreamTlsContext; readonly error?: undefined }
  | { readonly context?: undefined; readonly error?: string };

/**
 * An UpstreamTlsContext for a DestinationRule `tls` setting (Istio `buildUpstreamClusterTLSContext`),
 * with SANs and SNI already resolved for ISTIO_MUTUAL (see `resolveIstioMutual` in cluster.ts):
 * - DISABLE: none;
 * - ISTIO_MUTUAL: the workload certificate and the mesh roots (SDS `default`/`ROOTCA`, or the
 *   certificate provider instance), exact SAN matchers, SNI (default: the cluster name), Istio's ALPN;
 * - SIMPLE / MUTUAL (SDS only): a `credentialName` secret, or files served by SDS
 *   (`file-cert:<cert>~<key>`, `file-root:<ca>`; `system` roots by default), no validation with
 *   `insecureSkipVerify`, ALPN `h2` for HTTP/2 clusters. MUTUAL without a certificate and key is an
 *   error, as in Istio. gRPC clients have no SIMPLE/MUTUAL (Istio's grpcgen leaves them out too).
 */
export function upstreamTlsContext(
  tls: IstioClientTls | undefined,
  options: UpstreamTlsOptions,
): UpstreamTlsResult {
  const mode = tls?.mode;
  if (tls === undefined || mode === undefined || mode === "DISABLE") return {};
  if (options.secrets === "certificate-provider") {
    if (mode !== "ISTIO_MUTUAL")
      return { error: `tls mode ${mode} is not supported by proxyless gRPC (only ISTIO_MUTUAL)` };
    const context = create(UpstreamTlsContextSchema, {
      commonTlsContext: certificateProviderTlsContext(tls.subjectAltNames ?? []),
    });
    if (tls.sni !== undefined && tls.sni !== "") context.sni = tls.sni;
    return { context };
  }
  if (mode === "ISTIO_MUTUAL") {
    const common = defaultUpstreamCommonTlsContext();
    common.tlsCertificateSdsSecretConfigs = [sdsSecretConfig(SdsNames.workload)];
    common.validationContextType = {
      case: "combinedValidationContext",
      value: create(CommonTlsContext_CombinedCertificateValidationContextSchema, {
        defaultValidationContext: create(CertificateValidationContextSchema, {
          matchSubjectAltNames: exactMatchers(tls.subjectAltNames ?? []),
        }),
        validationContextSdsSecretConfig: sdsSecretConfig(SdsNames.root),
      }),
    };
    common.alpnProtocols = [...(options.http2 ? Alpn.inMeshH2WithMxc : Alpn.inMeshWithMxc)];
    const sni = tls.sni !== undefined && tls.sni !== "" ? tls.sni : (options.clusterName ?? "");
    return { context: create(UpstreamTlsContextSchema, { commonTlsContext: common, sni }) };
  }
  const common = defaultUpstreamCommonTlsContext();
  const context = create(UpstreamTlsContextSchema, { commonTlsContext: common, sni: tls.sni ?? "" });
  const sans = exactMatchers(tls.subjectAltNames ?? []);
  if (tls.credentialName !== undefined && tls.credentialName !== "") {
    if (mode === "MUTUAL")
      common.tlsCertificateSdsSecretConfigs = [credentialSecretConfig(tls.credentialName)];
    common.validationContextType = {
      case: "combinedValidationContext",
      value: create(CommonTlsContext_CombinedCertificateValidationContextSchema, {
        defaultValidationContext: create(CertificateValidationContextSchema, { matchSubjectAltNames: sans }),
        validationContextSdsSecretConfig: credentialSecretConfig(tls.credentialName, mode === "MUTUAL"),
      }),
    };
  } else {
    if (mode === "MUTUAL") {
      if (!tls.clientCertificate || !tls.privateKey) {
        return { error: "tls mode MUTUAL needs clientCertificate and privateKey (or credentialName)" };
      }
      common.tlsCertificateSdsSecretConfigs = [
        sdsSecretConfig(`file-cert:${tls.clientCertificate}~${tls.privateKey}`),
      ];
    }
    const ca = tls.caCertificates !== undefined && tls.caCertificates !== "" ? tls.caCertificates : "system";
    if (tls.insecureSkipVerify === true) {
      common.validationContextType = {
        case: "validationContext",
        value: create(CertificateValidationContextSchema, {}),
      };
    } else {
      const validation = create(CertificateValidationContextSchema, { matchSubjectAltNames: sans });
      if (tls.caCrl !== undefined && tls.caCrl !== "") {
        validation.crl = create(DataSourceSchema, { specifier: { case: "filename", value: tls.caCrl } });
      }
      common.validationContextType = {
        case: "combinedValidationContext",
        value: create(CommonTlsContext_CombinedCertificateValidationContextSchema, {
          defaultValidationContext: validation,
          validationContextSdsSecretConfig: sdsSecretConfig(`file-root:${ca}`),
        }),
      };
    }
  }
  if (options.http2) common.alpnProtocols = [...Alpn.h2Only];
  return { context };
}

/**
 * The DownstreamTlsContext of an mTLS server: for proxyless gRPC (Istio grpcgen
 * `buildInboundFilterChains`) the provider-instance context without SAN checks and
 * `require_client_certificate`; for Envoy the SDS `default`/`ROOTCA` context with `alpn`.
 */
export function downstreamMtlsContext(
  secrets: ProxyCapabilities["secrets"],
  options: { readonly alpn?: readonly string[] } = {},
): DownstreamTlsContext {
  if (secrets === "certificate-provider") {
    return create(DownstreamTlsContextSchema, {
      commonTlsContext: certificateProviderTlsContext([]),
      requireClientCertificate: true,
    });
  }
  const common = create(CommonTlsContextSchema, {
    tlsParams: create(TlsParametersSchema, { tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2 }),
    tlsCertificateSdsSecretConfigs: [sdsSecretConfig(SdsNames.workload)],
    validationContextType: {
      case: "combinedValidationContext",
      value: create(CommonTlsContext_CombinedCertificateValidationContextSchema, {
        defaultValidationContext: create(CertificateValidationContextSchema, {}),
        validationContextSdsSecretConfig: sdsSecretConfig(SdsNames.root),
      }),
    },
    alpnProtocols: [...(options.alpn ?? [])],
  });
  return create(DownstreamTlsContextSchema, { commonTlsContext: common, requireClientCertificate: true });
}

/** A `transport_socket` named `envoy.transport_sockets.tls` carrying a TLS context. */
export function tlsTransportSocket(context: UpstreamTlsContext | DownstreamTlsContext): TransportSocket {
  const typedConfig =
    context.$typeName === "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
      ? anyPack(UpstreamTlsContextSchema, context)
      : anyPack(DownstreamTlsContextSchema, context);
  return create(TransportSocketSchema, {
    name: TLS_TRANSPORT_SOCKET,
    configType: { case: "typedConfig", value: typedConfig },
  });
}
