/**
 * The planner: ClusterState + PlannerConfig -> Snapshot, with kube-proxy's Service semantics
 * (pkg/proxy servicechangetracker.go, serviceport.go, endpointslicecache.go, topology.go,
 * nftables/proxier.go). Where this deliberately differs from kube-proxy, following the issue:
 * - EndpointSlice `serving` nil reads as the endpoint's `ready` value (kube-proxy: true);
 * - `--nodeport-addresses` CIDRs of one family only: the other family gets no NodePorts
 *   (kube-proxy: all its addresses); see plan-node.ts;
 * - a slice port without a name is the unnamed port '' (kube-proxy ignores it).
 * Choices where kube-proxy is arbitrary or silent:
 * - duplicate endpoints (same ip:port in two slices): the first in slice-key order, unless a
 *   later copy is local (kube-proxy: first in Go map order unless a later one is local);
 * - HealthCheckPlan.localEndpoints counts the primary family's local ready IPs (kube-proxy
 *   runs a server per family, each counting its own);
 * - malformed values are skipped at the smallest grain and reported as PlanSkips (kube-proxy
 *   mostly relies on API validation; see plan-service.ts and endpoints.ts for each case).
 */
import { inject, injectable } from 'tsyringe';
import type { Logger } from '../log.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { KubeEndpointSlice, KubeService } from '../model/kube.js';
import type { DetectLocal, ProxyConfig } from '../model/proxy-config.js';
import {
  IP_FAMILIES,
  type HealthCheckPlan,
  type IPFamily,
  type ServicePortPlan,
  type Snapshot,
} from '../model/snapshot.js';
import { TOKENS } from '../tokens.js';
import { deepEqual } from '../tracker/deep-equal.js';
import { VersionedMapBuilder } from '../tracker/versioned-map.js';
import { localTraffic, nodeFacts, resolveNodePortAddresses, splitCIDRs } from './plan-node.js';
import { planService, type ServicePlanContext, type ServicePlanOutput } from './plan-service.js';
import { SkipCollector, skipSignature, type PlanSkip } from './skips.js';

export type { PlanSkip } from './skips.js';
export { computeDelta, nodeLevelChanged } from './delta.js';

/** The planner's view of the configuration. */
export interface PlannerConfig {
  /** This node's name (`--hostname-override` or the host name): decides which endpoints are local. */
  readonly nodeName: string;
  /** `--cluster-cidr` (either family): pod traffic short-circuits externalTrafficPolicy=Local. */
  readonly clusterCIDRs: readonly string[];
  /** `--detect-local-mode` and its interface settings; default ClusterCIDR (`clusterCIDRs`). */
  readonly detectLocal?: DetectLocal;
  readonly masqueradeAll: boolean;
  /** `--nodeport-addresses`: [] or ['primary'] (default), ['all'], or CIDRs of either family. */
  readonly nodePortAddresses: readonly string[];
  /** The families this node programs; default both. */
  readonly families?: readonly IPFamily[];
}

/** The PlannerConfig a resolved ProxyConfig implies (both families). */
export function plannerConfigFrom(config: ProxyConfig, families?: readonly IPFamily[]): PlannerConfig {
  return {
    nodeName: config.hostname,
    clusterCIDRs: config.clusterCIDRs,
    detectLocal: config.detectLocal,
    masqueradeAll: config.masqueradeAll,
    nodePortAddresses: config.nodePortAddresses,
    ...(families ? { families } : {}),
  };
}

export interface PlanResult {
  readonly snapshot: Snapshot;
  /**
   * Every skip of this plan, each once (exact duplicates merged). Stable from plan to plan
   * while the objects are unchanged: use it for a gauge of currently malformed input.
   */
  readonly skips: readonly PlanSkip[];
  /**
   * The skips of `skips` this Planner had not reported before for the same version of the
   * object (a changed object is reported again). These were just logged; add their count to
   * a counter.
   */
  readonly newSkips: readonly PlanSkip[];
}

interface MemoEntry {
  service: KubeService;
  slices: readonly KubeEndpointSlice[];
  output: ServicePlanOutput;
}

interface Keyed<T> {
  readonly key: string;
  readonly value: T;
}

interface ReportedEntry {
  readonly object: unknown;
  readonly seen: Set<string>;
}

const NO_SLICES: readonly KubeEndpointSlice[] = Object.freeze([]);

/**
 * Above this share of changed Services (and 64) the planner walks them all: the same result, a
 * freshly ordered servicePorts map, and no long change log to replay.
 */
const INCREMENTAL_MAX_SHARE = 0.25;

