/** Shared helpers for the planner tests. */
import type { EndpointPlan, ServicePortPlan } from '../../../core/model/snapshot.js';
import { Planner, type PlannerConfig, type PlanResult } from '../../../core/planner/planner.js';
import { makeState, NODE, type StateFixture } from '../../support/fixtures.js';

export const CONFIG: PlannerConfig = {
  nodeName: NODE,
  clusterCIDRs: ['10.244.0.0/16'],
  masqueradeAll: false,
  nodePortAddresses: [],
};

/** Plans these objects with a fresh Planner. */
export function planOf(objects: StateFixture, config: Partial<PlannerConfig> = {}): PlanResult {
  return new Planner().plan(makeState(objects), { ...CONFIG, ...config });
}

/** The plan with this id; fails the test when absent. */
export function portPlan(r: PlanResult, id: string): ServicePortPlan {
  const p = r.snapshot.servicePorts.get(id);
  if (!p) throw new Error(`no ServicePortPlan ${id}; have ${[...r.snapshot.servicePorts.keys()].join(', ')}`);
  return p;
}

/** "ip:port" of each endpoint, in order. */
export function addrs(list: readonly EndpointPlan[]): string[] {
  return list.map((e) => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`));
}
