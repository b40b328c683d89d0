import { create, createRegistry } from "@bufbuild/protobuf";
import { anyPack, anyUnpack, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { UpstreamTlsContextSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { envoyRegistry } from "@meshlet/mesh";
import { describe, expect, it } from "vitest";
import { REDACTED, redact } from "./redact.js";

// Envoy's redaction rules (envoyproxy/envoy source/common/protobuf/utility.cc `redact`, and the
// `udpa.annotations.sensitive` annotations of api/envoy/extensions/transport_sockets/tls/v3/
// common.proto and secret.proto): a sensitive field and everything under it has its strings and
// bytes replaced with "[redacted]"; Any payloads are unpacked and redacted too.

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe("redact", () => {
  it("replaces a TLS certificate's private key and password, whatever the DataSource, and keeps the chain", () => {
    const secret = create(SecretSchema, {
      name: "default",
      type: {
        case: "tlsCertificate",
        value: {
          certificateChain: { specifier: { case: "inlineBytes", value: bytes("CHAIN") } },
          privateKey: { specifier: { case: "inlineString", value: "KEY" } },
          password: { specifier: { case: "filename", value: "/etc/certs/password" } },
        },
      },
    });
    redact(SecretSchema, secret, envoyRegistry);
    const t = secret.type.case === "tlsCertificate" ? secret.type.value : undefined;
    expect(text(t?.certificateChain?.specifier.value as Uint8Array)).toBe("CHAIN");
    expect(t?.privateKey?.specifier).toEqual({ case: "inlineString", value: REDACTED });
    expect(t?.password?.specifier).toEqual({ case: "filename", value: REDACTED });
  });

  it("redacts a generic secret and a key inside a cluster's transport socket (an Any)", () => {
    const generic = create(SecretSchema, {
      name: "hmac",
      type: {
        case: "genericSecret",
        value: { secret: { specifier: { case: "inlineBytes", value: bytes("HMAC") } } },
      },
    });
    redact(SecretSchema, generic, envoyRegistry);
    expect(
      generic.type.case === "genericSecret"
        ? text(generic.type.value.secret?.specifier.value as Uint8Array)
        : "",
    ).toBe(REDACTED);
    const tls = create(UpstreamTlsContextSchema, {
      commonTlsContext: {
        tlsCertificates: [
          { privateKey: { specifier: { case: "inlineBytes", value: bytes("CLUSTER-KEY") } } },
        ],
      },
      sni: "outbound_.9080_._.reviews.default.svc.cluster.local",
    });
    const cluster = create(ClusterSchema, {
      name: "c",
      transportSocket: {
        name: "envoy.transport_sockets.tls",
        configType: { case: "typedConfig", value: anyPack(UpstreamTlsContextSchema, tls) },
      },
    });
    redact(ClusterSchema, cluster, envoyRegistry);
    const any = cluster.transportSocket?.configType.value;
    const back = anyUnpack(any as never, envoyRegistry) as typeof tls;
    expect(text(back.commonTlsContext?.tlsCertificates[0]?.privateKey?.specifier.value as Uint8Array)).toBe(
      REDACTED,
    );
    expect(back.sni).toBe("outbound_.9080_._.reviews.default.svc.cluster.local");
  });

  it("withholds an Any whose type it cannot read (fails closed), instead of passing unknown bytes through", () => {
    const cluster = create(ClusterSchema, {
      name: "c",
      transportSocket: {
        name: "x",
        configType: {
          case: "typedConfig",
          value: {
            $typeName: "google.protobuf.Any",
            typeUrl: "type.googleapis.com/acme.Secret",
            value: bytes("KEY"),
          },
        },
      },
    });
    redact(ClusterSchema, cluster, createRegistry(ClusterSchema, StringValueSchema));
    const any = cluster.transportSocket?.configType.value as { typeUrl: string; value: Uint8Array };
    expect(any.typeUrl).toBe("type.googleapis.com/google.protobuf.StringValue");
    expect(text(any.value)).not.toContain("KEY");
    expect(text(any.value)).toContain("acme.Secret");
  });
});
