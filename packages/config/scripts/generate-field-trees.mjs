#!/usr/bin/env node
// Generates src/gen/field-trees.ts: for every kind meshlet validates against an upstream schema, the
// tree of field names that schema defines. The compiled validators of @kubernetes-models/istio and
// kubernetes-models check types, enums, ranges and oneofs but, like a Kubernetes structural schema,
// let unknown fields through (the API server prunes them); the field trees are how meshlet refuses a
// misspelt field at any depth, as `kubectl apply --validate=strict` and istioctl do.
//
// The field names are read with the TypeScript compiler from the type declarations those same
// packages publish (generated from Istio's CRD OpenAPI schemas and Kubernetes' OpenAPI document), so
// the names and the validators come from one upstream source. Run after upgrading either package:
//   npm run generate -w @meshlet/config
// With --check, writes nothing and exits 1 when src/gen/field-trees.ts is not what it would write.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, "..");
const require = createRequire(join(pkgDir, "package.json"));
const out = join(pkgDir, "src", "gen", "field-trees.ts");

const istioDir = dirname(require.resolve("@kubernetes-models/istio/package.json"));
const k8sDir = dirname(require.resolve("kubernetes-models/package.json"));
const versionOf = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;

/** [key, declaration file, exported interface]: the key is `group/Kind` (core group: `Kind`). */
const ROOTS = [
  [
    "networking.istio.io/VirtualService",
    `${istioDir}/networking.istio.io/v1/VirtualService.d.ts`,
    "IVirtualService",
  ],
  [
    "networking.istio.io/DestinationRule",
    `${istioDir}/networking.istio.io/v1/DestinationRule.d.ts`,
    "IDestinationRule",
  ],
  ["networking.istio.io/Gateway", `${istioDir}/networking.istio.io/v1/Gateway.d.ts`, "IGateway"],
  [
    "networking.istio.io/ServiceEntry",
    `${istioDir}/networking.istio.io/v1/ServiceEntry.d.ts`,
    "IServiceEntry",
  ],
  ["networking.istio.io/Sidecar", `${istioDir}/networking.istio.io/v1/Sidecar.d.ts`, "ISidecar"],
  [
    "networking.istio.io/WorkloadEntry",
    `${istioDir}/networking.istio.io/v1/WorkloadEntry.d.ts`,
    "IWorkloadEntry",
  ],
  [
    "networking.istio.io/WorkloadGroup",
    `${istioDir}/networking.istio.io/v1/WorkloadGroup.d.ts`,
    "IWorkloadGroup",
  ],
  [
    "networking.istio.io/EnvoyFilter",
    `${istioDir}/networking.istio.io/v1alpha3/EnvoyFilter.d.ts`,
    "IEnvoyFilter",
  ],
  [
    "networking.istio.io/ProxyConfig",
    `${istioDir}/networking.istio.io/v1beta1/ProxyConfig.d.ts`,
    "IProxyConfig",
  ],
  [
    "security.istio.io/AuthorizationPolicy",
    `${istioDir}/security.istio.io/v1/AuthorizationPolicy.d.ts`,
    "IAuthorizationPolicy",
  ],
  [
    "security.istio.io/PeerAuthentication",
    `${istioDir}/security.istio.io/v1/PeerAuthentication.d.ts`,
    "IPeerAuthentication",
  ],
  [
    "security.istio.io/RequestAuthentication",
    `${istioDir}/security.istio.io/v1/RequestAuthentication.d.ts`,
    "IRequestAuthentication",
  ],
  ["telemetry.istio.io/Telemetry", `${istioDir}/telemetry.istio.io/v1/Telemetry.d.ts`, "ITelemetry"],
  [
    "extensions.istio.io/WasmPlugin",
    `${istioDir}/extensions.istio.io/v1alpha1/WasmPlugin.d.ts`,
    "IWasmPlugin",
  ],
  ["Service", `${k8sDir}/v1/Service.d.ts`, "IService"],
  ["Pod", `${k8sDir}/v1/Pod.d.ts`, "IPod"],
  ["Namespace", `${k8sDir}/v1/Namespace.d.ts`, "INamespace"],
  ["ServiceAccount", `${k8sDir}/v1/ServiceAccount.d.ts`, "IServiceAccount"],
  ["Secret", `${k8sDir}/v1/Secret.d.ts`, "ISecret"],
  ["ConfigMap", `${k8sDir}/v1/ConfigMap.d.ts`, "IConfigMap"],
  ["discovery.k8s.io/EndpointSlice", `${k8sDir}/discovery.k8s.io/v1/EndpointSlice.d.ts`, "IEndpointSlice"],
  ["apps/Deployment", `${k8sDir}/apps/v1/Deployment.d.ts`, "IDeployment"],
  ["apps/StatefulSet", `${k8sDir}/apps/v1/StatefulSet.d.ts`, "IStatefulSet"],
  ["apps/DaemonSet", `${k8sDir}/apps/v1/DaemonSet.d.ts`, "IDaemonSet"],
  ["apps/ReplicaSet", `${k8sDir}/apps/v1/ReplicaSet.d.ts`, "IReplicaSet"],
  ["batch/Job", `${k8sDir}/batch/v1/Job.d.ts`, "IJob"],
  ["batch/CronJob", `${k8sDir}/batch/v1/CronJob.d.ts`, "ICronJob"],
];

