import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    external: ["rxjs", "yaml", "zod", "etcd3", "@kubernetes/client-node"],
  },
  {
    // The `meshlet` command: ESM only, with a shebang, so `npx meshlet validate …` works after install.
    entry: { cli: "src/cli/main.ts" },
    format: ["esm"],
    sourcemap: true,
    clean: false,
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
    external: ["rxjs", "yaml", "zod", "etcd3", "@kubernetes/client-node"],
  },
]);
