import type { KubeEndpointSlice, KubeNode, KubeService } from './kube.js';

/**
 * What the tracker hands the planner: the current objects, keyed by `${namespace}/${name}`.
 * Maps are replaced (copy on write) on every change, and unchanged objects keep their identity,
 * so the planner can memoize per Service by reference.
 */
export interface ClusterState {
  readonly services: ReadonlyMap<string, KubeService>;
  /** EndpointSlices keyed by `${namespace}/${slice name}`. */
  readonly endpointSlices: ReadonlyMap<string, KubeEndpointSlice>;
  /** EndpointSlices grouped by their Service (`${namespace}/${kubernetes.io/service-name}`). */
  readonly slicesByService: ReadonlyMap<string, readonly KubeEndpointSlice[]>;
  /** This node's Node object, when known. */
  readonly node?: KubeNode;
  /** Which resources finished their initial list. */
  readonly synced: { readonly services: boolean; readonly endpointslices: boolean; readonly nodes: boolean };
}
