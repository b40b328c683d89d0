import { defineConfig } from "vitest/config";

// One run over every package: unit specs beside the code (src/**/*.spec.ts) and integration tests
// that start real processes (test/**/*.test.ts). Packages are resolved through their built dist/
// (npm test builds first), exactly as users import them.
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.spec.ts", "packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
