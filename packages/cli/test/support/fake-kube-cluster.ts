import type { IncomingMessage, ServerResponse } from "node:http";
import { request as httpRequest } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { KubeApiServer } from "../../../config/test/support/kube-api-server.js";
import { createTestCa, type TestCa } from "../../../kube/test/support/certs.js";

// A FAKE Kubernetes API server over HTTPS: no real API server can run here. It implements only what
// meshletd calls, in the documented wire shapes ("Kubernetes API Concepts"; the API reference for
// TokenReview, Secret, ConfigMap, Namespace, MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration):
// - every request must carry meshletd's own bearer token (401 otherwise);
// - POST /apis/authentication.k8s.io/v1/tokenreviews: status.authenticated, user {username, groups},
//   audiences = the requested audiences the token is valid for; a token for none of them is not
//   authenticated (the API server's audience check);
// - Secrets: GET (404 NotFound), POST (201; 409 AlreadyExists), PUT (409 Conflict on a stale
//   resourceVersion);
// - ConfigMaps: POST/PUT as Secrets, list and watch through the list/watch server below;
// - webhook configurations: GET, PUT (409 Conflict on a stale resourceVersion);
// - everything else (API discovery, list, watch of namespaces, config maps, services, pods,
//   endpoint slices) proxied to packages/config/test/support/kube-api-server.ts, the list/watch
//   fake the config package's KubernetesSource is tested against.
// Errors are v1 Status objects. The server certificate comes from the real openssl.

type Obj = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

export interface ReviewableToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly audiences: readonly string[];
}

const WEBHOOK_KINDS = {
  mutatingwebhookconfigurations: "MutatingWebhookConfiguration",
  validatingwebhookconfigurations: "ValidatingWebhookConfiguration",
} as const;
type WebhookCollection = keyof typeof WEBHOOK_KINDS;

export class FakeKubeCluster {
  url = "";
  /** The CA that signed the server's certificate (the kubeconfig's certificate-authority-data). */
  caCert = "";
  /** meshletd's own token: the only one the API accepts as a client. */
  readonly clientToken = "meshletd-sa-token";
  readonly requests: Array<{ method: string; path: string }> = [];
  /** Tokens TokenReview knows. */
  readonly tokens = new Map<string, ReviewableToken>();
  /** While true, TokenReview answers 500 (an API server in trouble). */
  tokenReviewDown = false;
  readonly lists = new KubeApiServer([
    { group: "", version: "v1", plural: "namespaces", namespaced: false, kind: "Namespace" },
    { group: "", version: "v1", plural: "configmaps", namespaced: true, kind: "ConfigMap" },
    { group: "", version: "v1", plural: "services", namespaced: true, kind: "Service" },
    { group: "", version: "v1", plural: "pods", namespaced: true, kind: "Pod" },
    {
      group: "discovery.k8s.io",
      version: "v1",
      plural: "endpointslices",
      namespaced: true,
      kind: "EndpointSlice",
    },
  ]);
  readonly #secrets = new Map<string, Obj>();
  readonly #configMaps = new Map<string, Obj>();
  readonly #webhooks = new Map<string, Obj>();
  #rv = 5000;
  #ca: TestCa | undefined;
  #server: Server | undefined;

