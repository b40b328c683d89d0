import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";

/** Which flavour of the xDS protocol a stream speaks. */
export type XdsProtocol = "sotw" | "delta";

interface StreamEventBase {
  /** Unique per server; nonces are scoped to it. */
  readonly streamId: number;
  readonly protocol: XdsProtocol;
  /** The node from the stream's first request (xDS protocol: later requests may omit it). */
  readonly node: Node | undefined;
}

/** A client opened a stream. `service` is "ads" or the type URL of a per-type service. */
export interface StreamOpenEvent extends StreamEventBase {
  readonly type: "stream-open";
  readonly service: string;
  readonly peer: string;
}

/** A request arrived. `stale` requests (an outdated nonce on SotW) are ignored by the server. */
export interface RequestEvent extends StreamEventBase {
  readonly type: "request";
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly responseNonce: string;
  /** SotW resource_names, or delta resource_names_subscribe. */
  readonly resourceNames: readonly string[];
  /** Delta resource_names_unsubscribe. */
  readonly unsubscribe: readonly string[];
  readonly stale: boolean;
}

/** The client accepted a response (`version` is the version it now runs). */
export interface AckEvent extends StreamEventBase {
  readonly type: "ack";
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
}

/**
 * The client rejected a response: `errorDetail` is the client's own error text; `version` is the
 * last version it accepted (xDS protocol: a NACK keeps the last good version_info) and
 * `rejectedVersion` the version it refused.
 */
export interface NackEvent extends StreamEventBase {
  readonly type: "nack";
  readonly typeUrl: string;
  readonly version: string;
  readonly rejectedVersion: string | undefined;
  readonly nonce: string;
  readonly errorDetail: { readonly code: number; readonly message: string };
}

/** The server sent a response. */
export interface ResponseEvent extends StreamEventBase {
  readonly type: "response";
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  /** Names of the resources carried. */
  readonly resources: readonly string[];
  /** Delta: names removed. */
  readonly removed: readonly string[];
  /** A TTL heartbeat (resources without bodies). */
  readonly heartbeat: boolean;
  /** Encoded size of the response message in bytes. */
  readonly bytes: number;
}

/** A stream ended; `error` is set when it ended with an error or a protocol violation. */
export interface StreamCloseEvent extends StreamEventBase {
  readonly type: "stream-close";
  readonly error?: string;
}

/** Everything `XdsServer.events$` emits. */
export type XdsEvent =
  | StreamOpenEvent
  | RequestEvent
  | AckEvent
  | NackEvent
  | ResponseEvent
  | StreamCloseEvent;
