import type { ResourceKey } from "@meshlet/config";
import type { XdsClientKind } from "./capabilities.js";

/**
 * Stable codes of translation warnings:
 * - `UNSUPPORTED_BY_CLIENT`: a feature the proxy would reject was left out for it;
 * - `IGNORED_BY_ISTIO`: a field Istio does not translate either (e.g. exponential delay faults);
 * - `INVALID_CONFIG`: a value that cannot be translated (an unparsable duration, a bad regex).
 */
export type TranslationWarningCode = "UNSUPPORTED_BY_CLIENT" | "IGNORED_BY_ISTIO" | "INVALID_CONFIG";

/** Something the translation left out or changed, and why. */
export interface TranslationWarning {
  readonly code: TranslationWarningCode;
  /** What was left out and why, in words a user can act on. */
  readonly message: string;
  /** The config object the feature came from, when known. */
  readonly config?: ResourceKey;
  /** Field path in that object, e.g. `spec.http[0].corsPolicy`. */
  readonly path?: string;
  /** The client the feature was left out for. */
  readonly client?: XdsClientKind;
}

/** Where translation functions report warnings. */
export type WarningSink = (warning: TranslationWarning) => void;

/** A sink that drops warnings. */
export const ignoreWarnings: WarningSink = () => {};
