// The compiled validators meshlet checks built-in kinds with. Istio's come from
// @kubernetes-models/istio (generated from Istio's CRD OpenAPI schemas, crd-all.gen.yaml), the
// Kubernetes ones from kubernetes-models (generated from Kubernetes' OpenAPI document). Istio serves
// the same schema at v1, v1beta1 and v1alpha3, so one validator per kind covers every version.
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { Gateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway";
import { ServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { Sidecar } from "@kubernetes-models/istio/networking.istio.io/v1/Sidecar";
import { VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import { WorkloadEntry } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry";
import { WorkloadGroup } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadGroup";
import { EnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter";
import { ProxyConfig } from "@kubernetes-models/istio/networking.istio.io/v1beta1/ProxyConfig";
import { AuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import { PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import { RequestAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication";
import { Telemetry } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ReplicaSet } from "kubernetes-models/apps/v1/ReplicaSet";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Job } from "kubernetes-models/batch/v1/Job";
import { EndpointSlice } from "kubernetes-models/discovery.k8s.io/v1/EndpointSlice";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { CompiledValidator } from "./upstream-schema.js";

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  readonly prototype: { validate(): void };
}

/**
 * The model's compiled validator, applied to the object as is. The object is checked as the version
 * the validator was generated for (the schema is the same at every served version).
 */
function fromModel(model: ModelClass): CompiledValidator {
  const validate = model.prototype.validate;
  return (data) => {
    const subject =
      data !== null && typeof data === "object" && !Array.isArray(data)
        ? { ...(data as object), apiVersion: model.apiVersion }
        : data;
    try {
      validate.call(subject);
      return { ok: true };
    } catch (error) {
      const errors = (error as { errors?: unknown }).errors;
      if (!Array.isArray(errors)) throw error;
      return { ok: false, errors };
    }
  };
}

/** Compiled validators by `group/Kind` (`Kind` for the core group). */
export const upstreamValidators: Readonly<Record<string, CompiledValidator>> = {
  "networking.istio.io/VirtualService": fromModel(VirtualService),
  "networking.istio.io/DestinationRule": fromModel(DestinationRule),
  "networking.istio.io/Gateway": fromModel(Gateway),
  "networking.istio.io/ServiceEntry": fromModel(ServiceEntry),
  "networking.istio.io/Sidecar": fromModel(Sidecar),
  "networking.istio.io/WorkloadEntry": fromModel(WorkloadEntry),
  "networking.istio.io/WorkloadGroup": fromModel(WorkloadGroup),
  "networking.istio.io/EnvoyFilter": fromModel(EnvoyFilter),
  "networking.istio.io/ProxyConfig": fromModel(ProxyConfig),
  "security.istio.io/AuthorizationPolicy": fromModel(AuthorizationPolicy),
  "security.istio.io/PeerAuthentication": fromModel(PeerAuthentication),
  "security.istio.io/RequestAuthentication": fromModel(RequestAuthentication),
  "telemetry.istio.io/Telemetry": fromModel(Telemetry),
  "extensions.istio.io/WasmPlugin": fromModel(WasmPlugin),
  Service: fromModel(Service),
  Pod: fromModel(Pod),
  Namespace: fromModel(Namespace),
  ServiceAccount: fromModel(ServiceAccount),
  Secret: fromModel(Secret),
  ConfigMap: fromModel(ConfigMap),
  "discovery.k8s.io/EndpointSlice": fromModel(EndpointSlice),
  "apps/Deployment": fromModel(Deployment),
  "apps/StatefulSet": fromModel(StatefulSet),
  "apps/DaemonSet": fromModel(DaemonSet),
  "apps/ReplicaSet": fromModel(ReplicaSet),
  "batch/Job": fromModel(Job),
  "batch/CronJob": fromModel(CronJob),
};
