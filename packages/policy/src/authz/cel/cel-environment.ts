import type { CelInput } from "@bufbuild/cel";
import { type Attributes, namespaceOfPrincipal, normalizePrincipal } from "../../attributes.js";
import { type CelCheckType, T } from "./cel-types.js";

const labels = T.map(T.string, T.string);

/**
 * The declared environment CEL conditions are checked against when a policy loads: five
 * variables, one per attribute group, with these fields and types. A field or variable not listed
 * here is a load-time error, so a typo (`request.hedaers`) refuses the policy instead of quietly
 * never matching.
 *
 * At run time every declared scalar field is present (absent attributes read as `""` or `0`, as
 * protobuf fields do) and maps are empty rather than absent; indexing a map with a key it does
 * not hold is an evaluation error (`request.headers["x"]` when there is no `x` header — test
 * with `"x" in request.headers` first).
 */
export const CEL_ENVIRONMENT: Readonly<Record<string, CelCheckType>> = {
  source: T.object("meshlet.policy.Source", {
    principal: T.string,
    namespace: T.string,
    ip: T.string,
    port: T.int,
    labels,
  }),
  destination: T.object("meshlet.policy.Destination", {
    principal: T.string,
    namespace: T.string,
    ip: T.string,
    port: T.int,
    labels,
  }),
  request: T.object("meshlet.policy.Request", {
    method: T.string,
    host: T.string,
    path: T.string,
    query: T.string,
    scheme: T.string,
    protocol: T.string,
    id: T.string,
    headers: labels,
    auth: T.object("meshlet.policy.RequestAuth", {
      principal: T.string,
      audiences: T.list(T.string),
      presenter: T.string,
      claims: T.map(T.string, T.dyn),
    }),
  }),
  connection: T.object("meshlet.policy.Connection", { sni: T.string }),
  remote: T.object("meshlet.policy.Remote", { ip: T.string }),
};

const str = (v: string | undefined) => v ?? "";

/** The CEL bindings of a request, shaped exactly as {@link CEL_ENVIRONMENT} declares. */
export function celBindings(attrs: Attributes): Record<string, CelInput> {
  const s = attrs.source;
  const d = attrs.destination;
  const r = attrs.request;
  const a = r?.auth;
  return {
    source: {
      principal: s?.principal ? normalizePrincipal(s.principal) : "",
      namespace: str(s?.namespace ?? namespaceOfPrincipal(s?.principal)),
      ip: str(s?.ip),
      port: BigInt(s?.port ?? 0),
      labels: { ...s?.labels },
    },
    destination: {
      principal: str(d?.principal),
      namespace: str(d?.namespace),
      ip: str(d?.ip),
      port: BigInt(d?.port ?? 0),
      labels: { ...d?.labels },
    },
    request: {
      method: str(r?.method),
      host: str(r?.host),
      path: str(r?.path),
      query: str(r?.query),
      scheme: str(r?.scheme),
      protocol: str(r?.protocol),
      id: str(r?.id),
      headers: { ...r?.headers },
      auth: {
        principal: str(a?.principal),
        audiences: [...(a?.audiences ?? [])],
        presenter: str(a?.presenter),
        claims: (a?.claims ?? {}) as CelInput,
      },
    },
    connection: { sni: str(attrs.connection?.sni) },
    remote: { ip: str(attrs.remote?.ip ?? s?.ip) },
  } as Record<string, CelInput>;
}
