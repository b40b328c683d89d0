import type { Registry } from "@bufbuild/protobuf";
import type { CachedResource } from "../cached-resource.js";

/** Placeholder, replaced by the field-rule validator. */
export function validateResource(_resource: CachedResource, _registry: Registry | undefined): void {}
