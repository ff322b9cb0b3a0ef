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
import { changedKeysBetween, VersionedMapBuilder } from './versioned-map.js';

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
 * Pending edits of Service groups within one apply: service key -> [slice key, slice or
 * undefined (removed)] in order (a later edit of a slice key wins).
 */
type GroupEdits = Map<string, [string, KubeEndpointSlice | undefined][]>;

function editGroup(
  edits: GroupEdits,
  svcKey: string,
  sliceKey: string,
  slice: KubeEndpointSlice | undefined,
): void {
  const group = edits.get(svcKey);
  if (group) group.push([sliceKey, slice]);
  else edits.set(svcKey, [[sliceKey, slice]]);
}

const NO_GROUP: readonly KubeEndpointSlice[] = Object.freeze([]);

/**
 * The Services whose object or slice group may differ between two states of one Tracker (see
 * ClusterState.changedServicesSince).
 */
function changedServiceKeys(state: ClusterState, earlier: ClusterState): ReadonlySet<string> | undefined {
  const services = changedKeysBetween(earlier.services, state.services);
  if (!services) return undefined;
  const groups = changedKeysBetween(earlier.slicesByService, state.slicesByService);
  if (!groups) return undefined;
  if (groups.size === 0) return services;
  if (services.size === 0) return groups;
  const out = new Set(services);
  for (const k of groups) out.add(k);
  return out;
}

