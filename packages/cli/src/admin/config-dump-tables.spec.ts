import { describe, expect, it } from "vitest";
import { dumpResources, dumpTable } from "./config-dump-tables.js";
import { formatTable } from "./table.js";

// Expected rows from istioctl's own testdata (istio/istio istioctl/pkg/writer/envoy/configdump/
// testdata/clustersummary.txt, listenersummary.txt, routesummary.txt, endpoint/emptyfilter_output.txt):
// the same clusters, listeners and endpoints written here as a config dump, in Envoy's JSON.

const at = (type: string, body: object) => ({
  "@type": `type.googleapis.com/envoy.admin.v3.${type}`,
  ...body,
});
const dump = {
  configs: [
    at("ClustersConfigDump", {
      dynamic_active_clusters: [
        { cluster: { name: "outbound|15004||istio-policy.istio-system.svc.cluster.local", type: "EDS" } },
        { cluster: { name: "xds-grpc", type: "STRICT_DNS" } },
        {
          cluster: {
            name: "outbound|9080|v2|reviews.default.svc.cluster.local",
            type: "EDS",
            metadata: {
              filter_metadata: {
                istio: { config: "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews" },
              },
            },
          },
        },
      ],
    }),
    at("ListenersConfigDump", {
      dynamic_listeners: [
        {
          name: "172.21.134.116_443",
          active_state: {
            listener: {
              name: "172.21.134.116_443",
              address: { socket_address: { address: "172.21.134.116", port_value: 443 } },
              filter_chains: [
                {
                  filters: [
                    {
                      typed_config: {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        cluster: "outbound|443||istio-ingressgateway.istio-system.svc.cluster.local",
                      },
                    },
                  ],
                },
              ],
            },
          },
        },
        {
          name: "0.0.0.0_8080",
          active_state: {
            listener: {
              name: "0.0.0.0_8080",
              address: { socket_address: { address: "0.0.0.0", port_value: 8080 } },
              filter_chains: [
                {
                  filters: [
                    {
                      typed_config: {
                        "@type":
                          "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        rds: { route_config_name: "8080" },
                      },
                    },
                  ],
                },
              ],
            },
          },
        },
      ],
    }),
    at("RoutesConfigDump", {
      dynamic_route_configs: [
        {
          route_config: {
            name: "9080",
            virtual_hosts: [
              {
                name: "reviews.default.svc.cluster.local:9080",
                domains: ["reviews.default.svc.cluster.local", "reviews", "reviews.default", "10.96.0.13"],
                routes: [
                  {
                    match: { prefix: "/" },
                    metadata: {
                      filter_metadata: {
                        istio: {
                          config: "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews",
                        },
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
    }),
    at("EndpointsConfigDump", {
      dynamic_endpoint_configs: [
        {
          endpoint_config: {
            cluster_name: "outbound|9080||details.default.svc.cluster.local",
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: { address: { socket_address: { address: "10.244.0.190", port_value: 9080 } } },
                    health_status: "HEALTHY",
                  },
                ],
              },
            ],
          },
        },
      ],
    }),
  ],
};

describe("proxy-config tables", () => {
  it("clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE", () => {
    expect(dumpTable(dump, "clusters")).toEqual([
      ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
      ["istio-policy.istio-system.svc.cluster.local", "15004", "-", "outbound", "EDS", ""],
      ["xds-grpc", "-", "-", "-", "STRICT_DNS", ""],
      ["reviews.default.svc.cluster.local", "9080", "v2", "outbound", "EDS", "reviews.default"],
    ]);
  });

  it("listeners, routes and endpoints", () => {
    expect(dumpTable(dump, "listeners").slice(1)).toEqual([
      [
        "172.21.134.116_443",
        "172.21.134.116",
        "443",
        "TCP",
        "Cluster: outbound|443||istio-ingressgateway.istio-system.svc.cluster.local",
      ],
      ["0.0.0.0_8080", "0.0.0.0", "8080", "HTTP", "Route: 8080"],
    ]);
    expect(dumpTable(dump, "routes")).toEqual([
      ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
      [
        "9080",
        "reviews.default.svc.cluster.local:9080",
        "reviews.default.svc.cluster.local + 3 more...",
        "/*",
        "reviews.default",
      ],
    ]);
    expect(dumpTable(dump, "endpoints")).toEqual([
      ["ENDPOINT", "STATUS", "LOCALITY", "CLUSTER"],
      ["10.244.0.190:9080", "HEALTHY", "", "outbound|9080||details.default.svc.cluster.local"],
    ]);
    expect(dumpResources(dump, "secrets")).toEqual([]);
  });

  it("pads columns as Go's tabwriter does with istioctl's settings (5 spaces after the widest cell)", () => {
    expect(
      formatTable([
        ["NAME", "CDS"],
        ["proxy1", "SYNCED"],
      ]),
    ).toEqual(["NAME       CDS", "proxy1     SYNCED"]);
  });
});
