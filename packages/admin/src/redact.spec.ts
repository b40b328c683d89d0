import { create, createRegistry } from "@bufbuild/protobuf";
import { type Any, anyPack, anyUnpack, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import {
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { TypedStructSchema } from "@meshlet/api/xds/type/v3/typed_struct_pb";
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

  it("redacts a listener's inline TLS certificate key and session ticket keys (tls.proto: sensitive), keeping the chain and SDS names", () => {
    const tls = create(DownstreamTlsContextSchema, {
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { specifier: { case: "inlineString", value: "CHAIN" } },
            privateKey: { specifier: { case: "inlineString", value: "LISTENER-KEY" } },
          },
        ],
        tlsCertificateSdsSecretConfigs: [{ name: "kubernetes://bookinfo-credential" }],
      },
      sessionTicketKeysType: {
        case: "sessionTicketKeys",
        value: { keys: [{ specifier: { case: "inlineBytes", value: bytes("TICKET-KEY") } }] },
      },
    });
    const listener = create(ListenerSchema, {
      name: "0.0.0.0_443",
      filterChains: [
        {
          transportSocket: {
            name: "envoy.transport_sockets.tls",
            configType: { case: "typedConfig", value: anyPack(DownstreamTlsContextSchema, tls) },
          },
        },
      ],
    });
    redact(ListenerSchema, listener, envoyRegistry);
    const any = listener.filterChains[0]?.transportSocket?.configType.value;
    const back = anyUnpack(any as never, envoyRegistry) as typeof tls;
    const cert = back.commonTlsContext?.tlsCertificates[0];
    expect(cert?.privateKey?.specifier).toEqual({ case: "inlineString", value: REDACTED });
    expect(cert?.certificateChain?.specifier).toEqual({ case: "inlineString", value: "CHAIN" });
    expect(back.commonTlsContext?.tlsCertificateSdsSecretConfigs[0]?.name).toBe(
      "kubernetes://bookinfo-credential",
    );
    const keys =
      back.sessionTicketKeysType.case === "sessionTicketKeys" ? back.sessionTicketKeysType.value : undefined;
    expect(text(keys?.keys[0]?.specifier.value as Uint8Array)).toBe(REDACTED);
  });

  it("redacts a TypedStruct of a known type through its typed form, and withholds one of an unknown type", () => {
    const known = create(ClusterSchema, {
      name: "c",
      transportSocket: {
        name: "envoy.transport_sockets.tls",
        configType: {
          case: "typedConfig",
          value: anyPack(
            TypedStructSchema,
            create(TypedStructSchema, {
              typeUrl: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
              value: {
                commonTlsContext: { tlsCertificates: [{ privateKey: { inlineString: "STRUCT-KEY" } }] },
                sni: "reviews",
              },
            }),
          ),
        },
      },
    });
    redact(ClusterSchema, known, envoyRegistry);
    const ts = anyUnpack(known.transportSocket?.configType.value as Any, TypedStructSchema);
    expect(JSON.stringify(ts?.value)).not.toContain("STRUCT-KEY");
    expect(ts?.value).toMatchObject({ sni: "reviews" });
    expect(JSON.stringify(ts?.value)).toContain(REDACTED);

    // An extension this control plane has no descriptor for: its JSON might hold anything.
    const unknown = create(ClusterSchema, {
      name: "c",
      transportSocket: {
        name: "acme",
        configType: {
          case: "typedConfig",
          value: anyPack(
            TypedStructSchema,
            create(TypedStructSchema, {
              typeUrl: "type.googleapis.com/acme.v1.KeyHolder",
              value: { apiKey: "ACME-SECRET" },
            }),
          ),
        },
      },
    });
    redact(ClusterSchema, unknown, envoyRegistry);
    const uts = anyUnpack(unknown.transportSocket?.configType.value as Any, TypedStructSchema);
    expect(uts?.typeUrl).toBe("type.googleapis.com/acme.v1.KeyHolder");
    expect(JSON.stringify(uts?.value)).not.toContain("ACME-SECRET");
    expect(JSON.stringify(uts?.value)).toContain("acme.v1.KeyHolder");
  });
});