/**
 * Whether no ServicePort id of this Service can equal another Service's: every id is
 * `${key}:` followed by text without ':' (then the part before the first ':' names the
 * Service). Only names the API refuses (a ':' in a namespace, name or port name) fail this.
 */
function idsSafe(key: string, output: ServicePlanOutput): boolean {
  for (const p of output.ports) {
    const id = p.id;
    if (id.indexOf(':') !== key.length || !id.startsWith(key) || id.indexOf(':', key.length + 1) >= 0)
      return false;
  }
  return true;
}

function byKey<T>(a: Keyed<T>, b: Keyed<T>): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Turns a ClusterState into a Snapshot (pure functions in plan-service.ts, endpoints.ts,
 * plan-node.ts) and remembers just enough to make that cheap and identity-stable:
 *
 * - Memo per Service: when the Service object, its slices array (the tracker keeps both
 *   identities while unchanged) and the node context (node name, zone, families) are the same
 *   as last time, the previous ServicePortPlan objects are returned as they are. When a
 *   Service is re-planned (it changed, or the context did), every port plan that comes out
 *   structurally equal to the previous one is replaced by the previous object, so a change
 *   that does not affect a port (metadata only, a zone change without hints) yields no delta
 *   for it. The other node-level inputs (clusterCIDRs, masqueradeAll, nodePortAddresses,
 *   node IPs) do not enter ServicePortPlans; computeDelta makes their changes full syncs,
 *   and otherwise compares plans by identity.
 * - Incremental plans: when the state says which Services changed since the state this
 *   Planner planned last (ClusterState.changedServicesSince, which the Tracker provides) and
 *   the node context is the same, only those Services are looked at, and the snapshot's
 *   servicePorts is a new version of the previous one (VersionedMap: structure shared, the
 *   previous snapshot unchanged), so a one-endpoint change costs O(changed), not O(Services).
 *   Anything else (no change information, another context, a ServicePort id that could
 *   collide, many changes) walks every Service. Both give the same snapshot, up to the
 *   iteration order of servicePorts (unspecified).
 * - Skips: each distinct skip is logged once (warn) per version of the object that holds it;
 *   see PlanResult.newSkips.
 *
 * Not safe for concurrent use, which the pipeline never does (syncs never overlap).
 */
@injectable()
export class Planner {
  private generation = 0;
  /** Per Service key, valid for `memoContext`. */
  private memo = new Map<string, MemoEntry>();
  private memoContext: string | undefined;
  /** The state the memo and the fields below were computed from. */
  private lastState: ClusterState | undefined;
  /** Every Service's ports (collisions resolved), as published in snapshots. */
  private ports = new VersionedMapBuilder<string, ServicePortPlan>();
  /** Services whose ServicePort ids could collide with another's (see idsSafe). */
  private unsafeServices = 0;
  /** Health checks by Service key, sorted; `healthChecks` is their values. */
  private healthEntries: Keyed<HealthCheckPlan>[] = [];
  private healthChecks: readonly HealthCheckPlan[] = [];
  /** Non-empty skip lists by Service key, sorted; `serviceSkips` is them flattened + collisions. */
  private skipEntries: Keyed<readonly PlanSkip[]>[] = [];
  private serviceSkips: readonly PlanSkip[] = [];
  private reported = new Map<string, ReportedEntry>();
  private readonly warnedConfig = new Set<string>();
  private readonly logger: Logger | undefined;

  constructor(@inject(TOKENS.Logger) logger?: Logger) {
    this.logger = logger?.child({ component: 'planner' });
  }

