import { defineConfig } from "tsup";

const external = ["rxjs", "yaml", "etcd3", "@kubernetes/client-node", "re2-wasm"];

export default defineConfig([
  {
    entry: ["src/index.ts"],
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    external,
  },
  {
    // The schema packages (@kubernetes-models/istio, kubernetes-models) ship ES modules only, which
    // `require` cannot load on every Node version meshlet supports: the CommonJS build bundles them.
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
