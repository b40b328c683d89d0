import { defineConfig } from "tsup";

// Two programs: main.js (the control plane, the workloads' supervisor and the terminal view) and
// workload.js (one Bookinfo workload per process, as one pod each); reference-mesh.js is the mesh
// as a module, for tests that run it in their own process. Dependencies stay external
// (tsup leaves the package's dependencies out of the bundle).
export default defineConfig({
  entry: ["src/main.ts", "src/workload.ts", "src/reference-mesh.ts"],
  format: ["esm"],
  sourcemap: true,
  clean: true,
  target: "node20",
});
