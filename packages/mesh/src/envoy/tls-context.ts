import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type CertificateValidationContext,
  CertificateValidationContextSchema,
  TlsParameters_TlsProtocol,
  TlsParametersSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/common_pb";
import type { SdsSecretConfig } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import {
  type DownstreamTlsContext,
  DownstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { StringMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import { IstioNames } from "../naming/listener-names.js";
import { credentialSecretConfig, exactMatchers, sdsSecretConfig } from "../translate/tls.js";
import type { ServerTlsView } from "./spec-views.js";
import { Alpn, KUBERNETES_SECRET_PREFIX, SDS_CA_SUFFIX, SUPPORTED_CIPHERS } from "./well-known.js";

// Downstream (server-side) TLS contexts: the inbound mTLS of sidecars (istio/istio
// pilot/pkg/security/authn/utils/utils.go `BuildInboundTLS`) and Gateway servers terminating TLS
// (pilot/pkg/networking/core/listener.go `BuildListenerTLSContext`), with certificates over SDS as
// Istio configures them (pkg/model/authentication.go, pilot/pkg/security/model/authentication.go).

/**
 * The SDS resource name of a Gateway `credentialName` (Istio `credentials.ToResourceName`):
 * `kubernetes://<name>` unless the name already carries a `kubernetes://` or
 * `kubernetes-gateway://` prefix; `builtin://` means the workload certificate (`default`).
 */
export function credentialResourceName(credentialName: string): string {
  if (credentialName.startsWith("builtin://")) return IstioNames.sdsDefault;
  if (
    credentialName.startsWith(KUBERNETES_SECRET_PREFIX) ||
    credentialName.startsWith("kubernetes-gateway://")
  )
    return credentialName;
  return `${KUBERNETES_SECRET_PREFIX}${credentialName}`;
}

/**
 * The SDS config of a credential (Istio `ConstructSdsSecretConfigForCredential`): `builtin://` is
 * the workload certificate over the agent's SDS, anything else a secret istiod serves over ADS.
 */
export function credentialSdsSecret(credentialName: string): SdsSecretConfig {
  if (credentialName === "builtin://") return sdsSecretConfig(IstioNames.sdsDefault);
  if (credentialName === `builtin://${SDS_CA_SUFFIX}`) return sdsSecretConfig(IstioNames.sdsRootCa);
  return credentialSecretConfig(credentialResourceName(credentialName));
}

/**
 * The server side of Istio mTLS on a sidecar's inbound chain (Istio `BuildInboundTLS`): the
 * workload certificate `default`, client certificates required and validated against `ROOTCA`,
 * Istio's cipher suites, TLS 1.2 to 1.3; ALPN `h2,http/1.1` for HTTP chains and
 * `istio-peer-exchange,h2,http/1.1` for TCP chains (metadata exchange on).
 */
export function inboundMtlsContext(
  protocol: "http" | "tcp",
  options: { readonly trustDomainAliases?: readonly string[] } = {},
): DownstreamTlsContext {
  const aliases = options.trustDomainAliases ?? [];
  const validation: CertificateValidationContext = create(CertificateValidationContextSchema, {
    matchSubjectAltNames: aliases.map((td) =>
      create(StringMatcherSchema, { matchPattern: { case: "prefix", value: `spiffe://${td}/` } }),
    ),
  });
  return create(DownstreamTlsContextSchema, {
    commonTlsContext: {
      alpnProtocols: [...(protocol === "http" ? Alpn.http : Alpn.downstreamWithMxc)],
      tlsParams: create(TlsParametersSchema, {
        cipherSuites: [...SUPPORTED_CIPHERS],
        tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
        tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
      }),
      tlsCertificateSdsSecretConfigs: [sdsSecretConfig(IstioNames.sdsDefault)],
      validationContextType: {
        case: "combinedValidationContext",
        value: {
          defaultValidationContext: validation,
          validationContextSdsSecretConfig: sdsSecretConfig(IstioNames.sdsRootCa),
        },
      },
    },
    requireClientCertificate: true,
  });
}

const TLS_VERSION: Readonly<Record<string, TlsParameters_TlsProtocol>> = {
  TLSV1_0: TlsParameters_TlsProtocol.TLSv1_0,
  TLSV1_1: TlsParameters_TlsProtocol.TLSv1_1,
  TLSV1_2: TlsParameters_TlsProtocol.TLSv1_2,
  TLSV1_3: TlsParameters_TlsProtocol.TLSv1_3,
};

/**
 * The TLS context of a Gateway server that terminates TLS (Istio `BuildListenerTLSContext`):
 * `SIMPLE`/`MUTUAL`/`OPTIONAL_MUTUAL` with `credentialName` fetch the certificate (and for mutual
 * modes the CA, `<name>-cacert`) over ADS; `ISTIO_MUTUAL` uses the gateway's workload certificate
 * and the mesh root. ALPN `h2,http/1.1` (TCP servers under ISTIO_MUTUAL:
 * `istio-peer-exchange,h2,http/1.1`). Server certificate files (`serverCertificate`) are served by
 * the agent's file SDS in Istio; meshlet serves credentials only, and such a server is refused by
 * the generator.
 */
export function gatewayServerTlsContext(
  tls: ServerTlsView,
  tcpWithIstioMutual = false,
): DownstreamTlsContext {
  const mode = tls.mode;
  const mutual = mode === "MUTUAL" || mode === "ISTIO_MUTUAL";
  const sans = tls.subjectAltNames;
  type Common = NonNullable<MessageInitShape<typeof DownstreamTlsContextSchema>["commonTlsContext"]>;
  const common: Common = { alpnProtocols: [...(tcpWithIstioMutual ? Alpn.downstreamWithMxc : Alpn.http)] };
  if (mode === "ISTIO_MUTUAL") {
    common.tlsCertificateSdsSecretConfigs = [sdsSecretConfig(IstioNames.sdsDefault)];
    common.validationContextType = {
      case: "combinedValidationContext",
      value: {
        defaultValidationContext: create(CertificateValidationContextSchema, {
          matchSubjectAltNames: exactMatchers(sans),
        }),
        validationContextSdsSecretConfig: sdsSecretConfig(IstioNames.sdsRootCa),
      },
    };
  } else {
    const credential = tls.credentialName ?? "";
    common.tlsCertificateSdsSecretConfigs = [credentialSdsSecret(credential)];
    if (mode === "MUTUAL" || mode === "OPTIONAL_MUTUAL") {
      common.validationContextType = {
        case: "combinedValidationContext",
        value: {
          defaultValidationContext: create(CertificateValidationContextSchema, {
            matchSubjectAltNames: exactMatchers(sans),
            verifyCertificateSpki: [...tls.verifyCertificateSpki],
            verifyCertificateHash: [...tls.verifyCertificateHash],
          }),
          validationContextSdsSecretConfig: credentialSdsSecret(`${credential}${SDS_CA_SUFFIX}`),
        },
      };
    } else if (sans.length > 0) {
      common.validationContextType = {
        case: "validationContext",
        value: create(CertificateValidationContextSchema, { matchSubjectAltNames: exactMatchers(sans) }),
      };
    }
    const min = TLS_VERSION[tls.minProtocolVersion ?? ""];
    const max = TLS_VERSION[tls.maxProtocolVersion ?? ""];
    const ciphers = tls.cipherSuites;
    if (min !== undefined || max !== undefined || ciphers.length > 0) {
      common.tlsParams = create(TlsParametersSchema, {
        ...(min !== undefined ? { tlsMinimumProtocolVersion: min } : {}),
        ...(max !== undefined ? { tlsMaximumProtocolVersion: max } : {}),
        cipherSuites: [...ciphers],
      });
    }
  }
  return create(DownstreamTlsContextSchema, { commonTlsContext: common, requireClientCertificate: mutual });
}
