import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type {
  KubeConfig,
  V1MutatingWebhookConfiguration,
  V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import { type CertificateAuthority, svidRotation$ } from "@meshlet/ca";
import {
  createInjectionWebhook,
  createValidationWebhook,
  type InjectorConfig,
  publishRootCert,
  type RootCertPublisher,
  type ServingCertificate,
  WebhookServer,
} from "@meshlet/kube";
import {
  distinctUntilChanged,
  exhaustMap,
  firstValueFrom,
  map,
  type Subscription,
  switchMap,
  timer,
} from "rxjs";
import {
  type ControlPlane,
  type ControlPlaneExtension,
  type ServedService,
  splitHostPort,
} from "./control-plane.js";

// meshletd's cluster duties beside xDS and the CA, as istiod does them: the admission webhooks on
// 15017 (serving certificate from the control plane's CA, rotated), the `caBundle` of its two
// webhook configurations kept equal to the CA's roots (pkg/webhooks/webhookpatch.go: get, set
// every webhook's clientConfig.caBundle, update), `istio-ca-root-cert` in every namespace
// (`publishRootCert`), and readiness on 8080 `/ready` (pilot/pkg/bootstrap: the kubelet's probe).

/** Options of {@link meshletdExtension}. */
export interface MeshletdExtensionOptions {
  /** The cluster (in-cluster config, or a kubeconfig). */
  readonly kubeConfig: KubeConfig;
  /**
   * The admission webhooks: address (`0.0.0.0:15017`), the serving certificate's SPIFFE ID and
   * DNS names (the Service the API server calls: `meshletd.meshlet-system.svc`), the injector's
   * configuration (`/etc/meshlet/injector.json`), and the names of the webhook configurations
   * whose `caBundle` to keep current (empty: not patched). `false`: no webhooks.
   */
  readonly webhook:
    | {
        readonly address: string;
        readonly identity: string;
        readonly dnsNames: readonly string[];
        readonly injector?: InjectorConfig;
        /** The CA that issues the serving certificate (default the control plane's). */
        readonly servingCa?: CertificateAuthority;
        readonly validation?: boolean;
        readonly mutatingConfiguration?: string;
        readonly validatingConfiguration?: string;
      }
    | false;
  /** `host:port` of the health server (`/ready`, `/healthz`), istiod's 8080; `false` for none. */
  readonly health: string | false;
  /** Publish `istio-ca-root-cert` to every namespace (default true). */
  readonly publishRootCert?: boolean;
  /** How often the webhook configurations' `caBundle` is checked again (default 60 s). */
  readonly caBundleResyncMs?: number;
  /** Something went wrong that stops nothing (a patch refused, a namespace not published…). */
  readonly onError?: (message: string) => void;
}

const describe = (error: unknown) => {
  const e = error as { code?: unknown; body?: unknown; message?: unknown };
  const body = typeof e.body === "string" ? e.body : JSON.stringify(e.body ?? "");
  const message = /"message":"([^"]*)"/.exec(body)?.[1];
  return typeof e.code === "number"
    ? `HTTP ${e.code}${message !== undefined ? `: ${message}` : ""}`
    : error instanceof Error
      ? error.message
      : String(error);
};

/** The PEM of a trust bundle's roots, base64 as `caBundle` carries it. */
export function caBundleOf(roots: readonly string[]): string {
  return Buffer.from(roots.map((r) => (r.endsWith("\n") ? r : `${r}\n`)).join(""), "utf8").toString("base64");
}

/**
 * The extension that makes `meshlet serve --kubernetes` meshletd: webhooks, `caBundle`, the
 * published root, readiness. Ready (`/ready` 200) once the control plane serves its first config,
 * the webhooks listen and the root-certificate publisher has listed the cluster's namespaces.
 */
