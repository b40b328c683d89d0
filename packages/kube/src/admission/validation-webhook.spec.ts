import { describe, expect, it } from "vitest";
import type { AdmissionRequest, AdmissionReview } from "./admission-review.js";
import { createValidationWebhook } from "./validation-webhook.js";

function review(
  object: Record<string, unknown>,
  operation: AdmissionRequest["operation"] = "CREATE",
): AdmissionReview & { request: AdmissionRequest } {
  const meta = object.metadata as { name?: string; namespace?: string } | undefined;
  const [group = "", version = ""] = String(object.apiVersion).split("/");
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group, version, kind: String(object.kind) },
      resource: { group, version, resource: `${String(object.kind).toLowerCase()}s` },
      ...(meta?.name !== undefined ? { name: meta.name } : {}),
      namespace: meta?.namespace ?? "default",
      operation,
      object,
    },
  };
}

// A VirtualService as the Istio docs' bookinfo samples write it (samples/bookinfo/networking/virtual-service-reviews-v3.yaml).
const reviews = {
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "reviews", namespace: "default" },
  spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] },
};

describe("validation webhook", () => {
  const validate = createValidationWebhook();

  it("admits a valid VirtualService, echoing the request uid", () => {
    const { review: answer, event } = validate(review(reviews), "/validate");
    expect(answer).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true },
    });
    expect(event).toMatchObject({
      type: "validation",
      outcome: "allowed",
      resource: "VirtualService/default/reviews",
    });
  });

  it("refuses a VirtualService whose destination has no host, naming the field path", () => {
    const bad = structuredClone(reviews);
    bad.spec.http[0]!.route[0]!.destination = {
      subset: "v3",
    } as (typeof reviews.spec.http)[0]["route"][0]["destination"];
    const { review: answer, event } = validate(review(bad), "/validate");
    expect(answer.response?.allowed).toBe(false);
    expect(answer.response?.status?.code).toBe(400);
    expect(answer.response?.status?.message).toMatch(
      /^configuration is invalid: VirtualService\/default\/reviews spec\.http\[0\]\.route\[0\]\.destination\.host: /,
    );
    expect(event.type === "validation" && event.outcome).toBe("denied");
  });

  it("refuses a misspelt field, naming it", () => {
    const bad = structuredClone(reviews) as Record<string, unknown> & typeof reviews;
    (bad.spec.http[0]!.route[0]!.destination as Record<string, unknown>).subet = "v3";
    const { review: answer } = validate(review(bad), "/validate");
    expect(answer.response?.allowed).toBe(false);
    expect(answer.response?.status?.message).toContain("spec.http[0].route[0].destination.subet");
    expect(answer.response?.status?.message).toContain('unknown field "subet"');
  });

  it("refuses an invalid name", () => {
    const bad = { ...reviews, metadata: { name: "Reviews_V3", namespace: "default" } };
    const { review: answer } = validate(review(bad), "/validate");
    expect(answer.response?.allowed).toBe(false);
    expect(answer.response?.status?.message).toContain('invalid name "Reviews_V3"');
  });

  it("admits kinds it does not know, with a warning, and never checks DELETE", () => {
    const unknown = {
      apiVersion: "extensions.istio.io/v1alpha1",
      kind: "TrafficExtension",
      metadata: { name: "lua", namespace: "default" },
      spec: {},
    };
    const { review: answer } = validate(review(unknown), "/validate");
    expect(answer.response?.allowed).toBe(true);
    expect(answer.response?.warnings?.[0]).toContain("meshlet does not validate TrafficExtension");
    const bad = { ...reviews, spec: { hosts: 7 } };
    expect(validate(review(bad, "DELETE"), "/validate").review.response?.allowed).toBe(true);
  });
});
