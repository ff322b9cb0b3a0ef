import { inject, injectable } from 'tsyringe';
import type { ClusterState } from '../model/cluster-state.js';
import { objectKey, type ResourceKind, type SourceEvent } from '../model/events.js';
import {
  SERVICE_NAME_LABEL,
  type KubeEndpointSlice,
  type KubeNode,
  type KubeService,
} from '../model/kube.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import { TOKENS } from '../tokens.js';
import { deepEqual, deepEqualExcept } from './deep-equal.js';

/**
 * What one `apply` did. The counts feed kube-proxy's
 * `kubeproxy_sync_proxy_rules_service_changes_total` and `..._endpoint_changes_total`; unlike
 * kube-proxy (which counts every informer callback, no-ops included) they count only real
 * changes, so they say how much work the next sync has.
 */
export interface TrackerChange {
  /** state() differs from before the event (objects or `synced` flags): a sync is due. */
  readonly changed: boolean;
  /** Services added, meaningfully updated or deleted. */
  readonly services: number;
  /** EndpointSlices added, updated or deleted. */
  readonly endpointSlices: number;
  /** This node's Node appeared, changed (see nodesEquivalent) or disappeared. */
  readonly nodeChanged: boolean;
  /** This event completed a resource's initial list (its first `replace`). */
  readonly syncedChanged: boolean;
  /** Objects ignored as malformed: no name, or no namespace for Services and EndpointSlices. */
  readonly ignored: number;
}

const NO_CHANGE: TrackerChange = Object.freeze({
  changed: false,
  services: 0,
  endpointSlices: 0,
  nodeChanged: false,
  syncedChanged: false,
  ignored: 0,
});

/** metadata fields that never change what the proxy does. */
const BOOKKEEPING_META = new Set(['resourceVersion', 'managedFields']);
const METADATA = new Set(['metadata']);

/**
 * Services are equivalent when everything the planner reads is equal: name, namespace,
 * labels, spec and status.loadBalancer. resourceVersion, generation, managedFields,
 * annotations (kubectl's last-applied copy, topology annotations: hints in the slices decide),
 * status.conditions... are ignored.
 */
export function servicesEquivalent(a: KubeService, b: KubeService): boolean {
  return (
    a.metadata?.name === b.metadata?.name &&
    a.metadata?.namespace === b.metadata?.namespace &&
    deepEqual(a.metadata?.labels ?? {}, b.metadata?.labels ?? {}) &&
    deepEqual(a.spec, b.spec) &&
    deepEqual(a.status?.loadBalancer?.ingress ?? [], b.status?.loadBalancer?.ingress ?? [])
  );
}

/** EndpointSlices are equivalent when equal in everything but resourceVersion and managedFields. */
export function slicesEquivalent(a: KubeEndpointSlice, b: KubeEndpointSlice): boolean {
  return (
    deepEqualExcept(
      a as unknown as Record<string, unknown>,
      b as unknown as Record<string, unknown>,
      METADATA,
    ) &&
    deepEqualExcept(
      a.metadata as Record<string, unknown> | undefined,
      b.metadata as Record<string, unknown> | undefined,
      BOOKKEEPING_META,
    )
  );
}

/**
 * Nodes are equivalent when what anyone reads from them is equal: name, labels (zone),
 * status.addresses (node IPs) for the planner; metadata.deletionTimestamp and spec.taints
 * (ToBeDeletedByClusterAutoscaler) for the healthz server; spec.podCIDR(s) (kube-proxy's
 * node-CIDR local detection). Heartbeats (status.conditions), resourceVersion and the rest
 * are ignored.
 */
export function nodesEquivalent(a: KubeNode, b: KubeNode): boolean {
  return (
    a.metadata?.name === b.metadata?.name &&
    deepEqual(a.metadata?.labels ?? {}, b.metadata?.labels ?? {}) &&
    deepEqual(a.status?.addresses ?? [], b.status?.addresses ?? []) &&
    deepEqual(a.metadata?.deletionTimestamp, b.metadata?.deletionTimestamp) &&
    deepEqual(a.spec?.taints ?? [], b.spec?.taints ?? []) &&
    a.spec?.podCIDR === b.spec?.podCIDR &&
    deepEqual(a.spec?.podCIDRs ?? [], b.spec?.podCIDRs ?? [])
  );
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Key of a namespaced object, or undefined when name or namespace is missing. */
function namespacedKey(obj: unknown): string | undefined {
  if (!isObject(obj)) return undefined;
  const meta = obj.metadata as { name?: unknown; namespace?: unknown } | undefined;
  if (!isObject(meta) || typeof meta.name !== 'string' || typeof meta.namespace !== 'string')
    return undefined;
  if (!meta.name || !meta.namespace) return undefined;
  return objectKey({ name: meta.name, namespace: meta.namespace });
}

function nodeNameOf(obj: unknown): string | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const name = obj.metadata.name;
  return typeof name === 'string' && name ? name : undefined;
}

