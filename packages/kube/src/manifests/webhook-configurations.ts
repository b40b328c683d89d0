import type { IMutatingWebhook } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhook";
import type { IMutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import type { IValidatingWebhook } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhook";
import type { IValidatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration";
import { webhookConfigurationNames } from "./control-plane.js";
import { meshletNames } from "./names.js";
import type { MeshletValues } from "./values.js";

type Selector = NonNullable<IMutatingWebhook["namespaceSelector"]>;
const exists = (key: string, present: boolean) => ({ key, operator: present ? "Exists" : "DoesNotExist" });

/**
 * The sidecar injector's webhooks, selecting pods exactly as Istio's do (istio/istio
 * manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml):
 * - `rev.namespace…`: namespaces labelled `istio.io/rev=<rev>` (and no `istio-injection`);
 * - `rev.object…`: pods labelled `istio.io/rev=<rev>` in unlabelled namespaces;
 * - for the default revision also `namespace…` (`istio-injection=enabled`) and `object…`
 *   (pods labelled `sidecar.istio.io/inject=true` in unlabelled namespaces).
 * A pod labelled `sidecar.istio.io/inject=false` is never sent. `failurePolicy: Ignore` by default,
 * so pods are created (without a sidecar) while meshletd is unreachable.
 */
export function mutatingWebhookConfiguration(values: MeshletValues): IMutatingWebhookConfiguration {
  const n = meshletNames(values);
  const base = (name: string, namespaceSelector: Selector, objectSelector: Selector): IMutatingWebhook => ({
    name,
    clientConfig: {
      service: { name: n.meshletd, namespace: values.namespace, path: "/inject", port: 443 },
      ...(values.injection.caBundle !== "" ? { caBundle: values.injection.caBundle } : {}),
    },
    rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
    failurePolicy: values.injection.failurePolicy,
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    timeoutSeconds: values.injection.timeoutSeconds,
    reinvocationPolicy: "Never",
    namespaceSelector,
    objectSelector,
  });
  const notOptedOut = { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] };
  const webhooks: IMutatingWebhook[] = [
    base(
      "rev.namespace.sidecar-injector.meshlet.io",
      {
        matchExpressions: [
          { key: "istio.io/rev", operator: "In", values: [n.rev] },
          exists("istio-injection", false),
        ],
      },
      { matchExpressions: [notOptedOut] },
    ),
    base(
      "rev.object.sidecar-injector.meshlet.io",
      { matchExpressions: [exists("istio.io/rev", false), exists("istio-injection", false)] },
      { matchExpressions: [notOptedOut, { key: "istio.io/rev", operator: "In", values: [n.rev] }] },
    ),
  ];
  if (values.revision === "") {
    webhooks.push(
      base(
        "namespace.sidecar-injector.meshlet.io",
        { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
        { matchExpressions: [notOptedOut] },
      ),
      base(
        "object.sidecar-injector.meshlet.io",
        { matchExpressions: [exists("istio-injection", false), exists("istio.io/rev", false)] },
        {
          matchExpressions: [
            { key: "sidecar.istio.io/inject", operator: "In", values: ["true"] },
            exists("istio.io/rev", false),
          ],
        },
      ),
    );
  }
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: webhookConfigurationNames(values).mutating,
      labels: { ...n.labels, app: "sidecar-injector" },
    },
    webhooks,
  };
}

/**
 * Config validation (Galley's webhook): CREATE and UPDATE of every kind in Istio's API groups go to
 * meshletd's `/validate`. Objects labelled with another revision are left to that revision.
 */
export function validatingWebhookConfiguration(values: MeshletValues): IValidatingWebhookConfiguration {
  const n = meshletNames(values);
  const rules: IValidatingWebhook["rules"] = [
    {
      operations: ["CREATE", "UPDATE"],
      apiGroups: ["security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"],
      apiVersions: ["*"],
      resources: ["*"],
    },
  ];
  const webhook = (name: string, objectSelector: Selector): IValidatingWebhook => ({
    name,
    clientConfig: {
      service: { name: n.meshletd, namespace: values.namespace, path: "/validate", port: 443 },
      ...(values.validation.caBundle !== "" ? { caBundle: values.validation.caBundle } : {}),
    },
    rules,
    failurePolicy: values.validation.failurePolicy,
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    timeoutSeconds: values.validation.timeoutSeconds,
    objectSelector,
  });
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: webhookConfigurationNames(values).validating, labels: n.labels },
    webhooks: [
      webhook("rev.validation.meshlet.io", {
        matchExpressions: [{ key: "istio.io/rev", operator: "In", values: [n.rev] }],
      }),
      ...(values.revision === ""
        ? [webhook("validation.meshlet.io", { matchExpressions: [exists("istio.io/rev", false)] })]
        : []),
    ],
  };
}
