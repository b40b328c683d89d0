export {
  adsConfigSource,
  apiListener,
  type ClusterOptions,
  cluster,
  type EndpointOptions,
  httpListener,
  type LoadAssignmentOptions,
  loadAssignment,
  type RouteOptions,
  routeConfiguration,
  type VirtualHostOptions,
  type WithTtl,
  withTtl,
} from "./builders.js";
export { clusterEndpointName, listenerRouteNames } from "./references.js";