/** The Service an EndpointSlice belongs to: `${namespace}/${kubernetes.io/service-name}`. */
function sliceServiceKey(slice: KubeEndpointSlice): string | undefined {
  const ns = slice.metadata?.namespace;
  const labels = slice.metadata?.labels;
  const svc = isObject(labels) ? labels[SERVICE_NAME_LABEL] : undefined;
  return ns && typeof svc === 'string' && svc ? `${ns}/${svc}` : undefined;
}

interface MutableChange {
  services: number;
  endpointSlices: number;
  nodeChanged: boolean;
  syncedChanged: boolean;
  ignored: number;
}

/**
 * Holds the cluster objects the proxy cares about and turns source events into a
 * copy-on-write ClusterState.
 *
 * - No-op updates (resourceVersion bumps, status heartbeats...; see the `*Equivalent`
 *   functions) change nothing and keep the old object, so one real change costs one sync and
 *   the planner's per-Service memo keeps hitting.
 * - `state()` returns immutable maps: a new ClusterState (and new maps only for the kinds
 *   that changed) after a change, the very same object otherwise. Unchanged objects keep
 *   their identity, and `slicesByService` arrays are replaced only for Services whose slices
 *   changed.
 * - Only this node's Node is kept; other Nodes are not our business and are dropped silently.
 * - Objects without a name (or, for Services and EndpointSlices, a namespace) are ignored and
 *   counted in `TrackerChange.ignored`. EndpointSlices without the kubernetes.io/service-name
 *   label are kept in `endpointSlices` but belong to no Service.
 *
 * The constructor takes the node name, or the resolved ProxyConfig (its `hostname`), which is
 * what the container injects.
 */
@injectable()
export class Tracker {
  private readonly nodeName: string;
  private readonly services = new Map<string, KubeService>();
  private readonly slices = new Map<string, KubeEndpointSlice>();
  /** slice key -> the service key it is grouped under. */
  private readonly sliceOwner = new Map<string, string>();
  /** service key -> its slices by slice key. */
  private readonly members = new Map<string, Map<string, KubeEndpointSlice>>();
  private readonly groups = new Map<string, readonly KubeEndpointSlice[]>();
  private node: KubeNode | undefined;
  private synced = { services: false, endpointslices: false, nodes: false };

  private published: ClusterState | undefined;
  private dirtyServices = true;
  private dirtySlices = true;
  private dirtyGroups = true;
  private dirtyOther = true;

  constructor(@inject(TOKENS.Config) config: string | Pick<ProxyConfig, 'hostname'>) {
    this.nodeName = typeof config === 'string' ? config : config.hostname;
  }

  /** Applies one source event; see TrackerChange. */
  apply(event: SourceEvent): TrackerChange {
    const change: MutableChange = {
      services: 0,
      endpointSlices: 0,
      nodeChanged: false,
      syncedChanged: false,
      ignored: 0,
    };
    const touchedGroups = new Set<string>();
    switch (event.type) {
      case 'degraded':
      case 'recovered':
        return NO_CHANGE;
      case 'upsert':
        this.upsert(event.resource, event.object, change, touchedGroups);
        break;
      case 'delete':
        this.remove(event.resource, event.object, change, touchedGroups);
        break;
      case 'replace':
        this.replace(event.resource, event.objects, change, touchedGroups);
        break;
      default:
        return NO_CHANGE;
    }
    for (const svcKey of touchedGroups) this.rebuildGroup(svcKey);
    const changed =
      change.services > 0 || change.endpointSlices > 0 || change.nodeChanged || change.syncedChanged;
    if (!changed && change.ignored === 0) return NO_CHANGE;
    return { changed, ...change };
  }

  /** The current state; the same object until something changes. */
  state(): ClusterState {
    const prev = this.published;
    if (prev && !this.dirtyServices && !this.dirtySlices && !this.dirtyGroups && !this.dirtyOther)
      return prev;
    const next: ClusterState = {
      services: this.dirtyServices || !prev ? new Map(this.services) : prev.services,
      endpointSlices: this.dirtySlices || !prev ? new Map(this.slices) : prev.endpointSlices,
      slicesByService: this.dirtyGroups || !prev ? new Map(this.groups) : prev.slicesByService,
      ...(this.node ? { node: this.node } : {}),
      synced: { ...this.synced },
    };
    this.published = next;
    this.dirtyServices = this.dirtySlices = this.dirtyGroups = this.dirtyOther = false;
    return next;
  }

  private upsert(resource: ResourceKind, obj: unknown, change: MutableChange, touched: Set<string>): void {
    switch (resource) {
      case 'services':
        return this.upsertService(obj, change);
      case 'endpointslices':
        return this.upsertSlice(obj, change, touched);
      case 'nodes':
        return this.upsertNode(obj, change);
    }
  }

