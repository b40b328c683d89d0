import { defineConfig } from "tsup";

// ESM only: the command is started by bin/meshlet.mjs, and `index` exports `main` for embedding.
// Each command is its own entry so `meshlet validate` never loads what `meshlet serve` needs;
// `@meshlet/cli/control-plane` (the control plane `meshlet serve` runs) is one too.
export default defineConfig({
  entry: [
    "src/index.ts",
    "src/main.ts",
    "src/commands/*.ts",
    "src/serve/control-plane.ts",
    "src/serve/admin-extension.ts",
    "!src/**/*.spec.ts",
  ],
  format: ["esm"],
  dts: { entry: ["src/index.ts", "src/serve/control-plane.ts", "src/serve/admin-extension.ts"] },
  sourcemap: true,
  clean: true,
  target: "node20",
  external: [/^@meshlet\//],
});
