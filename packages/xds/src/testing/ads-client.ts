import { create, fromBinary, type Message, type Registry, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { type Node, NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryRequestSchema,
  type DeltaDiscoveryResponse,
  DeltaDiscoveryResponseSchema,
  type DiscoveryRequest,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
  DiscoveryResponseSchema,
  ResourceSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { type Observable, Subject } from "rxjs";
import { msFromDuration } from "../duration.js";
import { XdsError } from "../errors.js";
import { type XdsServiceName, xdsMethods } from "../server/services.js";
import { resourceName } from "../snapshot.js";
import { TypeUrl, xdsRegistry } from "../type-url.js";

/** One resource of a received response, decoded. */
export interface ReceivedResource {
  readonly name: string;
  /** Delta (and TTL-wrapped SotW) per-resource version. */
  readonly version?: string;
  /** The decoded resource; undefined in a heartbeat or for an unknown type. */
  readonly message?: Message;
  readonly ttlMs?: number;
  /** A TTL heartbeat: the resource without its body. */
  readonly heartbeat: boolean;
}

/** A response as the test client saw it. */
export interface ReceivedResponse {
  readonly protocol: "sotw" | "delta";
  readonly typeUrl: string;
  /** SotW version_info, or delta system_version_info. */
  readonly versionInfo: string;
  readonly nonce: string;
  readonly resources: readonly ReceivedResource[];
  /** Delta removed_resources. */
  readonly removed: readonly string[];
  readonly raw: DiscoveryResponse | DeltaDiscoveryResponse;
}

/** Options of {@link AdsClient.connect}. */
export interface AdsClientOptions {
  /** host:port of the xDS server. */
  address: string;
  /** The node sent on the first request; `{ id: "test-node" }` by default; `null` sends none. */
  node?: Partial<Omit<Node, "$typeName">> | null;
  /** State of the world (default) or incremental. */
  protocol?: "sotw" | "delta";
  /** ADS (default) or a per-type service such as "cds" or "sds". */
  service?: XdsServiceName;
  credentials?: grpc.ChannelCredentials;
  /** Registry to decode resources with; the built-in xDS types by default. */
  registry?: Registry;
  /**
   * Answer every response automatically: ACK it, or NACK it with the returned text when this
   * function returns one.
   */
  autoAck?: boolean | ((response: ReceivedResponse) => string | undefined);
}

/**
 * A scriptable xDS client for control-plane tests: it sends exactly the requests you ask for
 * (or ACKs/NACKs automatically), and hands you each response decoded. Use it to check your own
 * caches and servers the way the meshlet conformance suite checks XdsServer.
 */
export class AdsClient {
  /** Every response, decoded, in arrival order. */
  readonly responses$: Observable<ReceivedResponse>;
  private readonly subject = new Subject<ReceivedResponse>();
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Uint8Array, Buffer>;
  private readonly node: Node | undefined;
  private readonly protocol: "sotw" | "delta";
  private readonly registry: Registry;
  private readonly queue: ReceivedResponse[] = [];
  private readonly waiters: Array<{
    typeUrl?: string;
    resolve: (r: ReceivedResponse) => void;
    reject: (e: Error) => void;
  }> = [];
  private readonly names = new Map<string, string[]>();
  private sentNode = false;
  private ended?: Error;

  private constructor(private readonly options: AdsClientOptions) {
    this.protocol = options.protocol ?? "sotw";
    this.registry = options.registry ?? xdsRegistry;
    this.node = options.node === null ? undefined : create(NodeSchema, { id: "test-node", ...options.node });
    this.responses$ = this.subject.asObservable();
    const { methods } = xdsMethods(options.service ?? "ads");
    const method = methods.find((m) => m.protocol === this.protocol);
    if (!method)
      throw new XdsError("invalid-argument", `service ${options.service} has no ${this.protocol} method`);
    this.client = new grpc.Client(options.address, options.credentials ?? grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(
      method.path,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
    );
    this.call.on("data", (bytes: Buffer) => this.receive(bytes));
    this.call.on("error", (err: Error) => this.end(err));
    this.call.on("end", () => this.end(new Error("stream ended by the server")));
  }

  /** Opens a stream to an xDS server. */
  static connect(options: AdsClientOptions): AdsClient {
    return new AdsClient(options);
  }

  /** The gRPC status the stream ended with, if it ended. */
  get error(): Error | undefined {
    return this.ended;
  }

  /** Sends a state-of-the-world DiscoveryRequest. The node goes on the first request only. */
  request(init: {
    typeUrl: string;
    resourceNames?: readonly string[];
    versionInfo?: string;
    responseNonce?: string;
    errorDetail?: { code?: number; message: string };
  }): void {
    this.names.set(init.typeUrl, [...(init.resourceNames ?? [])]);
    const req: DiscoveryRequest = create(DiscoveryRequestSchema, {
      typeUrl: init.typeUrl,
      resourceNames: [...(init.resourceNames ?? [])],
      versionInfo: init.versionInfo ?? "",
      responseNonce: init.responseNonce ?? "",
      ...(init.errorDetail
        ? { errorDetail: { code: init.errorDetail.code ?? 3, message: init.errorDetail.message } }
        : {}),
      ...(this.sentNode || !this.node ? {} : { node: this.node }),
    });
    this.sentNode = true;
    this.call.write(toBinary(DiscoveryRequestSchema, req));
  }

  /** Sends a DeltaDiscoveryRequest. */
  requestDelta(init: {
    typeUrl: string;
    subscribe?: readonly string[];
    unsubscribe?: readonly string[];
    initialResourceVersions?: Readonly<Record<string, string>>;
    responseNonce?: string;
    errorDetail?: { code?: number; message: string };
  }): void {
    const req: DeltaDiscoveryRequest = create(DeltaDiscoveryRequestSchema, {
      typeUrl: init.typeUrl,
      resourceNamesSubscribe: [...(init.subscribe ?? [])],
      resourceNamesUnsubscribe: [...(init.unsubscribe ?? [])],
      initialResourceVersions: { ...init.initialResourceVersions },
      responseNonce: init.responseNonce ?? "",
      ...(init.errorDetail
        ? { errorDetail: { code: init.errorDetail.code ?? 3, message: init.errorDetail.message } }
        : {}),
      ...(this.sentNode || !this.node ? {} : { node: this.node }),
    });
    this.sentNode = true;
    this.call.write(toBinary(DeltaDiscoveryRequestSchema, req));
  }

  /** ACKs a response (SotW: echoes its version and nonce with the current names). */
  ack(response: ReceivedResponse): void {
    if (response.protocol === "delta")
      this.requestDelta({ typeUrl: response.typeUrl, responseNonce: response.nonce });
    else
      this.request({
        typeUrl: response.typeUrl,
        resourceNames: this.names.get(response.typeUrl) ?? [],
        versionInfo: response.versionInfo,
        responseNonce: response.nonce,
      });
  }

  /**
   * NACKs a response with an error text; SotW keeps `lastGoodVersion` (the last version this
   * client accepted) as version_info, as the protocol requires.
   */
  nack(response: ReceivedResponse, message: string, lastGoodVersion = ""): void {
    if (response.protocol === "delta") {
      this.requestDelta({
        typeUrl: response.typeUrl,
        responseNonce: response.nonce,
        errorDetail: { message },
      });
    } else {
      this.request({
        typeUrl: response.typeUrl,
        resourceNames: this.names.get(response.typeUrl) ?? [],
        versionInfo: lastGoodVersion,
        responseNonce: response.nonce,
        errorDetail: { message },
      });
    }
  }

  /**
   * The next response not yet taken (of a type, if given). Rejects after `timeoutMs` or when the
   * stream ends.
   */
  next(typeUrl?: string, timeoutMs = 10_000): Promise<ReceivedResponse> {
    const index = this.queue.findIndex((r) => typeUrl === undefined || r.typeUrl === typeUrl);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]!);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const waiter = {
        ...(typeUrl !== undefined ? { typeUrl } : {}),
        resolve: (r: ReceivedResponse) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new XdsError("protocol", `no ${typeUrl ?? "xDS"} response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Responses received and not yet taken by next(). */
  pending(typeUrl?: string): readonly ReceivedResponse[] {
    return this.queue.filter((r) => typeUrl === undefined || r.typeUrl === typeUrl);
  }

  /** Closes the stream and the channel. */
  close(): void {
    this.call.end();
    this.call.cancel();
    this.client.close();
    this.end(new Error("client closed"));
  }

  private receive(bytes: Buffer): void {
    const response = this.protocol === "sotw" ? this.decodeSotw(bytes) : this.decodeDelta(bytes);
    this.subject.next(response);
    const auto = this.options.autoAck;
    if (auto) {
      const nack = typeof auto === "function" ? auto(response) : undefined;
      if (nack === undefined) this.ack(response);
      else this.nack(response, nack);
    }
    const index = this.waiters.findIndex((w) => w.typeUrl === undefined || w.typeUrl === response.typeUrl);
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(response);
    else this.queue.push(response);
  }

  private decodeSotw(bytes: Buffer): ReceivedResponse {
    const raw = fromBinary(DiscoveryResponseSchema, bytes);
    const resources = raw.resources.map((any): ReceivedResource => {
      if (any.typeUrl === TypeUrl.Resource) {
        const wrapped = fromBinary(ResourceSchema, any.value);
        return this.decodeWrapped(wrapped);
      }
      const message = anyUnpack(any, this.registry);
      const name = message ? resourceName(message) : "";
      return { name, ...(message ? { message } : {}), heartbeat: false };
    });
    return {
      protocol: "sotw",
      typeUrl: raw.typeUrl,
      versionInfo: raw.versionInfo,
      nonce: raw.nonce,
      resources,
      removed: [],
      raw,
    };
  }

  private decodeDelta(bytes: Buffer): ReceivedResponse {
    const raw = fromBinary(DeltaDiscoveryResponseSchema, bytes);
    return {
      protocol: "delta",
      typeUrl: raw.typeUrl,
      versionInfo: raw.systemVersionInfo,
      nonce: raw.nonce,
      resources: raw.resources.map((r) => this.decodeWrapped(r)),
      removed: raw.removedResources,
      raw,
    };
  }

  private decodeWrapped(r: {
    name: string;
    version: string;
    resource?: Parameters<typeof anyUnpack>[0];
    ttl?: { seconds: bigint; nanos: number };
  }): ReceivedResource {
    const message = r.resource ? anyUnpack(r.resource, this.registry) : undefined;
    return {
      name: r.name,
      version: r.version,
      ...(message ? { message } : {}),
      ...(r.ttl ? { ttlMs: msFromDuration(r.ttl) } : {}),
      heartbeat: r.resource === undefined,
    };
  }

  private end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.subject.complete();
  }
}