  private remove(resource: ResourceKind, obj: unknown, change: MutableChange, touched: Set<string>): void {
    if (resource === 'nodes') {
      const name = nodeNameOf(obj);
      if (name === undefined) change.ignored++;
      else if (name === this.nodeName) this.deleteNode(change);
      return;
    }
    const key = namespacedKey(obj);
    if (key === undefined) {
      change.ignored++;
      return;
    }
    if (resource === 'services') this.deleteService(key, change);
    else if (resource === 'endpointslices') this.deleteSlice(key, change, touched);
  }

  private replace(
    resource: ResourceKind,
    objects: readonly unknown[],
    change: MutableChange,
    touched: Set<string>,
  ): void {
    const list = Array.isArray(objects) ? objects : [];
    if (resource === 'nodes') {
      const ours = list.filter((o) => {
        const name = nodeNameOf(o);
        if (name === undefined) change.ignored++;
        return name === this.nodeName;
      });
      if (ours.length > 0) this.upsertNode(ours[ours.length - 1], change);
      else this.deleteNode(change);
    } else {
      const present = new Set<string>();
      for (const obj of list) {
        const key = namespacedKey(obj);
        if (key === undefined) {
          change.ignored++;
          continue;
        }
        present.add(key);
        if (resource === 'services') this.upsertService(obj, change);
        else this.upsertSlice(obj, change, touched);
      }
      const existing = resource === 'services' ? this.services : this.slices;
      for (const key of [...existing.keys()]) {
        if (present.has(key)) continue;
        if (resource === 'services') this.deleteService(key, change);
        else this.deleteSlice(key, change, touched);
      }
    }
    if (!this.synced[resource]) {
      this.synced = { ...this.synced, [resource]: true };
      change.syncedChanged = true;
      this.dirtyOther = true;
    }
  }

  private upsertService(obj: unknown, change: MutableChange): void {
    const key = namespacedKey(obj);
    if (key === undefined) {
      change.ignored++;
      return;
    }
    const svc = obj as KubeService;
    const old = this.services.get(key);
    if (old === svc || (old && servicesEquivalent(old, svc))) return;
    this.services.set(key, svc);
    this.dirtyServices = true;
    change.services++;
  }

  private deleteService(key: string, change: MutableChange): void {
    if (!this.services.delete(key)) return;
    this.dirtyServices = true;
    change.services++;
  }

  private upsertSlice(obj: unknown, change: MutableChange, touched: Set<string>): void {
    const key = namespacedKey(obj);
    if (key === undefined) {
      change.ignored++;
      return;
    }
    const slice = obj as KubeEndpointSlice;
    const old = this.slices.get(key);
    if (old === slice || (old && slicesEquivalent(old, slice))) return;
    this.slices.set(key, slice);
    this.dirtySlices = true;
    change.endpointSlices++;
    const oldOwner = this.sliceOwner.get(key);
    const owner = sliceServiceKey(slice);
    if (oldOwner !== undefined && oldOwner !== owner) {
      this.members.get(oldOwner)?.delete(key);
      this.sliceOwner.delete(key);
      touched.add(oldOwner);
    }
    if (owner !== undefined) {
      let group = this.members.get(owner);
      if (!group) {
        group = new Map();
        this.members.set(owner, group);
      }
      group.set(key, slice);
      this.sliceOwner.set(key, owner);
      touched.add(owner);
    }
  }

  private deleteSlice(key: string, change: MutableChange, touched: Set<string>): void {
    if (!this.slices.delete(key)) return;
    this.dirtySlices = true;
    change.endpointSlices++;
    const owner = this.sliceOwner.get(key);
    if (owner !== undefined) {
      this.members.get(owner)?.delete(key);
      this.sliceOwner.delete(key);
      touched.add(owner);
    }
  }

  /** Replaces one Service's slice array (sorted by slice key, for determinism). */
  private rebuildGroup(svcKey: string): void {
    const group = this.members.get(svcKey);
    if (!group || group.size === 0) {
      this.members.delete(svcKey);
      if (this.groups.delete(svcKey)) this.dirtyGroups = true;
      return;
    }
    const keys = [...group.keys()].sort();
    const next = keys.map((k) => group.get(k) as KubeEndpointSlice);
    const prev = this.groups.get(svcKey);
    if (prev && prev.length === next.length && prev.every((s, i) => s === next[i])) return;
    this.groups.set(svcKey, Object.freeze(next));
    this.dirtyGroups = true;
  }

  private upsertNode(obj: unknown, change: MutableChange): void {
    const name = nodeNameOf(obj);
    if (name === undefined) {
      change.ignored++;
      return;
    }
    if (name !== this.nodeName) return;
    const node = obj as KubeNode;
    if (this.node === node || (this.node && nodesEquivalent(this.node, node))) return;
    this.node = node;
    this.dirtyOther = true;
    change.nodeChanged = true;
  }

  private deleteNode(change: MutableChange): void {
    if (!this.node) return;
    this.node = undefined;
    this.dirtyOther = true;
    change.nodeChanged = true;
  }
}