  plan(state: ClusterState, config: PlannerConfig): PlanResult {
    this.generation++;
    const nodeSkips = new SkipCollector();
    const facts = nodeFacts(state.node, config.nodeName, nodeSkips);
    const families = IP_FAMILIES.filter((f) => (config.families ?? IP_FAMILIES).includes(f));
    const ctx: ServicePlanContext = {
      nodeName: config.nodeName,
      ...(facts.zone !== undefined ? { zone: facts.zone } : {}),
      families,
    };
    const ctxKey = JSON.stringify([ctx.nodeName, ctx.zone ?? '', families]);

    const changed = this.changedSinceLastPlan(state, ctxKey);
    // Should planning ever throw, the next plan walks everything from a clean slate.
    this.lastState = undefined;
    if (!changed || !this.planChanged(state, changed, ctx)) this.planAll(state, ctx, ctxKey);
    this.lastState = state;

    const local = localTraffic(config, facts.podCIDRs);
    const { cidrs: clusterCIDRs, invalid: badClusterCIDRs } = splitCIDRs(local.cidrs);
    const { addresses: nodePortAddresses, invalid: badNodePortAddresses } = resolveNodePortAddresses(
      config.nodePortAddresses,
      facts.nodeIPs,
    );
    this.warnConfig('clusterCIDRs', badClusterCIDRs);
    this.warnConfig('detectLocal', local.invalidInterface === undefined ? [] : [local.invalidInterface]);
    this.warnConfig('nodePortAddresses', badNodePortAddresses);

    const snapshot: Snapshot = {
      generation: this.generation,
      nodeName: config.nodeName,
      nodeLabels: facts.labels,
      ...(facts.zone !== undefined ? { zone: facts.zone } : {}),
      nodeIPs: facts.nodeIPs,
      families,
      clusterCIDRs,
      ...(local.localInterface ? { localInterface: local.localInterface } : {}),
      masqueradeAll: config.masqueradeAll,
      nodePortAddresses,
      servicePorts: this.ports.current(),
      healthChecks: this.healthChecks,
    };
    const ownSkips = nodeSkips.list();
    const skips = ownSkips.length ? [...ownSkips, ...this.serviceSkips] : [...this.serviceSkips];
    const newSkips = this.report(state, skips);
    return { snapshot, skips, newSkips };
  }

  /** The Services changed since the last plan, when an incremental plan is possible. */
  private changedSinceLastPlan(state: ClusterState, ctxKey: string): ReadonlySet<string> | undefined {
    const last = this.lastState;
    if (!last || this.memoContext !== ctxKey || this.unsafeServices > 0 || !state.changedServicesSince)
      return undefined;
    const changed = state.changedServicesSince(last);
    if (
      !changed ||
      changed.size > Math.max(64, INCREMENTAL_MAX_SHARE * Math.max(state.services.size, this.memo.size))
    )
      return undefined;
    return changed;
  }

  /**
   * Re-plans the `changed` Services only. False (nothing changed) when a new output's ids could
   * collide: the caller walks everything instead.
   */
  private planChanged(state: ClusterState, changed: ReadonlySet<string>, ctx: ServicePlanContext): boolean {
    const outputs: [string, KubeService, readonly KubeEndpointSlice[], ServicePlanOutput][] = [];
    const gone: string[] = [];
    for (const key of changed) {
      const prev = this.memo.get(key);
      const service = state.services.get(key);
      if (!service) {
        if (prev) gone.push(key);
        continue;
      }
      const slices = state.slicesByService.get(key) ?? NO_SLICES;
      if (prev && prev.service === service && prev.slices === slices) continue;
      let output = planService(service, slices, ctx);
      if (prev) output = reuseEqual(prev.output, output);
      if (!idsSafe(key, output)) return false;
      outputs.push([key, service, slices, output]);
    }

    let health = false;
    let skips = false;
    const ports = this.ports;
    for (const key of gone) {
      const prev = this.memo.get(key) as MemoEntry;
      for (const p of prev.output.ports) ports.delete(p.id);
      if (prev.output.healthCheck) health = true;
      if (prev.output.skips.length) skips = true;
      this.memo.delete(key);
    }
    for (const [key, service, slices, output] of outputs) {
      const prev = this.memo.get(key);
      if (prev) {
        if (prev.output.ports.length) {
          const ids = new Set(output.ports.map((p) => p.id));
          for (const p of prev.output.ports) if (!ids.has(p.id)) ports.delete(p.id);
        }
        if (prev.output.healthCheck !== output.healthCheck) health = true;
        if (prev.output.skips.length) skips = true;
        prev.service = service;
        prev.slices = slices;
        prev.output = output;
      } else {
        if (output.healthCheck) health = true;
        this.memo.set(key, { service, slices, output });
      }
      if (output.skips.length) skips = true;
      for (const p of output.ports) ports.set(p.id, p);
    }

    if (!health && !skips) return true;
    const replanned = new Set(gone);
    for (const [key] of outputs) replanned.add(key);
    if (health) {
      const entries = this.healthEntries.filter((e) => !replanned.has(e.key));
      for (const [key, , , output] of outputs)
        if (output.healthCheck) entries.push({ key, value: output.healthCheck });
      entries.sort(byKey);
      this.healthEntries = entries;
      this.healthChecks = entries.map((e) => e.value);
    }
    if (skips) {
      const entries = this.skipEntries.filter((e) => !replanned.has(e.key));
      for (const [key, , , output] of outputs)
        if (output.skips.length) entries.push({ key, value: output.skips });
      entries.sort(byKey);
      this.skipEntries = entries;
      // No collisions: every Service's ids are safe (checked before planning incrementally).
      this.serviceSkips = entries.flatMap((e) => e.value);
    }
    return true;
  }

