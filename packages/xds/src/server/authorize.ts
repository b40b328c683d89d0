import type { X509Certificate } from "node:crypto";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { XdsProtocol } from "../events.js";
import { GrpcStatus, type GrpcStatusCode } from "./grpc-status.js";

/** Who opened a stream, for {@link AuthorizeHook}. */
export interface AuthorizeRequest {
  /**
   * The node of the stream's first request (xDS: later requests may omit it, and may not name
   * another one: such a request is refused). For a CSDS call, the requester's `node` field.
   * Client-supplied: bind it to the caller's identity (certificate, token) before trusting it.
   */
  readonly node: Node;
  /** The client's address, `host:port`. */
  readonly peer: string;
  /**
   * The client certificate, only when TLS verified it against the trusted CAs given to
   * `listen({ tls: { ca, requestCert: true } })` (or the grpc-js credentials); never an unverified one.
   */
  readonly certificate: X509Certificate | undefined;
  /** The certificate's SPIFFE ID (its one URI SAN, checked against the SPIFFE ID rules). */
  readonly spiffeId: string | undefined;
  /** Request metadata (HTTP/2 headers): lower-case names, e.g. `authorization: Bearer …`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** "ads", the type URL of a per-type service, or "csds". */
  readonly service: string;
  readonly protocol: XdsProtocol | "csds";
}

/** How a stream is refused: a gRPC status and a message for the client. */
export interface Refusal {
  readonly code: GrpcStatusCode;
  readonly message: string;
}

/**
 * Decides whether a stream may proceed, once, on its first request (nothing of the stream is
 * served before it answers). Return (or resolve to) nothing to allow, a {@link Refusal} to end the
 * stream with that status. A hook that throws or rejects refuses the stream with INTERNAL (fail
 * closed), and the error is logged.
 */
export type AuthorizeHook = (
  request: AuthorizeRequest,
  // biome-ignore lint/suspicious/noConfusingVoidType: an allowing hook is naturally written `async () => {}`, which returns Promise<void>.
) => Refusal | undefined | void | Promise<Refusal | undefined | void>;

/**
 * Requests one call may send while its authorization is being decided. A client sends a few (an
 * Envoy ADS stream opens with CDS and LDS, a gRPC client with LDS); the cap keeps a client whose
 * hook is slow from queueing without bound.
 */
export const MAX_REQUESTS_BEFORE_AUTHORIZATION = 100;

/**
 * Holds a call's messages until its authorization is decided on the first one, then lets them
 * through in order — or refuses the call. Without a hook nothing waits: `decide` returns
 * undefined and every message passes at once. A call that sends more than
 * {@link MAX_REQUESTS_BEFORE_AUTHORIZATION} messages before the decision is refused
 * (RESOURCE_EXHAUSTED).
 */
export class AuthorizationGate<T> {
  private state: "undecided" | "deciding" | "allowed" | "refused" | "closed" = "undecided";
  private queue: T[] = [];

  constructor(
    private readonly decide: (first: T) => Promise<Refusal | undefined> | undefined,
    private readonly pass: (message: T) => void,
    private readonly refuse: (refusal: Refusal) => void,
  ) {}

  push(message: T): void {
    switch (this.state) {
      case "allowed":
        this.pass(message);
        return;
      case "deciding":
        if (this.queue.length >= MAX_REQUESTS_BEFORE_AUTHORIZATION) {
          this.state = "refused";
          this.queue = [];
          this.refuse({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            message: `more than ${MAX_REQUESTS_BEFORE_AUTHORIZATION} requests before the stream was authorized`,
          });
          return;
        }
        this.queue.push(message);
        return;
      case "undecided":
        break;
      default:
        return;
    }
    const decision = this.decide(message);
    if (decision === undefined) {
      this.state = "allowed";
      this.pass(message);
      return;
    }
    this.state = "deciding";
    this.queue.push(message);
    void decision.then((refusal) => {
      if (this.state !== "deciding") return;
      if (refusal) {
        this.state = "refused";
        this.queue = [];
        this.refuse(refusal);
        return;
      }
      this.state = "allowed";
      const queued = this.queue;
      this.queue = [];
      for (const m of queued) {
        if (this.state !== "allowed") return;
        this.pass(m);
      }
    });
  }

  /** The call ended: nothing more passes. */
  close(): void {
    this.state = "closed";
    this.queue = [];
  }
}
