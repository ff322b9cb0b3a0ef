/**
 * What the pipeline needs from the source, the tracker and the planner, as interfaces, so the
 * pipeline does not depend on their classes (core/source, core/tracker, core/planner). The real
 * Source, Tracker and Planner classes satisfy these structurally; the container binds them to
 * TOKENS.Source / Tracker / Planner.
 */
import type { Observable } from 'rxjs';
import type { ClusterState } from '../model/cluster-state.js';
import type { SourceEvent } from '../model/events.js';
import type { DetectLocal, ProxyConfig } from '../model/proxy-config.js';
import type { Snapshot, SnapshotDelta } from '../model/snapshot.js';

export interface SourcePort {
  /** One stream of events; each `replace` of a resource marks its initial list complete. */
  events$(): Observable<SourceEvent>;
  stop(): Promise<void> | void;
}

export interface ApplyResult {
  /** The event changed something that needs a sync (no-ops, status-only updates: false). */
  readonly changed: boolean;
  /** How many Services this event changed (added, updated or deleted). */
  readonly services: number;
  /** How many EndpointSlices this event changed. */
  readonly endpointSlices: number;
  /** This node's Node object changed. */
  readonly nodeChanged: boolean;
}

export interface TrackerPort {
  apply(event: SourceEvent): ApplyResult;
  state(): ClusterState;
}

/** Something the planner skipped (a malformed object, or a part of one). */
export interface PlanSkip {
  readonly kind: string;
  readonly key: string;
  readonly field: string;
  readonly reason: string;
}

export interface PlanResult {
  readonly snapshot: Snapshot;
  /** Every skip of this plan (stable while the objects are unchanged). */
  readonly skips: readonly PlanSkip[];
  /**
   * The skips not reported before for this version of their object, already logged by the
   * planner. When present the pipeline only counts these; when absent it de-duplicates `skips`
   * itself and logs them.
   */
  readonly newSkips?: readonly PlanSkip[];
}

/** The planner's configuration, as core/planner's PlannerConfig (derived from ProxyConfig). */
export interface PlannerConfigPort {
  readonly nodeName: string;
  readonly clusterCIDRs: readonly string[];
  readonly detectLocal?: DetectLocal;
  readonly masqueradeAll: boolean;
  readonly nodePortAddresses: readonly string[];
}

export interface PlannerPort {
  plan(state: ClusterState, config: PlannerConfigPort): PlanResult;
}

/** The delta function (core/planner/delta.ts computeDelta by default). */
export type ComputeDeltaFn = (
  prev: Snapshot | undefined,
  next: Snapshot,
  forceFull: boolean,
) => SnapshotDelta;

/** The planner config a resolved ProxyConfig implies. */
export function plannerConfigOf(config: ProxyConfig): PlannerConfigPort {
  return {
    nodeName: config.hostname,
    clusterCIDRs: config.clusterCIDRs,
    detectLocal: config.detectLocal,
    masqueradeAll: config.masqueradeAll,
    nodePortAddresses: config.nodePortAddresses,
  };
}
