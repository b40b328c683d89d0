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
 *
 * The call's own object extends it and implements `decide`, `pass` and `refuse` as methods, so a
 * call costs no gate object and no closures of its own (thousands of idle streams);
 * {@link AuthorizationGate} takes them as functions instead.
 */
export abstract class GatedCall<T> {
  private gateState: "undecided" | "deciding" | "allowed" | "refused" | "closed" = "undecided";
  /** Messages waiting for the decision (only while deciding). */
  private queue: T[] | undefined = undefined;

  /** Starts deciding on the first message: undefined allows at once. */
  protected abstract decide(first: T): Promise<Refusal | undefined> | undefined;
  /** A message allowed through. */
  protected abstract pass(message: T): void;
  /** The call was refused: end it with this status. */
  protected abstract refuse(refusal: Refusal): void;

  /** A message of the call: passed, queued while deciding, or dropped once refused or closed. */
  protected admit(message: T): void {
    switch (this.gateState) {
      case "allowed":
        this.pass(message);
        return;
      case "deciding": {
        const queue = this.queue as T[];
        if (queue.length >= MAX_REQUESTS_BEFORE_AUTHORIZATION) {
          this.gateState = "refused";
          this.queue = undefined;
          this.refuse({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            message: `more than ${MAX_REQUESTS_BEFORE_AUTHORIZATION} requests before the stream was authorized`,
          });
          return;
        }
        queue.push(message);
        return;
      }
      case "undecided":
        break;
      default:
        return;
    }
    const decision = this.decide(message);
    if (decision === undefined) {
      this.gateState = "allowed";
      this.pass(message);
      return;
    }
    this.gateState = "deciding";
    this.queue = [message];
    void decision.then((refusal) => {
      if (this.gateState !== "deciding") return;
      if (refusal) {
        this.gateState = "refused";
        this.queue = undefined;
        this.refuse(refusal);
        return;
      }
      this.gateState = "allowed";
      const queued = this.queue as T[];
      this.queue = undefined;
      for (const m of queued) {
        if (this.gateState !== "allowed") return;
        this.pass(m);
      }
    });
  }

  /** Whether the call was refused or closed: nothing more passes. */
  protected get gateClosed(): boolean {
    return this.gateState === "refused" || this.gateState === "closed";
  }

  /** The call ended: nothing more passes. */
  protected closeGate(): void {
    this.gateState = "closed";
    this.queue = undefined;
  }
}

/** A {@link GatedCall} whose decision, passing and refusal are functions. */
export class AuthorizationGate<T> extends GatedCall<T> {
  constructor(
    private readonly decideFn: (first: T) => Promise<Refusal | undefined> | undefined,
    private readonly passFn: (message: T) => void,
    private readonly refuseFn: (refusal: Refusal) => void,
  ) {
    super();
  }

  protected decide(first: T): Promise<Refusal | undefined> | undefined {
    return this.decideFn(first);
  }
  protected pass(message: T): void {
    this.passFn(message);
  }
  protected refuse(refusal: Refusal): void {
    this.refuseFn(refusal);
  }

  push(message: T): void {
    this.admit(message);
  }

  /** The call ended: nothing more passes. */
  close(): void {
    this.closeGate();
  }
}
