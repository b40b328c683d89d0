import type { Pod } from "./pod-model.js";

/** The workload a pod belongs to, as Istio's `kube.GetDeployMetaFromPod` derives it. */
export interface DeployMeta {
  readonly name: string;
  readonly namespace: string;
  /** The controller's kind (`Deployment`, `StatefulSet`, `CronJob`, …; `Pod` for a bare pod). */
  readonly kind: string;
  readonly apiVersion: string;
}

// A Job created by a CronJob is named <cronjob>-<scheduled time in minutes>, 8 to 11 digits.
const CRON_JOB_NAME = /^(.+)-\d{8,11}$/;

/**
 * Derives the workload from the pod's controller reference: a ReplicaSet whose name ends with the
 * pod's `pod-template-hash` is a Deployment's, an Argo Rollout's when `rollouts-pod-template-hash`
 * matches; a ReplicationController with a `deploymentconfig` label is an OpenShift DeploymentConfig's;
 * a Job named `<name>-<8..11 digits>` is a CronJob's. A pod without a generated name is its own
 * workload. The controller reference is trusted because the API server sets it (pod creators who
 * forge one only mislabel their own telemetry).
 */
export function deployMetaFromPod(pod: Pod, namespace: string): DeployMeta {
  const meta = pod.metadata;
  const own: DeployMeta = { name: meta.name ?? "", namespace, kind: "Pod", apiVersion: "v1" };
  if ((meta.generateName ?? "") === "") return own;
  const controller = (meta.ownerReferences ?? []).find((ref) => ref.controller === true);
  if (controller === undefined) return own;
  const labels = meta.labels ?? {};
  const base = { namespace, apiVersion: controller.apiVersion, kind: controller.kind, name: controller.name };
  const hash = labels["pod-template-hash"];
  const rolloutHash = labels["rollouts-pod-template-hash"];
  if (
    controller.kind === "ReplicaSet" &&
    hash !== undefined &&
    hash !== "" &&
    controller.name.endsWith(hash)
  ) {
    return { ...base, kind: "Deployment", name: controller.name.slice(0, -(hash.length + 1)) };
  }
  if (
    controller.kind === "ReplicaSet" &&
    rolloutHash !== undefined &&
    rolloutHash !== "" &&
    controller.name.endsWith(rolloutHash)
  ) {
    return {
      ...base,
      kind: "Rollout",
      apiVersion: "argoproj.io/v1alpha1",
      name: controller.name.slice(0, -(rolloutHash.length + 1)),
    };
  }
  if (controller.kind === "ReplicationController" && (labels.deploymentconfig ?? "") !== "") {
    return { ...base, kind: "DeploymentConfig", name: labels.deploymentconfig as string };
  }
  if (controller.kind === "Job") {
    const match = CRON_JOB_NAME.exec(controller.name);
    if (match !== null) return { ...base, kind: "CronJob", apiVersion: "batch/v1", name: match[1] as string };
  }
  return base;
}
