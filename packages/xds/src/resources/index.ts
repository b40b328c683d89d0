export {
  adsConfigSource,
  apiListener,
  type ClusterOptions,
  cluster,
  type EndpointOptions,
  httpListener,
  type LoadAssignmentOptions,
  listener,
  loadAssignment,
  type RouteOptions,
  route,
  routeConfiguration,
  type VirtualHostOptions,
  type WithTtl,
  withTtl,
} from "./builders.js";
export { clusterEndpointName, listenerRouteNames } from "./references.js";
