import type { KubeEndpointSlice, KubeNode, KubeService } from './kube.js';

/**
 * What the tracker hands the planner: the current objects, keyed by `${namespace}/${name}`.
 * Immutable: a change yields a new ClusterState with new map objects for the kinds that changed
 * (the Tracker's share structure with their predecessors; a state handed out never changes),
 * and unchanged objects keep their identity, so the planner can memoize per Service by
 * reference. Map iteration order is unspecified.
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
  /**
   * Optional (the Tracker sets it): the keys (`${namespace}/${name}`) of the Services whose
   * `services` entry or `slicesByService` entry may differ between `earlier` and this state,
   * a superset of those that do; or undefined when the producer cannot tell (`earlier` did not
   * come from the same producer, or is too old). `node` and `synced` are not covered. A
   * consumer that gets undefined, or a state without this function, must look at everything.
   */
  readonly changedServicesSince?: (earlier: ClusterState) => ReadonlySet<string> | undefined;
}
