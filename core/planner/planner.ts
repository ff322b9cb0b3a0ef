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
import type { ProxyConfig } from '../model/proxy-config.js';
import {
  IP_FAMILIES,
  type HealthCheckPlan,
  type IPFamily,
  type ServicePortPlan,
  type Snapshot,
} from '../model/snapshot.js';
import { TOKENS } from '../tokens.js';
import { deepEqual } from '../tracker/deep-equal.js';
import { nodeFacts, resolveNodePortAddresses, splitCIDRs } from './plan-node.js';
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
  /** The node context the output was computed for. */
  readonly context: string;
  readonly service: KubeService;
  readonly slices: readonly KubeEndpointSlice[];
  readonly output: ServicePlanOutput;
}

interface ReportedEntry {
  readonly object: unknown;
  readonly seen: Set<string>;
}

const NO_SLICES: readonly KubeEndpointSlice[] = Object.freeze([]);

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
 * - Skips: each distinct skip is logged once (warn) per version of the object that holds it;
 *   see PlanResult.newSkips.
 *
 * Not safe for concurrent use, which the pipeline never does (syncs never overlap).
 */
@injectable()
export class Planner {
  private generation = 0;
  private memo = new Map<string, MemoEntry>();
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

    const nextMemo = new Map<string, MemoEntry>();
    const servicePorts = new Map<string, ServicePortPlan>();
    const healthChecks: HealthCheckPlan[] = [];
    const collisions = new SkipCollector();
    const skipLists: (readonly PlanSkip[])[] = [nodeSkips.list()];
    const keys = [...state.services.keys()].sort();
    for (const key of keys) {
      const service = state.services.get(key) as KubeService;
      const slices = state.slicesByService.get(key) ?? NO_SLICES;
      const prev = this.memo.get(key);
      let output: ServicePlanOutput;
      if (prev && prev.context === ctxKey && prev.service === service && prev.slices === slices) {
        output = prev.output;
      } else {
        output = planService(service, slices, ctx);
        if (prev) output = reuseEqual(prev.output, output);
      }
      nextMemo.set(key, { context: ctxKey, service, slices, output });
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
      if (output.healthCheck) healthChecks.push(output.healthCheck);
      if (output.skips.length) skipLists.push(output.skips);
    }
    this.memo = nextMemo;
    skipLists.push(collisions.list());

    const { cidrs: clusterCIDRs, invalid: badClusterCIDRs } = splitCIDRs(config.clusterCIDRs);
    const { addresses: nodePortAddresses, invalid: badNodePortAddresses } = resolveNodePortAddresses(
      config.nodePortAddresses,
      facts.nodeIPs,
    );
    this.warnConfig('clusterCIDRs', badClusterCIDRs);
    this.warnConfig('nodePortAddresses', badNodePortAddresses);

    const snapshot: Snapshot = {
      generation: this.generation,
      nodeName: config.nodeName,
      nodeLabels: facts.labels,
      ...(facts.zone !== undefined ? { zone: facts.zone } : {}),
      nodeIPs: facts.nodeIPs,
      families,
      clusterCIDRs,
      masqueradeAll: config.masqueradeAll,
      nodePortAddresses,
      servicePorts,
      healthChecks,
    };
    const skips = skipLists.flat();
    const newSkips = this.report(state, skips);
    return { snapshot, skips, newSkips };
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
