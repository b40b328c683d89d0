import { defineConfig } from "tsup";

const external = [/^@meshlet\//, "rxjs", "yaml", "fast-json-patch", "@kubernetes/client-node"];

export default defineConfig([
  {
    entry: ["src/index.ts"],
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    external: [...external, /^kubernetes-models/, /^@kubernetes-models\//],
  },
  {
    // kubernetes-models ships ES modules only, which `require` cannot load on every Node version
    // meshlet supports: the CommonJS build bundles it (as @meshlet/config's does).
    entry: ["src/index.ts"],
    format: ["cjs"],
    dts: true,
    sourcemap: true,
    clean: false,
    target: "node20",
    external,
    noExternal: [/^@kubernetes-models\//, /^kubernetes-models/],
  },
]);
