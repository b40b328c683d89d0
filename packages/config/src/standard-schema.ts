// The Standard Schema v1 interface (https://standardschema.dev), declared here rather than imported:
// the spec is meant to be copied, and it lets users register kinds with zod, valibot, arktype or a
// hand-written validator without meshlet depending on any of them.

/** A validator implementing Standard Schema v1 (zod 4 schemas do). */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** The result of a Standard Schema validation. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

/** One issue reported by a Standard Schema validator. */
export interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}
