// Shared by the benchmark processes: the policy sets and the requests they are measured with.

/**
 * "one workload": N policies in namespace "bench" that all apply to the benchmarked workload (the
 * worst case for scoping: Istio evaluates every policy that selects a workload). ~10% DENY, the
 * rest ALLOW; only the last ALLOW matches /api/. Their rules name principal prefixes, which the
 * engine's rule index uses.
 */
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
  out.push(allowApi("bench"));
  return out;
}

/**
 * "one workload, unindexed": like {@link makePolicies}, but no rule names exact or prefix
 * principals, namespaces or paths, so no rule index applies and a check evaluates every rule of
 * every policy (each passes its source and fails on its host or header).
 */
export function makeUnindexedPolicies(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      metadata: { name: `u${i}`, namespace: "bench" },
      spec: {
        action: i % 10 === 0 ? "DENY" : "ALLOW",
        rules: [
          {
            from: [{ source: { ipBlocks: ["10.0.0.0/8"], notNamespaces: [`team-${i}`] } }],
            to: [{ operation: { methods: ["GET", "POST"], hosts: [`svc-${i}.bench.svc`] } }],
            when: [{ key: "request.headers[x-tenant]", values: [`tenant-${i}`] }],
          },
        ],
      },
    });
  }
  out.push(allowApi("bench"));
  return out;
}

/**
 * "mesh": N policies spread as a mesh has them: N/10 namespaces of 10 workloads (`app: svc-k`),
 * one policy per workload, plus a mesh-wide DENY in the root namespace. The benchmarked workload
 * is one of them.
 */
export function makeMeshPolicies(n) {
  const out = [
    {
      metadata: { name: "deny-admin", namespace: "istio-system" },
      spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] },
    },
  ];
  for (let i = 0; i < n; i++) {
    const ns = i === 0 ? "bench" : `ns-${Math.floor(i / 10)}`;
    out.push({
      metadata: { name: `w${i}`, namespace: ns },
      spec: {
        selector: { matchLabels: { app: i === 0 ? "bench" : `svc-${i % 10}` } },
        rules: [
          {
            from: [{ source: { namespaces: ["frontend", `team-${i}`] } }],
            to: [{ operation: { methods: ["GET", "POST"], paths: ["/api/*", `/svc-${i}/{*}`] } }],
          },
        ],
      },
    });
  }
  return out;
}

function allowApi(namespace) {
  return {
    metadata: { name: "allow-api", namespace },
    spec: {
      rules: [
        { from: [{ source: { namespaces: ["frontend"] } }], to: [{ operation: { paths: ["/api/*"] } }] },
      ],
    },
  };
}

/** A request that the last ALLOW policy allows (in "one workload", after walking all the others). */
export const request = {
  source: { principal: "cluster.local/ns/frontend/sa/web", ip: "10.0.0.7" },
  destination: { namespace: "bench", labels: { app: "bench" }, port: 8080, ip: "10.1.0.1" },
  request: { method: "GET", path: "/api/items", host: "bench.svc", headers: { "x-tenant": "tenant-x" } },
};