  async start(): Promise<this> {
    await this.lists.start();
    this.#ca = createTestCa("fake kube-apiserver");
    this.caCert = this.#ca.caCert;
    const { cert, key } = this.#ca.issue("kube-apiserver");
    this.#server = createServer({ cert, key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => this.#handle(req, res, Buffer.concat(chunks).toString("utf8")));
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.url = `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await this.lists.close();
    this.#ca?.cleanup();
  }

  /** A kubeconfig (YAML) for meshletd: this server, its CA, meshletd's token. */
  kubeconfig(): string {
    const ca = Buffer.from(this.caCert).toString("base64");
    return `apiVersion: v1
kind: Config
clusters: [{ name: fake, cluster: { server: "${this.url}", certificate-authority-data: ${ca} } }]
users: [{ name: meshletd, user: { token: ${this.clientToken} } }]
contexts: [{ name: fake, context: { cluster: fake, user: meshletd } }]
current-context: fake
`;
  }

  putNamespace(name: string): void {
    this.lists.put("v1", "Namespace", { metadata: { name }, status: { phase: "Active" } });
  }

  /** Registry objects (Service, Pod, EndpointSlice) as kubectl would create them. */
  put(apiVersion: string, kind: string, obj: Obj): void {
    this.lists.put(apiVersion, kind, obj);
  }

  configMap(namespace: string, name: string): Obj | undefined {
    return this.#configMaps.get(`${namespace}/${name}`);
  }

  /** `kubectl delete configmap`. */
  deleteConfigMap(namespace: string, name: string): void {
    this.#configMaps.delete(`${namespace}/${name}`);
    this.lists.delete("v1", "ConfigMap", namespace, name);
  }

  /** `kubectl edit configmap`: replaces its data. */
  editConfigMap(namespace: string, name: string, data: Record<string, string>): void {
    const current = this.#configMaps.get(`${namespace}/${name}`);
    if (current === undefined) throw new Error(`no ConfigMap ${namespace}/${name}`);
    this.#storeConfigMap({ ...current, data });
  }

  /** Stores a Secret as if someone had created it (e.g. a malformed istio-ca-secret). */
  putSecret(namespace: string, obj: Obj): void {
    this.#secrets.set(
      `${namespace}/${obj.metadata.name}`,
      this.#stamp({ ...obj, metadata: { ...obj.metadata, namespace } }),
    );
  }

  secret(namespace: string, name: string): Obj | undefined {
    return this.#secrets.get(`${namespace}/${name}`);
  }

  /** `kubectl apply` of a webhook configuration. */
  putWebhookConfiguration(obj: Obj): void {
    const collection =
      obj.kind === "MutatingWebhookConfiguration"
        ? "mutatingwebhookconfigurations"
        : "validatingwebhookconfigurations";
    this.#webhooks.set(`${collection}/${obj.metadata.name}`, this.#stamp(obj));
  }

  webhookConfiguration(
    kind: "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
    name: string,
  ): Obj | undefined {
    const collection =
      kind === "MutatingWebhookConfiguration"
        ? "mutatingwebhookconfigurations"
        : "validatingwebhookconfigurations";
    return this.#webhooks.get(`${collection}/${name}`);
  }

  #stamp(obj: Obj): Obj {
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } };
  }

  #storeConfigMap(obj: Obj): Obj {
    const rv = this.lists.put("v1", "ConfigMap", obj);
    const stored = {
      ...obj,
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { ...obj.metadata, resourceVersion: rv },
    };
    this.#configMaps.set(`${obj.metadata.namespace}/${obj.metadata.name}`, stored);
    return stored;
  }

  #handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? "/", "https://localhost");
    const method = req.method ?? "GET";
    this.requests.push({ method, path: url.pathname });
    const json = (code: number, obj: unknown) =>
      res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(obj));
    const status = (code: number, reason: string, message: string) =>
      json(code, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message,
        reason,
        code,
      });
    if (req.headers.authorization !== `Bearer ${this.clientToken}`) {
      status(401, "Unauthorized", "Unauthorized");
      return;
    }
    const parse = (): Obj | undefined => {
      try {
        return JSON.parse(body) as Obj;
      } catch {
        status(400, "BadRequest", "the body is not JSON");
        return undefined;
      }
    };

    if (method === "POST" && url.pathname === "/apis/authentication.k8s.io/v1/tokenreviews") {
      if (this.tokenReviewDown) {
        status(500, "InternalError", "etcdserver: request timed out");
        return;
      }
      const review = parse() as { spec?: { token?: string; audiences?: string[] } } | undefined;
      if (review === undefined) return;
      const token = this.tokens.get(review.spec?.token ?? "");
      const wanted = review.spec?.audiences ?? [];
      const audiences = token?.audiences.filter((a) => wanted.length === 0 || wanted.includes(a)) ?? [];
      const answer = (status: Record<string, unknown>) =>
        json(201, { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: review.spec, status });
      if (token === undefined) answer({ authenticated: false, error: "invalid bearer token" });
      else if (audiences.length === 0)
        answer({ authenticated: false, error: "token audiences are invalid for the target audiences" });
      else
        answer({
          authenticated: true,
          user: {
            username: `system:serviceaccount:${token.namespace}:${token.serviceAccount}`,
            uid: `uid-${token.serviceAccount}`,
            groups: [
              "system:serviceaccounts",
              `system:serviceaccounts:${token.namespace}`,
              "system:authenticated",
            ],
          },
          audiences,
        });
      return;
    }

    const namespaced = /^\/api\/v1\/namespaces\/([^/]+)\/(secrets|configmaps)(?:\/([^/]+))?$/.exec(
      url.pathname,
    );
    if (
      namespaced !== null &&
      !(method === "GET" && namespaced[2] === "configmaps" && namespaced[3] === undefined)
    ) {
      const [, namespace, collection, name] = namespaced as unknown as [
        string,
        string,
        "secrets" | "configmaps",
        string | undefined,
      ];
      const map = collection === "secrets" ? this.#secrets : this.#configMaps;
      const kind = collection === "secrets" ? "Secret" : "ConfigMap";
      const store = (obj: Obj) => {
        const withNs = { ...obj, metadata: { ...obj.metadata, namespace } };
        if (collection === "configmaps") return this.#storeConfigMap(withNs);
        const stamped = this.#stamp(withNs);
        this.#secrets.set(`${namespace}/${obj.metadata.name}`, stamped);
        return stamped;
      };
      if (method === "GET" && name !== undefined) {
        const found = map.get(`${namespace}/${name}`);
        if (found === undefined) status(404, "NotFound", `${collection} "${name}" not found`);
        else json(200, found);
        return;
      }
      if (method === "POST" && name === undefined) {
        const obj = parse();
        if (obj === undefined) return;
        if (map.has(`${namespace}/${obj.metadata.name}`)) {
          status(409, "AlreadyExists", `${collection} "${obj.metadata.name}" already exists`);
          return;
        }
        json(201, store({ ...obj, kind }));
        return;
      }
      if (method === "PUT" && name !== undefined) {
        const obj = parse();
        if (obj === undefined) return;
        const current = map.get(`${namespace}/${name}`);
        if (current === undefined) status(404, "NotFound", `${collection} "${name}" not found`);
        else if (obj.metadata.resourceVersion !== current.metadata.resourceVersion)
          status(
            409,
            "Conflict",
            `Operation cannot be fulfilled on ${collection} "${name}": the object has been modified`,
          );
        else json(200, store({ ...obj, kind }));
        return;
      }
    }

    const webhook =
      /^\/apis\/admissionregistration\.k8s\.io\/v1\/(mutatingwebhookconfigurations|validatingwebhookconfigurations)\/([^/]+)$/.exec(
        url.pathname,
      );
    if (webhook !== null) {
      const [, collection, name] = webhook as unknown as [string, WebhookCollection, string];
      const key = `${collection}/${name}`;
      const current = this.#webhooks.get(key);
      if (current === undefined) {
        status(404, "NotFound", `${collection}.admissionregistration.k8s.io "${name}" not found`);
        return;
      }
      if (method === "GET") {
        json(200, current);
        return;
      }
      if (method === "PUT") {
        const obj = parse();
        if (obj === undefined) return;
        if (obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
          status(
            409,
            "Conflict",
            `Operation cannot be fulfilled on ${collection} "${name}": the object has been modified`,
          );
          return;
        }
        const stored = this.#stamp({
          ...obj,
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: WEBHOOK_KINDS[collection],
        });
        this.#webhooks.set(key, stored);
        json(200, stored);
        return;
      }
    }

    if (method !== "GET") {
      status(405, "MethodNotAllowed", `${method} ${url.pathname} is not implemented by this fake`);
      return;
    }
    // Discovery, list and watch: the list/watch fake (its watches stream until either side closes).
    const upstream = httpRequest(`${this.lists.url}${req.url ?? "/"}`, { method: "GET" }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      // A watch's headers go out at once: clients wait for them before reading events.
      res.flushHeaders();
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    upstream.end();
  }
}
