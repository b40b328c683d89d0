// Integration: a real, independently written xDS client — @grpc/grpc-js 1.14 with
// @grpc/grpc-js-xds 1.14.1, in its own Node process — resolves `xds:///echo` through our XdsServer
// (LDS → RDS → CDS → EDS over ADS) and makes RPCs to grpc-js backends, all on 127.0.0.1.
import { startGrpcJsXdsClient } from "./support/clients.js";
import { describeRealClient } from "./support/real-client-suite.js";

describeRealClient({
  title: "grpc-js-xds 1.14.1 against XdsServer",
  start: startGrpcJsXdsClient,
  // grpc-js-xds validates lb_policy itself (ROUND_ROBIN or RING_HASH without load_balancing_policy)
  // and NACKs with status UNAVAILABLE:
  // "xDS response validation errors: [resource index 0: Cluster message validation failed:
  //  [load_balancing_policy unset and unsupported lb_policy: LEAST_REQUEST]]"
  leastRequestNack:
    /^xDS response validation errors: \[resource index 0: Cluster message validation failed: \[load_balancing_policy unset and unsupported lb_policy: LEAST_REQUEST\]\]$/,
  leastRequestNackCode: 14,
  unsubscribesOnClose: true,
  // Does not advertise xds.config.resource-in-sotw; a Resource-wrapped (TTL) cluster is NACKed with
  // "resource index 0: incorrect resource type \"undefined\" (should be \"…Cluster\")".
  resourceInSotw: false,
});
