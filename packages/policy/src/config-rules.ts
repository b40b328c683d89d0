// `@meshlet/policy/config-rules`: the rules `@meshlet/policy` adds to `@meshlet/config`'s
// validation, as a light entry point (CEL only: no gRPC, no JWT), so `meshlet validate` and a
// ConfigStore can load them without the engine and its servers.
export {
  CONDITION_ANNOTATION,
  conditionOf,
  conditionRule,
  registerPolicyRules,
} from "./authz/policy-condition.js";