const program = ts.createProgram(
  ROOTS.map((r) => r[1]),
  {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  },
);
const checker = program.getTypeChecker();

// Nodes: 0 = a scalar, 1 = any value (google.protobuf.Struct, x-kubernetes-preserve-unknown-fields),
// otherwise { f: fields → node, m: map values → node, a: array items → node }. Nodes are deduplicated
// by content, so the tree of a kind is a small DAG.
const nodes = [0, 1];
const byContent = new Map([
  ["0", 0],
  ["1", 1],
]);
const intern = (node) => {
  if (node === 0 || node === 1) return node;
  const key = JSON.stringify(node);
  let id = byContent.get(key);
  if (id === undefined) {
    id = nodes.length;
    nodes.push(node);
    byContent.set(key, id);
  }
  return id;
};

/** Merges two nodes: the fields, map values and array items of both. */
const merged = new Map();
function merge(a, b) {
  if (a === b) return a;
  if (a === 1 || b === 1) return 1;
  if (a === 0) return b;
  if (b === 0) return a;
  const key = a < b ? `${a},${b}` : `${b},${a}`;
  const cached = merged.get(key);
  if (cached !== undefined) return cached;
  const x = nodes[a];
  const y = nodes[b];
  const node = {};
  if (x.f !== undefined || y.f !== undefined) {
    node.f = { ...x.f };
    for (const [name, id] of Object.entries(y.f ?? {}))
      node.f[name] = name in node.f ? merge(node.f[name], id) : id;
    node.f = Object.fromEntries(Object.entries(node.f).sort(([p], [q]) => (p < q ? -1 : 1)));
  }
  if (x.m !== undefined || y.m !== undefined)
    node.m = x.m !== undefined && y.m !== undefined ? merge(x.m, y.m) : (x.m ?? y.m);
  if (x.a !== undefined || y.a !== undefined)
    node.a = x.a !== undefined && y.a !== undefined ? merge(x.a, y.a) : (x.a ?? y.a);
  const id = intern(node);
  merged.set(key, id);
  return id;
}

// The declarations are walked as syntax (type literals, unions, intersections, Array<T>, references
// to interfaces), not through the checker's type normalisation: a oneof is declared as
// `A & (B | C)`, and normalising nested ones multiplies out.
const byDeclaration = new Map();

function members(list) {
  let id = null;
  const add = (child) => {
    id = id === null ? child : merge(id, child);
  };
  const node = { f: {} };
  let hasIndex = null;
  for (const m of list) {
    if (ts.isPropertySignature(m) && m.type !== undefined) {
      const name = m.name.text ?? m.name.getText();
      const child = build(m.type);
      node.f[name] = name in node.f ? merge(node.f[name], child) : child;
    } else if (ts.isIndexSignatureDeclaration(m) && m.type !== undefined) {
      const child = build(m.type);
      hasIndex = hasIndex === null ? child : merge(hasIndex, child);
    }
  }
  const fields = Object.keys(node.f);
  if (fields.length === 0 && hasIndex === null) return 1; // `{}`: a Struct, any keys
  const out = {};
  if (fields.length > 0) out.f = Object.fromEntries(fields.sort().map((k) => [k, node.f[k]]));
  if (hasIndex !== null) out.m = hasIndex;
  add(intern(out));
  return id;
}

