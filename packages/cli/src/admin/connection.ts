import { readFileSync } from "node:fs";
import type { AdminClient } from "@meshlet/admin/client";
import type { CommandIo } from "../command.js";

/** Where `meshlet serve` serves the admin API unless told otherwise. */
export const DEFAULT_ADMIN_URL = "http://127.0.0.1:15015";
/** The environment variable holding the admin API's bearer token. */
export const ADMIN_TOKEN_ENV = "MESHLET_ADMIN_TOKEN";

/** The admin connection flags every admin command takes, for its usage text. */
export const ADMIN_FLAGS = `  --admin <url>               The control plane's admin API (default $MESHLET_ADMIN_URL, else ${DEFAULT_ADMIN_URL}).
  --admin-token-env <var>     Environment variable holding its bearer token (default ${ADMIN_TOKEN_ENV}).
  --admin-ca <file>           PEM CA to verify an https admin URL with.`;

/** Connection settings read from the flags and the environment. */
export interface AdminConnection {
  url: string;
  tokenEnv: string;
  ca?: string;
}

/** Takes an admin flag at `args[i]` if it is one; returns how many arguments it used (0: not one). */
export function takeAdminFlag(args: readonly string[], i: number, conn: AdminConnection): number | string {
  const arg = args[i] as string;
  const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
  const flag = eq > 0 ? arg.slice(0, eq) : arg;
  if (flag !== "--admin" && flag !== "--admin-token-env" && flag !== "--admin-ca") return 0;
  const value = eq > 0 ? arg.slice(eq + 1) : args[i + 1];
  if (value === undefined || value === "") return `${flag} needs a value`;
  if (flag === "--admin") conn.url = value;
  else if (flag === "--admin-token-env") conn.tokenEnv = value;
  else conn.ca = value;
  return eq > 0 ? 1 : 2;
}

/** The default connection: $MESHLET_ADMIN_URL or the default URL, token from $MESHLET_ADMIN_TOKEN. */
export function defaultConnection(io: CommandIo): AdminConnection {
  return { url: io.env.MESHLET_ADMIN_URL ?? DEFAULT_ADMIN_URL, tokenEnv: ADMIN_TOKEN_ENV };
}

/** A MeshAdmin client for the connection (the token read from the environment, never from argv). */
export async function adminClient(conn: AdminConnection, io: CommandIo): Promise<AdminClient> {
  const { createAdminClient } = await import("@meshlet/admin/client");
  const token = io.env[conn.tokenEnv];
  return createAdminClient({
    url: conn.url,
    ...(token !== undefined && token !== "" ? { token } : {}),
    ...(conn.ca !== undefined ? { ca: readFileSync(conn.ca) } : {}),
  });
}

/** A call's failure as one line that says what to do. */
export function describeAdminError(error: unknown, conn: AdminConnection): string {
  const e = error as { code?: number; rawMessage?: string; message?: string; name?: string };
  if (e?.name === "ConnectError") {
    switch (e.code) {
      case 16:
        return `${conn.url} refused the call (unauthenticated): set ${conn.tokenEnv} to the control plane's admin token`;
      case 14:
        return `cannot reach the admin API at ${conn.url} (${e.rawMessage}); is meshlet serve running, with --admin at that address?`;
      default:
        return e.rawMessage ?? String(error);
    }
  }
  return error instanceof Error ? error.message : String(error);
}
