export type { Authenticator, CallContext, Caller } from "./auth/authenticator.js";
export { JwtAuthenticator } from "./auth/jwt-authenticator.js";
export { type JwtClaims, JwtVerifier, type JwtVerifierOptions } from "./auth/jwt-verifier.js";
export {
  ISTIO_CA_AUDIENCE,
  type KubernetesTokenReviewOptions,
  KubernetesTokenReviewVerifier,
} from "./auth/kubernetes-token-review-verifier.js";
export { MtlsAuthenticator } from "./auth/mtls-authenticator.js";
export { serviceAccountToSpiffeId } from "./auth/service-account.js";
export type { TokenVerifier, VerifiedToken } from "./auth/token-verifier.js";
export { CaError, type CaErrorCode } from "./ca-error.js";
export {
  CertificateAuthority,
  type CertificateAuthorityOptions,
  type CertificateChain,
  DEFAULT_MAX_TTL_MS,
  DEFAULT_ROOT_TTL_MS,
  DEFAULT_TTL_MS,
  type FromSignerOptions,
  type IstioCaCertsOptions,
  type SelfSignedCaOptions,
  type SignedCertificate,
  type SignRequest,
  type X509Svid,
} from "./certificate-authority.js";
export { DirectoryRootStore } from "./directory-root-store.js";
export { type Duration, toMilliseconds } from "./duration.js";
export type { ExternalSigner, ExternalSignRequest } from "./external-signer.js";
export type { IssueRequest, Issuer } from "./issuer.js";
export { ISTIO_CA_CERT_FILES } from "./istio-ca-certs.js";
export {
  DEFAULT_JWT_SVID_TTL_MS,
  type JwtBundle,
  type JwtBundleKey,
  type JwtSvid,
  toJwtBundleJson,
  type ValidatedJwtSvid,
} from "./jwt-svid.js";
export { generateKey, KEY_TYPES, type KeyPair, type KeyType } from "./key-type.js";
export { inClusterConnection, type KubernetesConnection } from "./kubernetes/kube-request.js";
export {
  ISTIO_CA_SECRET,
  KubernetesSecretRootStore,
  type KubernetesSecretRootStoreOptions,
} from "./kubernetes/kubernetes-secret-root-store.js";
export { consoleLogger, type Logger, silentLogger } from "./logger.js";
export { fromPem, type PemBlock, toPem } from "./pem.js";
export type { RootRotation, RootRotationOptions, RootRotatorOptions } from "./root-rotation.js";
export type { RootStore, StoredRoot } from "./root-store.js";
export { IstioCertificateClient } from "./server/istio-certificate-client.js";
export {
  type Authorizer,
  type CertificateServiceEvent,
  IstioCertificateService,
  type IstioCertificateServiceOptions,
} from "./server/istio-certificate-service.js";
export type { ListeningServer, SecureListenOptions } from "./server/listen.js";
export {
  SDS_RESOURCE_NAMES,
  SdsServer,
  type SdsServerOptions,
  type SecretUpdate,
  toTlsCertificateSecret,
  toValidationContextSecret,
} from "./server/sds-server.js";
export { createSpiffeServerCredentials } from "./server/spiffe-credentials.js";
export {
  WORKLOAD_API_HEADER,
  WorkloadApiServer,
  type WorkloadApiServerOptions,
} from "./server/workload-api-server.js";
export { MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES, SpiffeId, validateTrustDomain } from "./spiffe-id.js";
export { checkSpiffeId, spiffeIdOf } from "./spiffe-tls.js";
export {
  DEFAULT_MAX_BACKDATE_MS,
  type SvidExpectations,
  SvidValidator,
  type ValidatedSvid,
  validateSvid,
} from "./svid-profile.js";
export { renewalTime, type SvidRotationOptions, svidRotation$ } from "./svid-rotation.js";
export {
  type SpiffeBundle,
  type SpiffeBundleKey,
  type TrustBundle,
  toDerBundle,
  toSpiffeBundle,
} from "./trust-bundle.js";
export {
  type CreateCsrOptions,
  createCsr,
  type ParsedCsr,
  parseCsr,
  type SignatureCheck,
  type SignatureVerifier,
} from "./x509/csr.js";
export type { PublicKeyInput } from "./x509/public-key.js";
