import { fileURLToPath } from "node:url";
import { bootstrapConfig, startClientProcess, type XdsClientProcess } from "./client-process.js";

const clientsDir = fileURLToPath(new URL("../clients/", import.meta.url));

/** Where the xDS client finds the control plane, and who it says it is. */
export interface ClientTarget {
  serverPort: number;
  nodeId: string;
  /** Extra environment, e.g. trace flags while debugging. */
  env?: Record<string, string>;
}

/** Starts `@grpc/grpc-js` + `@grpc/grpc-js-xds` in a child Node process. */
export function startGrpcJsXdsClient(target: ClientTarget): Promise<XdsClientProcess> {
  return startClientProcess({
    name: "grpc-js-xds",
    command: process.execPath,
    args: [`${clientsDir}grpc-js-xds-client.mjs`],
    env: { GRPC_XDS_BOOTSTRAP_CONFIG: bootstrapConfig(target), ...target.env },
  });
}

/**
 * Debian's interpreter: python3-grpcio (gRPC C-core) is installed for it, not for a pyenv `python3`
 * that may come first on PATH.
 */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** Starts gRPC C-core (Debian python3-grpcio) in a child Python process. */
export function startCCoreClient(target: ClientTarget): Promise<XdsClientProcess> {
  return startClientProcess({
    name: "c-core",
    command: DEBIAN_PYTHON,
    args: ["-u", `${clientsDir}c-core-client.py`],
    env: { GRPC_XDS_BOOTSTRAP_CONFIG: bootstrapConfig(target), PYTHONUNBUFFERED: "1", ...target.env },
  });
}
