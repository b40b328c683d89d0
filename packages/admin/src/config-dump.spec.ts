import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ClientResourceStatus } from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import { SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { ClientConfig_GenericXdsConfigSchema } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { ConfigType } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { envoyRegistry } from "@meshlet/mesh";
import { TypeUrl } from "@meshlet/xds";
import { describe, expect, it } from "vitest";
import { buildConfigDump, configDumpJson } from "./config-dump.js";

// Envoy's SecretsConfigDump (envoyproxy/envoy api/envoy/admin/v3/config_dump.proto): a secret the
// proxy rejected is shown with its error_state, whose failed_configuration is the rejected
// resource — a private key can hide there too, and must be redacted like the active one.

const secret = (key: string) =>
  anyPack(
    SecretSchema,
    create(SecretSchema, {
      name: "kubernetes://bookinfo-credential",
      type: {
        case: "tlsCertificate",
        value: {
          certificateChain: { specifier: { case: "inlineString", value: "CHAIN" } },
          privateKey: { specifier: { case: "inlineString", value: key } },
        },
      },
    }),
  );

describe("buildConfigDump", () => {
  it("redacts a secret's key in the resource and in the rejected update's failed_configuration, leaving the source untouched", () => {
    const active = secret("ACTIVE-KEY");
    const entry = create(ClientConfig_GenericXdsConfigSchema, {
      typeUrl: TypeUrl.Secret,
      name: "kubernetes://bookinfo-credential",
      versionInfo: "1",
      xdsConfig: active,
      clientStatus: ClientResourceStatus.NACKED,
      errorState: { failedConfiguration: secret("REJECTED-KEY"), details: "bad certificate" },
    });
    const dump = buildConfigDump([entry], new Map([[ConfigType.SECRETS, new Set<string>()]]), envoyRegistry);
    const text = JSON.stringify(configDumpJson(dump, envoyRegistry));
    expect(text).not.toContain("ACTIVE-KEY");
    expect(text).not.toContain("REJECTED-KEY");
    expect(text).toContain("CHAIN");
    expect(text).toContain("bad certificate");
    expect(text).toContain("failed_configuration");
    expect(text.match(/\[redacted\]/g)).toHaveLength(2);
    // The xDS server's own resource (shared bytes) still holds the key it serves.
    expect(new TextDecoder().decode(active.value)).toContain("ACTIVE-KEY");
  });
});
