// Shared by the benchmark processes: N AuthorizationPolicies that all apply to the benchmarked
// workload (the worst case: Istio evaluates every policy that selects the workload), and requests.

/** N policies in namespace "bench": ~10% DENY, the rest ALLOW; only the last ALLOW matches /api/. */
export function makePolicies(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const deny = i % 10 === 0;
    out.push({
      metadata: { name: `p${i}`, namespace: "bench" },
      spec: {
        action: deny ? "DENY" : "ALLOW",
        rules: [
          {
            from: [
              { source: { principals: [`cluster.local/ns/team-${i}/sa/*`], notIpBlocks: ["192.0.2.0/24"] } },
            ],
            to: [
              { operation: { methods: ["GET", "POST"], paths: [`/svc-${i}/{*}/items`, `/svc-${i}/admin*`] } },
            ],
            when: [{ key: "request.headers[x-tenant]", values: [`tenant-${i}`] }],
          },
        ],
      },
    });
  }
  out.push({
    metadata: { name: "allow-api", namespace: "bench" },
    spec: {
      rules: [
        { from: [{ source: { namespaces: ["frontend"] } }], to: [{ operation: { paths: ["/api/*"] } }] },
      ],
    },
  });
  return out;
}

/** A request that walks every policy and is allowed by the last one. */
export const request = {
  source: { principal: "cluster.local/ns/frontend/sa/web", ip: "10.0.0.7" },
  destination: { namespace: "bench", labels: { app: "bench" }, port: 8080, ip: "10.1.0.1" },
  request: { method: "GET", path: "/api/items", host: "bench.svc", headers: { "x-tenant": "tenant-x" } },
};
