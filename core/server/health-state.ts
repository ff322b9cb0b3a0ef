/**
 * The proxy's health, as kube-proxy's ProxyHealthServer keeps it
 * (pkg/proxy/healthcheck/proxy_health.go), per IP family:
 *
 * - `queued(families)` when a change that needs a sync is seen: remembers the OLDEST pending
 *   change time per family (later calls do not move it);
 * - `updated(families)` when a sync succeeded: clears the pending time, records lastUpdated.
 *
 * A family is unhealthy when it has synced at least once and a change has waited for
 * `healthTimeout` (kube-proxy: 2 × syncPeriod) or longer. Before the first successful sync the
 * proxy counts as healthy (starting up), exactly as upstream.
 *
 * Node eligibility (only /healthz and the service health checks' LB use it): not eligible when
 * the Node has a deletionTimestamp or the ToBeDeletedByClusterAutoscaler taint, or when the Node
 * was seen and then deleted. Difference from current kube-proxy: an unknown Node (never seen;
 * e.g. `--from` files without a Node) counts as eligible, as in kube-proxy before it started
 * waiting for its Node at startup.
 */
import { inject, injectable } from 'tsyringe';
import { TOKENS } from '../tokens.js';
import type { ProxyConfig } from '../model/proxy-config.js';
import type { KubeNode } from '../model/kube.js';
import { IP_FAMILIES, type IPFamily } from '../model/snapshot.js';

/** Anything that tells the time in epoch milliseconds (an RxJS scheduler qualifies). */
export interface Clock {
  now(): number;
}

/** The taint the Cluster Autoscaler puts on a node before deleting it. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

export interface ProxierHealth {
  /** Epoch ms of the last successful sync, undefined when none yet. */
  readonly lastUpdated?: number;
  readonly healthy: boolean;
}

export interface ProxyHealth {
  /** The most recent lastUpdated of any family (undefined when none yet). */
  readonly lastUpdated?: number;
  readonly currentTime: number;
  /** Every family healthy. Node eligibility is NOT part of this (see HealthState.nodeEligible). */
  readonly healthy: boolean;
  readonly status: ReadonlyMap<IPFamily, ProxierHealth>;
}

/** Go's time.Time JSON form for epoch ms; the zero time for undefined. */
export function goTime(ms: number | undefined): string {
  return ms === undefined ? '0001-01-01T00:00:00Z' : new Date(ms).toISOString();
}

@injectable()
export class HealthState {
  private readonly lastUpdated = new Map<IPFamily, number>();
  private readonly oldestQueued = new Map<IPFamily, number>();
  private nodeSeen = false;
  private eligible = true;
  readonly healthTimeoutMs: number;

  constructor(
    @inject(TOKENS.Config) config: Pick<ProxyConfig, 'syncPeriodMs'>,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {
    this.healthTimeoutMs = 2 * config.syncPeriodMs;
  }

  now(): number {
    return this.clock.now();
  }

  /** A change needing a sync was seen (at `at`, default now); keeps the oldest time. */
  queued(families: readonly IPFamily[] = IP_FAMILIES, at: number = this.clock.now()): void {
    for (const family of families) {
      const prev = this.oldestQueued.get(family);
      if (prev === undefined || at < prev) this.oldestQueued.set(family, at);
    }
  }

  /** A sync of these families succeeded: nothing pending, lastUpdated = now. */
  updated(families: readonly IPFamily[], at: number = this.clock.now()): void {
    for (const family of families) {
      this.oldestQueued.delete(family);
      this.lastUpdated.set(family, at);
    }
  }

  /** Forget every family but these (the node's families are now known, or changed). */
  retainFamilies(families: readonly IPFamily[]): void {
    for (const map of [this.lastUpdated, this.oldestQueued]) {
      for (const family of [...map.keys()]) if (!families.includes(family)) map.delete(family);
    }
  }

  /** The oldest change not yet synced, over all families (undefined when none). */
  oldestPending(): number | undefined {
    let oldest: number | undefined;
    for (const t of this.oldestQueued.values()) if (oldest === undefined || t < oldest) oldest = t;
    return oldest;
  }

  health(): ProxyHealth {
    const now = this.clock.now();
    const status = new Map<IPFamily, ProxierHealth>();
    let healthy = true;
    let lastUpdated: number | undefined;
    for (const [family, updatedAt] of this.lastUpdated) {
      if (lastUpdated === undefined || updatedAt > lastUpdated) lastUpdated = updatedAt;
      const queuedAt = this.oldestQueued.get(family);
      const familyHealthy = queuedAt === undefined || now - queuedAt < this.healthTimeoutMs;
      if (!familyHealthy) healthy = false;
      status.set(family, { lastUpdated: updatedAt, healthy: familyHealthy });
    }
    return { lastUpdated, currentTime: now, healthy, status };
  }

  isHealthy(): boolean {
    return this.health().healthy;
  }

  /** Feed this node's Node object (undefined: not known, or deleted). */
  syncNode(node: KubeNode | undefined): void {
    if (node === undefined) {
      // Seen and now gone: the node is being deleted. Never seen: starting up, eligible.
      this.eligible = !this.nodeSeen;
      return;
    }
    this.nodeSeen = true;
    this.eligible = nodeIsEligible(node);
  }

  nodeEligible(): boolean {
    return this.eligible;
  }
}

/** Not being deleted and not tainted ToBeDeletedByClusterAutoscaler. */
export function nodeIsEligible(node: KubeNode): boolean {
  const deletion = node.metadata?.deletionTimestamp;
  if (deletion !== undefined && deletion !== null && String(deletion) !== '') return false;
  // KubeNode (core/model) does not list spec.taints; read it structurally.
  const taints = (node.spec as { taints?: unknown } | undefined)?.taints;
  if (Array.isArray(taints)) {
    for (const taint of taints) {
      if (taint && typeof taint === 'object' && (taint as { key?: unknown }).key === TO_BE_DELETED_TAINT)
        return false;
    }
  }
  return true;
}