/**
 * Holds the cluster objects the proxy cares about and turns source events into immutable
 * ClusterStates that share structure.
 *
 * - No-op updates (resourceVersion bumps, status heartbeats...; see the `*Equivalent`
 *   functions) change nothing and keep the old object, so one real change costs one sync and
 *   the planner's per-Service memo keeps hitting.
 * - `state()` returns immutable maps: a new ClusterState (and new map versions only for the
 *   kinds that changed) after a change, the very same object otherwise. Map versions are
 *   VersionedMaps (versioned-map.ts): publishing one costs about the size of the change, and a
 *   state handed out earlier never changes. Unchanged objects keep their identity, and
 *   `slicesByService` arrays are replaced only for Services whose slices changed.
 * - Every state says which Services changed since an earlier state of this Tracker
 *   (`changedServicesSince`), so the planner re-plans only those.
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
  private readonly services = new VersionedMapBuilder<string, KubeService>();
  private readonly slices = new VersionedMapBuilder<string, KubeEndpointSlice>();
  /** service key -> its slices, sorted by slice key. */
  private readonly groups = new VersionedMapBuilder<string, readonly KubeEndpointSlice[]>();
  private node: KubeNode | undefined;
  private synced = { services: false, endpointslices: false, nodes: false };

  private published: ClusterState | undefined;
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
    const edits: GroupEdits = new Map();
    switch (event.type) {
      case 'degraded':
      case 'recovered':
        return NO_CHANGE;
      case 'upsert':
        this.upsert(event.resource, event.object, change, edits);
        break;
      case 'delete':
        this.remove(event.resource, event.object, change, edits);
        break;
      case 'replace':
        this.replace(event.resource, event.objects, change, edits);
        break;
      default:
        return NO_CHANGE;
    }
    for (const [svcKey, groupEdits] of edits) this.rebuildGroup(svcKey, groupEdits);
    const changed =
      change.services > 0 || change.endpointSlices > 0 || change.nodeChanged || change.syncedChanged;
    if (!changed && change.ignored === 0) return NO_CHANGE;
    return { changed, ...change };
  }

  /** The current state; the same object until something changes. */
  state(): ClusterState {
    const prev = this.published;
    const services = this.services.current();
    const endpointSlices = this.slices.current();
    const slicesByService = this.groups.current();
    if (
      prev &&
      !this.dirtyOther &&
      prev.services === services &&
      prev.endpointSlices === endpointSlices &&
      prev.slicesByService === slicesByService
    )
      return prev;
    const next: ClusterState = {
      services,
      endpointSlices,
      slicesByService,
      ...(this.node ? { node: this.node } : {}),
      synced: { ...this.synced },
      changedServicesSince: (earlier) => changedServiceKeys(next, earlier),
    };
    this.published = next;
    this.dirtyOther = false;
    return next;
  }

  private upsert(resource: ResourceKind, obj: unknown, change: MutableChange, edits: GroupEdits): void {
    switch (resource) {
      case 'services':
        return this.upsertService(obj, change);
      case 'endpointslices':
        return this.upsertSlice(obj, change, edits);
      case 'nodes':
        return this.upsertNode(obj, change);
    }
  }

  private remove(resource: ResourceKind, obj: unknown, change: MutableChange, edits: GroupEdits): void {
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
    else if (resource === 'endpointslices') this.deleteSlice(key, change, edits);
  }

  private replace(
    resource: ResourceKind,
    objects: readonly unknown[],
    change: MutableChange,
    edits: GroupEdits,
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
        if (resource === 'services') this.upsertService(obj, change, key);
        else this.upsertSlice(obj, change, edits, key);
      }
      const existing = resource === 'services' ? this.services : this.slices;
      // Every listed key was just upserted, so only a larger map can hold keys to delete.
      if (existing.size > present.size) {
        for (const key of existing.keys()) {
          if (present.has(key)) continue;
          if (resource === 'services') this.deleteService(key, change);
          else this.deleteSlice(key, change, edits);
        }
      }
    }
    if (!this.synced[resource]) {
      this.synced = { ...this.synced, [resource]: true };
      change.syncedChanged = true;
      this.dirtyOther = true;
    }
  }

  private upsertService(obj: unknown, change: MutableChange, knownKey?: string): void {
    const key = knownKey ?? namespacedKey(obj);
    if (key === undefined) {
      change.ignored++;
      return;
    }
    const svc = obj as KubeService;
    const old = this.services.get(key);
    if (old === svc || (old && servicesEquivalent(old, svc))) return;
    this.services.set(key, svc);
    change.services++;
  }

  private deleteService(key: string, change: MutableChange): void {
    if (!this.services.delete(key)) return;
    change.services++;
  }

  private upsertSlice(obj: unknown, change: MutableChange, edits: GroupEdits, knownKey?: string): void {
    const key = knownKey ?? namespacedKey(obj);
    if (key === undefined) {
      change.ignored++;
      return;
    }
    const slice = obj as KubeEndpointSlice;
    const old = this.slices.get(key);
    if (old === slice || (old && slicesEquivalent(old, slice))) return;
    this.slices.set(key, slice);
    change.endpointSlices++;
    const oldOwner = old ? sliceServiceKey(old) : undefined;
    const owner = sliceServiceKey(slice);
    if (oldOwner !== undefined && oldOwner !== owner) editGroup(edits, oldOwner, key, undefined);
    if (owner !== undefined) editGroup(edits, owner, key, slice);
  }

  private deleteSlice(key: string, change: MutableChange, edits: GroupEdits): void {
    const old = this.slices.get(key);
    if (!old || !this.slices.delete(key)) return;
    change.endpointSlices++;
    const owner = sliceServiceKey(old);
    if (owner !== undefined) editGroup(edits, owner, key, undefined);
  }

  /** Applies one apply's edits to a Service's slice array (sorted by slice key, for determinism). */
  private rebuildGroup(svcKey: string, groupEdits: readonly [string, KubeEndpointSlice | undefined][]): void {
    const prev = this.groups.get(svcKey) ?? NO_GROUP;
    if (prev.length === 0 && groupEdits.length === 1) {
      // A new group of one slice (every Service at the initial list).
      const slice = (groupEdits[0] as [string, KubeEndpointSlice | undefined])[1];
      if (slice !== undefined) this.groups.set(svcKey, Object.freeze([slice]));
      return;
    }
    const edited = new Map(groupEdits); // the last edit of each slice key
    const entries: [string, KubeEndpointSlice][] = [];
    for (const s of prev) {
      const k = namespacedKey(s) as string;
      if (!edited.has(k)) entries.push([k, s]);
    }
    for (const [k, s] of edited) if (s !== undefined) entries.push([k, s]);
    if (entries.length === 0) {
      this.groups.delete(svcKey);
      return;
    }
    if (entries.length > 1) entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (prev.length === entries.length && prev.every((s, i) => s === entries[i]?.[1])) return;
    this.groups.set(svcKey, Object.freeze(entries.map((e) => e[1])));
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
