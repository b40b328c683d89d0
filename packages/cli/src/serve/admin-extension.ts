import {
  AdminError,
  type AdminServer,
  type CertificateNotice,
  createMeshAdmin,
  DEFAULT_ADMIN_ADDRESS,
  listenAdmin,
  type MeshAdminService,
  type MetricsSource,
} from "@meshlet/admin";
import type { EnvoyGeneratorOptions } from "@meshlet/mesh";
import { filter, map } from "rxjs";
import type { ControlPlaneExtension, ControlPlaneParts } from "./control-plane.js";

/** Options of {@link adminExtension}. */
export interface AdminExtensionOptions {
  /** `host:port` of the admin listener (default `127.0.0.1:15015`, loopback only). */
  readonly address?: string;
  /** Bearer token callers must send; required (with `tls`) on a non-loopback address. */
  readonly token?: string;
  /** Key and certificate (PEM) to serve the admin listener over TLS. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Where the mesh graph's `istio_requests_total` comes from (`scrapeMetrics([...])`). */
  readonly metrics?: MetricsSource;
  /** How config file paths are shown (e.g. relative to the working directory). */
  readonly displayPath?: (file: string) => string;
  /** The Envoy generator options the control plane runs with, for Explain. */
  readonly envoy?: EnvoyGeneratorOptions;
  /** Serve the browser console (default true). */
  readonly console?: boolean;
  /**
   * When set, failing to listen (the address is taken) does not stop the control plane: the
   * message goes here and the control plane runs without its admin API.
   */
  readonly optional?: (message: string) => void;
}

/**
 * The admin API (`MeshAdmin` over Connect) and browser console as an extension of
 * `startControlPlane`: it follows the xDS server, controller, config store, CA and policy engine
 * from before the control plane accepts its first stream, and serves on its own address once the
 * control plane runs. `admin()` gives the service (e.g. to publish your own events on its feed).
 */
export function adminExtension(options: AdminExtensionOptions = {}): ControlPlaneExtension & {
  admin(): MeshAdminService | undefined;
} {
  let admin: MeshAdminService | undefined;
  let server: AdminServer | undefined;
  const create = (parts: ControlPlaneParts) => {
    if (admin !== undefined) return admin;
    const certificates$ = parts.events$.pipe(
      filter((e) => e.type === "workload-certificate"),
      map(
        (e): CertificateNotice => ({
          kind: "renewed",
          identity: e.workload.spiffeId,
          detail: `${e.workload.namespace}/${e.workload.name}: certificate files written to ${e.workload.dir}`,
          notAfter: e.notAfter.getTime(),
        }),
      ),
    );
    admin = createMeshAdmin({
      xds: parts.xds,
      controller: parts.controller,
      config: parts.store,
      ca: parts.caService,
      certificates$,
      policy: parts.policy,
      trustDomain: parts.trustDomain,
      ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
      ...(options.displayPath !== undefined ? { displayPath: options.displayPath } : {}),
      ...(options.envoy !== undefined ? { explain: { options: options.envoy } } : {}),
    });
    return admin;
  };
  return {
    name: "admin API",
    // Created here, before the gRPC port binds, so every proxy's streams are followed from the start.
    registerGrpc: (_server, parts) => {
      create(parts);
    },
    async start(plane) {
      const service = create(plane);
      try {
        server = await listenAdmin(service, {
          address: options.address ?? DEFAULT_ADMIN_ADDRESS,
          ...(options.token !== undefined ? { token: options.token } : {}),
          ...(options.tls !== undefined ? { tls: options.tls } : {}),
          ...(options.console === false ? { console: false } : {}),
        });
      } catch (error) {
        if (
          options.optional === undefined ||
          !(error instanceof AdminError) ||
          error.code !== "listen-failed"
        )
          throw error;
        options.optional(`${error.message}; pass --admin <host:port> to choose another address`);
        service.close();
        return undefined;
      }
      const url = server.url;
      return {
        services: [
          {
            name: "admin API (meshlet.admin.v1.MeshAdmin)",
            address: url,
            ...(options.token !== undefined ? { note: "bearer token required" } : {}),
          },
          { name: "console", address: `${url}/` },
        ],
        close: async () => {
          await server?.close();
          admin?.close();
        },
      };
    },
    admin: () => admin,
  };
}
