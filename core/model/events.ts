import type { KubeEndpointSlice, KubeNode, KubeService } from './kube.js';

/** The three kinds of object a source delivers. */
export type ResourceKind = 'services' | 'endpointslices' | 'nodes';

export interface ResourceObjects {
  services: KubeService;
  endpointslices: KubeEndpointSlice;
  nodes: KubeNode;
}

/**
 * One event from a source. Sources deliver objects as the API (or a file) has them; they never
 * validate Service semantics (the planner does).
 */
export type SourceEvent =
  | {
      readonly type: 'upsert';
      readonly resource: ResourceKind;
      readonly object: KubeService | KubeEndpointSlice | KubeNode;
    }
  | {
      readonly type: 'delete';
      readonly resource: ResourceKind;
      readonly object: KubeService | KubeEndpointSlice | KubeNode;
    }
  /**
   * The complete current set of one resource: the initial list, a relist after 410 Gone, or a
   * file reload. Objects absent from it are deleted. The first `replace` of a resource marks its
   * initial list complete.
   */
  | {
      readonly type: 'replace';
      readonly resource: ResourceKind;
      readonly objects: readonly (KubeService | KubeEndpointSlice | KubeNode)[];
    }
  /** The source lost contact (API outage, file unreadable); state and rules are kept as they are. */
  | { readonly type: 'degraded'; readonly resource: ResourceKind; readonly reason: string }
  /** Contact is back after a `degraded`. */
  | { readonly type: 'recovered'; readonly resource: ResourceKind };

/** `${namespace}/${name}` for namespaced objects, `${name}` for Nodes. */
export function objectKey(meta: { namespace?: string; name?: string } | undefined): string | undefined {
  if (!meta?.name) return undefined;
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}
