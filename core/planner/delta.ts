import type { NodePortAddresses, PerFamily, Snapshot, SnapshotDelta } from '../model/snapshot.js';
import { changedKeysBetween } from '../tracker/versioned-map.js';

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function samePerFamilyList(a: PerFamily<readonly string[]>, b: PerFamily<readonly string[]>): boolean {
  return sameList(a.IPv4, b.IPv4) && sameList(a.IPv6, b.IPv6);
}

function sameNodePortAddresses(a: NodePortAddresses, b: NodePortAddresses): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind === 'all' || sameList(a.cidrs, (b as { cidrs: readonly string[] }).cidrs);
}

/**
 * True when a node-level field differs: nodeName, nodeIPs, families, clusterCIDRs,
 * localInterface, masqueradeAll or nodePortAddresses. Any of these touches rules shared by every Service, so
 * the backend must program everything.
 */
export function nodeLevelChanged(prev: Snapshot, next: Snapshot): boolean {
  return (
    prev.nodeName !== next.nodeName ||
    prev.masqueradeAll !== next.masqueradeAll ||
    !sameList(prev.families, next.families) ||
    !samePerFamilyList(prev.nodeIPs, next.nodeIPs) ||
    !samePerFamilyList(prev.clusterCIDRs, next.clusterCIDRs) ||
    prev.localInterface?.name !== next.localInterface?.name ||
    prev.localInterface?.prefix !== next.localInterface?.prefix ||
    !sameNodePortAddresses(prev.nodePortAddresses.IPv4, next.nodePortAddresses.IPv4) ||
    !sameNodePortAddresses(prev.nodePortAddresses.IPv6, next.nodePortAddresses.IPv6)
  );
}

/**
 * What changed from `prev` (the last snapshot whose sync succeeded) to `next`.
 *
 * Full when there is no `prev`, when `forceFull` (after a failed sync, periodic resync), or
 * when a node-level field changed; `changed` then lists every id of `next`. Otherwise
 * `changed` holds the ids whose ServicePortPlan is not the very same object as before (the
 * Planner reuses objects for unchanged ports, so identity is the test). `removed` always
 * lists the ids of `prev` that are gone from `next`.
 *
 * When both servicePorts maps are versions of one Planner's map (VersionedMap), only the ids
 * changed between the two versions are compared: O(changed) instead of O(Service ports), with
 * the same result.
 */
export function computeDelta(prev: Snapshot | undefined, next: Snapshot, forceFull: boolean): SnapshotDelta {
  const removed = new Set<string>();
  const full = prev === undefined || forceFull || nodeLevelChanged(prev, next);
  const candidates = prev && changedKeysBetween(prev.servicePorts, next.servicePorts);
  if (prev) {
    if (candidates) {
      for (const id of candidates)
        if (!next.servicePorts.has(id) && prev.servicePorts.has(id)) removed.add(id);
    } else {
      for (const id of prev.servicePorts.keys()) if (!next.servicePorts.has(id)) removed.add(id);
    }
  }
  if (full) return { full: true, changed: new Set(next.servicePorts.keys()), removed };
  const changed = new Set<string>();
  if (candidates) {
    for (const id of candidates) {
      const plan = next.servicePorts.get(id);
      if (plan !== undefined && prev.servicePorts.get(id) !== plan) changed.add(id);
    }
  } else {
    for (const [id, plan] of next.servicePorts) if (prev.servicePorts.get(id) !== plan) changed.add(id);
  }
  return { full: false, changed, removed };
}
