export * from "./analyze.js";
export * from "./config-error.js";
export * from "./config-snapshot.js";
export * from "./diagnostic.js";
export * from "./diagnostic-code.js";
export * from "./host.js";
export * from "./kind-registry.js";
export * from "./kinds.js";
export * from "./logger.js";
export * from "./parse-documents.js";
export * from "./resource.js";
export {
  conditionKeyProblem,
  conditionValueProblem,
  isPathTemplate,
  MAX_SERVICE_ACCOUNT_VALUES,
  pathTemplateProblem,
  serviceAccountProblem,
} from "./rules/security-values.js";
export * from "./sources/config-source.js";
export * from "./sources/etcd-source.js";
export * from "./sources/file-source.js";
export * from "./sources/kubernetes-source.js";
export * from "./sources/memory-source.js";
export * from "./standard-schema.js";
export * from "./store/config-status.js";
export * from "./store/config-store.js";
export * from "./validate-files.js";
export * from "./validate-resource.js";
