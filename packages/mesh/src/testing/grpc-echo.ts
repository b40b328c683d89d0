// Test support (not part of the public API): the scenario of Istio's proxyless sample
// (istio/istio samples/grpc-echo/grpc-echo.yaml): namespace `echo-grpc`, Service `echo` with ports
// http 80→18080, grpc 7070→17070, tcp 9090→19090, two pods echo-v1/echo-v2 (labels app/version,
// service account `default`), and a client pod in the same namespace. The ClusterIP and pod IPs
// are the ones docs/reference/istio-conventions.md §1.4 assumes.

/** The grpc-echo Service, its two pods and a client pod, as YAML. */
export const GRPC_ECHO_YAML = `
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: echo-grpc, labels: { app: echo } }
spec:
  clusterIP: 10.96.10.10
  selector: { app: echo }
  ports:
    - { name: http, port: 80, targetPort: 18080 }
    - { name: grpc, port: 7070, targetPort: 17070 }
    - { name: tcp, port: 9090, targetPort: 19090 }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-v1-0, namespace: echo-grpc, labels: { app: echo, version: v1 } }
spec:
  containers: [{ name: app, ports: [{ containerPort: 17070 }] }]
status: { podIP: 10.244.1.10, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-v2-0, namespace: echo-grpc, labels: { app: echo, version: v2 } }
spec:
  containers: [{ name: app, ports: [{ containerPort: 17070 }] }]
status: { podIP: 10.244.1.11, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: client-0, namespace: echo-grpc, labels: { app: client } }
spec:
  containers: [{ name: app }]
status: { podIP: 10.244.1.20, phase: Running }
---
`;

/** The DestinationRule of the proxyless blog and grpcecho_test.go: subsets v1/v2. */
export const GRPC_ECHO_SUBSETS = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: echo-grpc }
spec:
  host: echo.echo-grpc.svc.cluster.local
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
---
`;

/** The node id of the client pod (Istio's agent format). */
export const GRPC_ECHO_CLIENT_ID = "sidecar~10.244.1.20~client-0.echo-grpc~echo-grpc.svc.cluster.local";