function interfaceNode(decl) {
  const cached = byDeclaration.get(decl);
  if (cached === "pending") return 1; // a recursive type (JSONSchemaProps): anything below the cycle
  if (cached !== undefined) return cached;
  byDeclaration.set(decl, "pending");
  let id = members(decl.members);
  for (const clause of decl.heritageClauses ?? []) {
    for (const t of clause.types) id = merge(id, referenced(t.expression, t));
  }
  byDeclaration.set(decl, id);
  return id;
}

function referenced(nameNode, typeNode) {
  let symbol = checker.getSymbolAtLocation(nameNode);
  if (symbol !== undefined && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const decl = symbol?.declarations?.[0];
  if (decl === undefined) throw new Error(`cannot resolve ${typeNode.getText()}`);
  if (ts.isInterfaceDeclaration(decl)) return interfaceNode(decl);
  if (ts.isTypeAliasDeclaration(decl)) return build(decl.type);
  throw new Error(`unexpected declaration for ${typeNode.getText()}`);
}

/** The node id of a type written in a declaration file. */
function build(node) {
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
    case ts.SyntaxKind.NumberKeyword:
    case ts.SyntaxKind.BooleanKeyword:
    case ts.SyntaxKind.BigIntKeyword:
    case ts.SyntaxKind.LiteralType:
    case ts.SyntaxKind.UndefinedKeyword:
    case ts.SyntaxKind.NullKeyword:
    case ts.SyntaxKind.NeverKeyword:
      return 0;
    case ts.SyntaxKind.AnyKeyword:
    case ts.SyntaxKind.UnknownKeyword:
    case ts.SyntaxKind.ObjectKeyword:
      return 1;
    case ts.SyntaxKind.ParenthesizedType:
      return build(node.type);
    case ts.SyntaxKind.UnionType:
    case ts.SyntaxKind.IntersectionType:
      return node.types.map(build).reduce(merge);
    case ts.SyntaxKind.ArrayType:
      return intern({ a: build(node.elementType) });
    case ts.SyntaxKind.TypeLiteral:
      return members(node.members);
    case ts.SyntaxKind.IndexedAccessType:
      // `IPod["apiVersion"]`: always a scalar in these declarations.
      return 0;
    case ts.SyntaxKind.TypeReference: {
      const name = node.typeName.getText();
      if (name === "Array" || name === "ReadonlyArray") return intern({ a: build(node.typeArguments[0]) });
      if (name === "Record") return intern({ m: build(node.typeArguments[1]) });
      // A oneof is declared `Exclude<{…}, {…}>`: the first argument carries the fields.
      if (name === "Exclude" || name === "Extract" || name === "NonNullable")
        return build(node.typeArguments[0]);
      return referenced(node.typeName, node);
    }
    default:
      throw new Error(`unexpected type syntax ${ts.SyntaxKind[node.kind]}: ${node.getText()}`);
  }
}

const roots = {};
for (const [key, file, name] of ROOTS) {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`cannot read ${file}`);
  const decl = source.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === name);
  if (!decl) throw new Error(`${file} declares no ${name}`);
  roots[key] = interfaceNode(decl);
}

const text = `// Generated by scripts/generate-field-trees.mjs from the type declarations of
// @kubernetes-models/istio@${versionOf(istioDir)} and kubernetes-models@${versionOf(k8sDir)}. Do not edit.
// A node is 0 (a scalar), 1 (any value) or { f: fields, m: map values, a: array items } (node ids).

/** One node of a field tree. */
export type FieldNode = 0 | 1 | { readonly f?: Readonly<Record<string, number>>; readonly m?: number; readonly a?: number };

/** Every node; ids index this array. */
export const fieldNodes: readonly FieldNode[] = ${JSON.stringify(nodes)};

/** The root node of each kind, keyed \`group/Kind\` (\`Kind\` for the core group). */
export const fieldRoots: Readonly<Record<string, number>> = ${JSON.stringify(roots)};
`;
// Formatted as the repository formats it (biome, reading the text from stdin as if it were `out`).
const formatted = execFileSync(
  join(pkgDir, "..", "..", "node_modules", ".bin", "biome"),
  ["format", `--stdin-file-path=${out}`],
  { input: text, encoding: "utf8" },
);
if (process.argv.includes("--check")) {
  if (formatted !== readFileSync(out, "utf8")) {
    console.error(`${out} is stale: run npm run generate -w @meshlet/config`);
    process.exit(1);
  }
  console.log(`${out} is up to date`);
} else {
  writeFileSync(out, formatted);
  console.log(`wrote ${out}: ${nodes.length} nodes, ${Object.keys(roots).length} kinds`);
}