  /** Plans every Service (reusing memo entries that are still valid). */
  private planAll(state: ClusterState, ctx: ServicePlanContext, ctxKey: string): void {
    const reuse = this.memoContext === ctxKey;
    this.memoContext = undefined; // until the walk is complete
    const nextMemo = new Map<string, MemoEntry>();
    const servicePorts = new Map<string, ServicePortPlan>();
    const healthEntries: Keyed<HealthCheckPlan>[] = [];
    const skipEntries: Keyed<readonly PlanSkip[]>[] = [];
    const collisions = new SkipCollector();
    let unsafe = 0;
    const keys = [...state.services.keys()].sort();
    for (const key of keys) {
      const service = state.services.get(key) as KubeService;
      const slices = state.slicesByService.get(key) ?? NO_SLICES;
      let entry = this.memo.get(key);
      if (!entry || !reuse || entry.service !== service || entry.slices !== slices) {
        let output = planService(service, slices, ctx);
        if (entry) {
          output = reuseEqual(entry.output, output);
          entry.service = service;
          entry.slices = slices;
          entry.output = output;
        } else {
          entry = { service, slices, output };
        }
      }
      nextMemo.set(key, entry);
      const output = entry.output;
      if (!idsSafe(key, output)) unsafe++;
      for (const p of output.ports) {
        // Only names the API would refuse (a ':' in a Service or port name) can collide.
        if (servicePorts.has(p.id)) {
          collisions.add(
            'Service',
            key,
            'metadata.name',
            `ServicePort id ${p.id} already taken; port ignored`,
          );
          continue;
        }
        servicePorts.set(p.id, p);
      }
      if (output.healthCheck) healthEntries.push({ key, value: output.healthCheck });
      if (output.skips.length) skipEntries.push({ key, value: output.skips });
    }
    this.memo = nextMemo;
    this.memoContext = ctxKey;
    this.unsafeServices = unsafe;
    this.ports = new VersionedMapBuilder(servicePorts);
    this.healthEntries = healthEntries;
    this.healthChecks = healthEntries.map((e) => e.value);
    this.skipEntries = skipEntries;
    this.serviceSkips = [...skipEntries.flatMap((e) => e.value), ...collisions.list()];
  }

  /** Finds the skips not reported for this version of their object; logs them. */
  private report(state: ClusterState, skips: readonly PlanSkip[]): PlanSkip[] {
    const fresh: PlanSkip[] = [];
    const next = new Map<string, ReportedEntry>();
    for (const skip of skips) {
      const objectId = `${skip.kind}\u0000${skip.key}`;
      const object =
        skip.kind === 'Service'
          ? state.services.get(skip.key)
          : skip.kind === 'EndpointSlice'
            ? state.endpointSlices.get(skip.key)
            : state.node;
      let entry = next.get(objectId);
      if (!entry) {
        const old = this.reported.get(objectId);
        entry = old && old.object === object ? old : { object, seen: new Set() };
        next.set(objectId, entry);
      }
      const sig = skipSignature(skip);
      if (entry.seen.has(sig)) continue;
      entry.seen.add(sig);
      fresh.push(skip);
      this.logger?.warn(
        { kind: skip.kind, object: skip.key, field: skip.field, reason: skip.reason },
        'skipping malformed input',
      );
    }
    this.reported = next;
    return fresh;
  }

  private warnConfig(field: string, invalid: readonly string[]): void {
    for (const v of invalid) {
      const sig = `${field}\u0000${v}`;
      if (this.warnedConfig.has(sig)) continue;
      this.warnedConfig.add(sig);
      this.logger?.warn({ field, value: v }, 'ignoring invalid configuration entry');
    }
  }
}

/** Replaces plans in `next` that are structurally equal to their predecessor by that predecessor. */
function reuseEqual(prev: ServicePlanOutput, next: ServicePlanOutput): ServicePlanOutput {
  const prevById = new Map(prev.ports.map((p) => [p.id, p]));
  let reused = false;
  const ports = next.ports.map((p) => {
    const old = prevById.get(p.id);
    if (old && deepEqual(old, p)) {
      reused = true;
      return old;
    }
    return p;
  });
  const healthCheck =
    prev.healthCheck && next.healthCheck && deepEqual(prev.healthCheck, next.healthCheck)
      ? prev.healthCheck
      : next.healthCheck;
  if (!reused && healthCheck === next.healthCheck) return next;
  return { ports, ...(healthCheck ? { healthCheck } : {}), skips: next.skips };
}
