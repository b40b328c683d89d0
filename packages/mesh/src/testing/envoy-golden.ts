import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { ClusterLoadAssignmentSchema } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { envoyRegistry } from "../envoy/istio-extensions.js";
import type { EnvoyResources } from "../envoy/resources.js";

// Test support (not part of the public API): golden files of generated Envoy config. A golden file
// is the proto3 JSON (proto field names, `@type` in Any) of every resource, by type, sorted by
// name, exactly as `istioctl proxy-config … -o json` prints Envoy's. To regenerate after an
// intended change: `MESHLET_UPDATE_GOLDEN=1 npx vitest run packages/mesh/src/envoy/golden.spec.ts`,
// then review the diff.

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "envoy", "testdata", "golden");

const opts = { registry: envoyRegistry, useProtoFieldName: true } as const;

/** Resources as the JSON a golden file holds. */
export function envoyJson(r: EnvoyResources): unknown {
  return {
    listeners: r.listeners.map((x) => toJson(ListenerSchema, x, opts)),
    routes: r.routes.map((x) => toJson(RouteConfigurationSchema, x, opts)),
    clusters: r.clusters.map((x) => toJson(ClusterSchema, x, opts)),
    endpoints: r.endpoints.map((x) => toJson(ClusterLoadAssignmentSchema, x, opts)),
    secrets: r.secrets.map((x) => toJson(SecretSchema, x, opts)),
  };
}

/**
 * The golden JSON of a scenario and the JSON generated now: equal when the generator is
 * unchanged. With `MESHLET_UPDATE_GOLDEN=1` the file is (re)written from the generated JSON first.
 */
export function golden(name: string, r: EnvoyResources): { want: unknown; got: unknown; file: string } {
  const file = join(GOLDEN_DIR, `${name}.json`);
  const got = JSON.parse(JSON.stringify(envoyJson(r)));
  if (process.env.MESHLET_UPDATE_GOLDEN === "1" || !existsSync(file)) {
    if (process.env.MESHLET_UPDATE_GOLDEN !== "1") {
      throw new Error(
        `golden file ${file} is missing; run with MESHLET_UPDATE_GOLDEN=1 to write it, then review it`,
      );
    }
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, `${JSON.stringify(got, null, 2)}\n`);
  }
  return { want: JSON.parse(readFileSync(file, "utf8")), got, file };
}
