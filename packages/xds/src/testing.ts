/**
 * Test helpers for control planes built on @meshlet/xds: a scriptable xDS client that ACKs or
 * NACKs on demand. Import from "@meshlet/xds/testing".
 */
export {
  AdsClient,
  type AdsClientOptions,
  type ReceivedResource,
  type ReceivedResponse,
} from "./testing/ads-client.js";
