import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/config-rules.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: [/^@meshlet\//, /^@bufbuild\//, /^@grpc\//, "rxjs", "jose", "yaml"],
});
