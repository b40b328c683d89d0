import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/redis.ts", "src/prometheus.ts", "src/vault.ts", "src/cfssl.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: [/^@meshlet\//, "ioredis", "prom-client", "rxjs"],
});