export function meshletdExtension(options: MeshletdExtensionOptions): ControlPlaneExtension {
  return {
    name: "meshletd",
    async start(plane: ControlPlane) {
      const services: ServedService[] = [];
      const stops: Array<() => Promise<void> | void> = [];
      const report = options.onError ?? (() => undefined);
      let ready = false;
      const stop = async () => {
        ready = false;
        for (const fn of stops.splice(0).reverse()) await fn();
      };
      try {
        if (options.health !== false) {
          const at = splitHostPort(options.health);
          if (at === undefined)
            throw new Error(`health address must be <host>:<port>, got "${options.health}"`);
          const health = await serveHealth(at.host, at.port, () => ready);
          stops.push(() => new Promise<void>((res) => health.server.close(() => res())));
          services.push({
            name: "health (/ready, /healthz)",
            address: `http://${options.health.replace(/:\d+$/, `:${health.port}`)}`,
          });
        }

        if (options.webhook !== false) {
          const w = options.webhook;
          const at = splitHostPort(w.address);
          if (at === undefined) throw new Error(`webhook address must be <host>:<port>, got "${w.address}"`);
          const certificate$ = svidRotation$({
            ca: w.servingCa ?? plane.ca,
            identity: w.identity,
            dnsNames: w.dnsNames,
          }).pipe(map((svid): ServingCertificate => ({ cert: svid.chain.join(""), key: svid.privateKey })));
          // Held for the server's life, so the rotation (shared, ref-counted) is not restarted.
          const held: Subscription = certificate$.subscribe({ error: () => undefined });
          stops.push(() => held.unsubscribe());
          const server = new WebhookServer({
            certificate: await firstValueFrom(certificate$),
            certificate$,
            ...(w.injector !== undefined ? { injection: createInjectionWebhook(w.injector) } : {}),
            ...(w.validation !== false ? { validation: createValidationWebhook() } : {}),
            host: at.host,
            port: at.port,
          });
          const { port } = await server.listen();
          stops.push(() => server.close());
          // istiod's sidecar_injection_* and galley_validation_* counters on the control plane's /metrics.
          const counted = plane.metrics?.observeWebhooks(server.events$);
          if (counted !== undefined) stops.push(() => counted.unsubscribe());
          services.push({
            name: "admission webhooks (/inject, /validate)",
            address: `https://${w.address.replace(/:\d+$/, `:${port}`)}`,
          });
          const names = [w.mutatingConfiguration, w.validatingConfiguration].filter(
            (n): n is string => n !== undefined && n !== "",
          );
          if (names.length > 0) {
            const patcher = await keepCaBundle(
              options.kubeConfig,
              plane,
              w,
              options.caBundleResyncMs ?? 60_000,
              report,
            );
            stops.push(() => patcher.unsubscribe());
            services.push({
              name: "webhook caBundle",
              address: names.join(", "),
              note: "kept equal to the CA's roots",
            });
          }
        }

        if (options.publishRootCert !== false) {
          const publisher: RootCertPublisher = publishRootCert({
            kubeConfig: options.kubeConfig,
            trustBundle$: plane.ca.trustBundle$,
          });
          stops.push(() => publisher.stop());
          const errors = publisher.events$.subscribe((e) => {
            if (e.type === "error")
              report(
                `istio-ca-root-cert${e.namespace !== undefined ? ` in ${e.namespace}` : ""}: ${e.reason}`,
              );
          });
          stops.push(() => errors.unsubscribe());
          await publisher.synced;
          services.push({
            name: "root certificate",
            address: "ConfigMap istio-ca-root-cert, every namespace",
          });
        }
      } catch (error) {
        await stop().catch(() => undefined);
        throw error;
      }
      ready = true;
      return { services, close: stop };
    },
  };
}

async function serveHealth(
  host: string,
  port: number,
  ready: () => boolean,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://health").pathname;
    if (path === "/healthz") res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    else if (path === "/ready") {
      if (ready()) res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      else res.writeHead(503, { "content-type": "text/plain" }).end("not ready\n");
    } else res.writeHead(404, { "content-type": "text/plain" }).end("GET /ready or /healthz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * Sets `caBundle` on every webhook of the two configurations whenever the roots change, and checks
 * again every `resyncMs` (someone may have reset it: `kubectl apply` of the rendered manifests
 * writes it empty). Get, then update with the resourceVersion read, as istiod's webhook patcher:
 * a concurrent writer makes the update fail with 409 and the next round retries.
 */
async function keepCaBundle(
  kubeConfig: KubeConfig,
  plane: ControlPlane,
  w: { readonly mutatingConfiguration?: string; readonly validatingConfiguration?: string },
  resyncMs: number,
  report: (message: string) => void,
): Promise<Subscription> {
  const k8s = await import("@kubernetes/client-node");
  const api = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  type Configuration = { webhooks?: Array<{ clientConfig: { caBundle?: string } }> };
  // The two kinds differ only in the calls that read and replace them.
  const kinds: Array<{
    kind: string;
    name: string | undefined;
    read: (name: string) => Promise<Configuration>;
    replace: (name: string, body: Configuration) => Promise<unknown>;
  }> = [
    {
      kind: "MutatingWebhookConfiguration",
      name: w.mutatingConfiguration,
      read: (name) => api.readMutatingWebhookConfiguration({ name }),
      replace: (name, body) =>
        api.replaceMutatingWebhookConfiguration({ name, body: body as V1MutatingWebhookConfiguration }),
    },
    {
      kind: "ValidatingWebhookConfiguration",
      name: w.validatingConfiguration,
      read: (name) => api.readValidatingWebhookConfiguration({ name }),
      replace: (name, body) =>
        api.replaceValidatingWebhookConfiguration({ name, body: body as V1ValidatingWebhookConfiguration }),
    },
  ];
  const patch = async (roots: readonly string[]) => {
    const caBundle = caBundleOf(roots);
    for (const { kind, name, read, replace } of kinds) {
      if (name === undefined || name === "") continue;
      try {
        const current = await read(name);
        if ((current.webhooks ?? []).some((h) => h.clientConfig.caBundle !== caBundle)) {
          for (const h of current.webhooks ?? []) h.clientConfig.caBundle = caBundle;
          await replace(name, current);
        }
      } catch (error) {
        report(`${kind} ${name}: caBundle not updated (${describe(error)}); retrying in ${resyncMs} ms`);
      }
    }
  };
  return plane.ca.trustBundle$
    .pipe(
      map((b) => b.roots),
      distinctUntilChanged((a, b) => a.join("") === b.join("")),
      // New roots start a round at once; while a round runs, ticks are dropped (a slow API server
      // must not pile up requests).
      switchMap((roots) => timer(0, resyncMs).pipe(exhaustMap(() => patch(roots)))),
    )
    .subscribe({ error: (error) => report(`caBundle: ${describe(error)}`) });
}
