import {
  ResponderBuilder,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerListenerBuilder,
  type ServerMethodDefinition,
} from "@grpc/grpc-js";
import type { NodeLike } from "../proxy/proxy.js";

/** A decision of an authorize hook: nothing to allow, a gRPC status to refuse. */
export type AuthorizeDecision = { readonly code: number; readonly message: string } | undefined;

/** What {@link xdsAuthorizeInterceptor} asks: the node of a stream's first request and the peer's SPIFFE ID. */
export type XdsAuthorize = (request: {
  readonly node: NodeLike;
  readonly spiffeId?: string | undefined;
}) => AuthorizeDecision;

const XDS_SERVICE = /^\/envoy\.service\.[a-z]+\.v3\.[A-Za-z]+DiscoveryService\//;

/** The one `spiffe://` URI SAN of a verified client certificate, if any. */
function peerSpiffeId(call: ServerInterceptingCallInterface): string | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate as { subjectaltname?: string } | undefined;
  const sans = (cert?.subjectaltname ?? "").split(",").map((s) => s.trim());
  const uris = sans.filter((s) => s.startsWith("URI:spiffe://")).map((s) => s.slice(4));
  return uris.length === 1 ? uris[0] : undefined;
}

/**
 * A `@grpc/grpc-js` server interceptor that runs an authorize hook (e.g. `MeshController.authorize`)
 * on the first request of every xDS stream and ends a refused stream with the hook's status before
 * the xDS server sees it. For xDS servers mounted on your own grpc-js Server
 * (`xds.register(server)`, `new Server({ interceptors: [xdsAuthorizeInterceptor(…)] })`); `XdsServer`
 * versions with an `authorize` option take the hook directly. The node is client-supplied: the hook
 * must bind it to the stream's verified identity when there is one (the SPIFFE ID passed here comes
 * only from a certificate grpc-js verified).
 */
export function xdsAuthorizeInterceptor(authorize: XdsAuthorize): ServerInterceptor {
  return (method: ServerMethodDefinition<unknown, unknown>, call: ServerInterceptingCallInterface) => {
    if (!XDS_SERVICE.test(method.path)) return new ServerInterceptingCall(call);
    let decided = false;
    let refused = false;
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((message: unknown, next: (m: unknown) => void) => {
        if (refused) return;
        if (!decided) {
          decided = true;
          const node = (message as { node?: NodeLike } | undefined)?.node ?? { id: "" };
          let decision: AuthorizeDecision;
          try {
            decision = authorize({ node, spiffeId: peerSpiffeId(call) });
          } catch (error) {
            decision = {
              code: 13,
              message: `authorization failed: ${error instanceof Error ? error.message : String(error)}`,
            };
          }
          if (decision !== undefined) {
            refused = true;
            call.sendStatus({ code: decision.code, details: decision.message });
            return;
          }
        }
        next(message);
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}
