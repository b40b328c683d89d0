import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/client.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: false,
  shims: true,
  target: "node20",
  external: [/^@meshlet\//, /^@bufbuild\//, /^@connectrpc\//, "rxjs"],
});
