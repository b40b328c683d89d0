// Integration: a real, independently written xDS client — gRPC C-core as shipped in Debian's
// python3-grpcio (1.51, C-core 29), in its own /usr/bin/python3 process — resolves `xds:///echo`
// through our XdsServer (LDS → RDS → CDS → EDS over ADS) and makes RPCs to grpc-js backends, all
// on 127.0.0.1. CI needs `apt-get install -y python3-grpcio`.

import { startCCoreClient } from "./support/clients.js";
import { describeRealClient } from "./support/real-client-suite.js";

describeRealClient({
  title: "gRPC C-core (python3-grpcio 1.51) against XdsServer",
  start: startCCoreClient,
  // C-core 1.51 accepts only ROUND_ROBIN and RING_HASH in Cluster.lb_policy and NACKs with
  // INVALID_ARGUMENT:
  // "xDS response validation errors: [resource index 0: c1: INVALID_ARGUMENT: errors validating
  //  Cluster resource: [field:lb_policy error:LB policy is not supported]]"
  leastRequestNack:
    /^xDS response validation errors: \[resource index 0: c1: INVALID_ARGUMENT: errors validating Cluster resource: \[field:lb_policy error:LB policy is not supported\]\]$/,
  leastRequestNackCode: 3,
  unsubscribesOnClose: false,
  resourceInSotw: true,
});
