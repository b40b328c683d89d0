// A proxyless gRPC server: @grpc/grpc-js-xds's XdsServer, which serves only once the control plane
// sent its listener `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (from the bootstrap's
// server_listener_resource_name_template), with that listener's mTLS and RBAC.
// Env: GRPC_XDS_BOOTSTRAP_CONFIG, SERVER_ID (answered by every RPC), SERVER_ADDRESS (ip:port).
// The Echo method answers "<id>" and, over mTLS, "<id>|<client SPIFFE ID>". Prints {"ready":true}.
import * as grpc from "@grpc/grpc-js";
import * as grpcJsXds from "@grpc/grpc-js-xds";

// register() also installs grpc-js-xds's HTTP filters (router, fault, RBAC); without it the server
// NACKs every listener ("envoy.filters.http.router filter validation failed").
grpcJsXds.register();

const identity = (value) => value;
const server = new grpcJsXds.XdsServer();
const method = (path) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
server.addService(
  { Echo: method("/meshlet.test.Echo/Echo") },
  {
    Echo: (call, callback) => {
      const cert = call.getAuthContext?.()?.sslPeerCertificate;
      const san = (cert?.subjectaltname ?? "")
        .split(",")
        .map((s) => s.trim())
        .find((s) => s.startsWith("URI:"));
      const peer = san ? `|${san.slice(4)}` : "";
      callback(null, Buffer.from(`${process.env.SERVER_ID}${peer}`));
    },
  },
);
const credentials = new grpcJsXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure());
// XdsServer calls back only once its listener arrived (it may never: a server no service selects
// gets none), so the process reports ready at once and tests wait for RPCs to succeed.
server.bindAsync(process.env.SERVER_ADDRESS, credentials, (error) => {
  if (error) process.stderr.write(`bind failed: ${error.message}\n`);
  else process.stderr.write(`serving on ${process.env.SERVER_ADDRESS}\n`);
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.stdin.on("end", () => {
  server.forceShutdown();
  process.exit(0);
});
process.stdin.resume();
