// Runnable README example: `npm run build -w @meshlet/api -w @meshlet/config -w @meshlet/policy && node packages/policy/examples/quickstart.mjs`
import { ExtAuthzServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "@meshlet/policy";

const engine = new PolicyEngine({
  authorizationPolicies: [
    {
      metadata: { name: "httpbin", namespace: "foo" },
      spec: {
        selector: { matchLabels: { app: "httpbin" } },
        rules: [
          {
            from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }],
            to: [{ operation: { methods: ["GET"], paths: ["/info*", "/users/{*}/profile"] } }],
          },
        ],
      },
    },
    {
      metadata: { name: "deny-admin", namespace: "istio-system" },
      spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] },
    },
  ],
  rateLimits: parseRateLimitConfig(`
domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 60 }
`),
});

engine.decisions$.subscribe((d) =>
  console.log(
    `${d.allowed ? "ALLOW" : "DENY "} ${d.attributes.request?.path} (${d.reason}${d.matched ? ` by ${d.matched.policy} rule ${d.matched.rule}` : ""})`,
  ),
);

const workload = { namespace: "foo", labels: { app: "httpbin" } };
const sleep = { principal: "cluster.local/ns/default/sa/sleep" };
await engine.check({ source: sleep, destination: workload, request: { method: "GET", path: "/info" } });
await engine.check({
  source: sleep,
  destination: workload,
  request: { method: "GET", path: "/admin/users" },
});
await engine.check({ destination: workload, request: { method: "GET", path: "/info" } });

// The same engine behind Envoy: ext_authz and the global rate-limit service on one port each.
const authz = await new ExtAuthzServer({ engine }).listen({ address: "127.0.0.1:0" });
const rls = await new RateLimitServer({ engine }).listen({ address: "127.0.0.1:0" });
console.log(`ext_authz on 127.0.0.1:${authz.port}, ratelimit on 127.0.0.1:${rls.port}`);
await Promise.all([authz.close(), rls.close()]);
await engine.close();
