import { describe, expect, it } from 'vitest';
import { goTime, HealthState, nodeIsEligible } from '../../../core/server/health-state.js';

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('HealthState', () => {
  it('health timeout is 2 × syncPeriod', () => {
    expect(new HealthState({ syncPeriodMs: 30_000 }, clock()).healthTimeoutMs).toBe(60_000);
  });

  it('is healthy while starting up, even with a change queued for longer than the timeout', () => {
    const c = clock();
    const h = new HealthState({ syncPeriodMs: 1000 }, c);
    h.queued(['IPv4']);
    c.advance(10_000);
    expect(h.health()).toMatchObject({ healthy: true, lastUpdated: undefined });
    expect(h.health().status.size).toBe(0);
  });

  it('becomes unhealthy when a queued change waits healthTimeout after a first sync, healthy again after a sync', () => {
    const c = clock();
    const h = new HealthState({ syncPeriodMs: 1000 }, c);
    h.updated(['IPv4']);
    const syncedAt = c.now();
    c.advance(500);
    h.queued(['IPv4']);
    c.advance(1999);
    expect(h.isHealthy()).toBe(true);
    c.advance(1);
    expect(h.isHealthy()).toBe(false);
    expect(h.health().status.get('IPv4')).toEqual({ lastUpdated: syncedAt, healthy: false });
    h.updated(['IPv4']);
    expect(h.isHealthy()).toBe(true);
    expect(h.health().lastUpdated).toBe(c.now());
  });

  it('keeps the OLDEST queued time; later queued calls do not refresh it', () => {
    const c = clock();
    const h = new HealthState({ syncPeriodMs: 1000 }, c);
    h.updated(['IPv4']);
    h.queued(['IPv4']);
    const first = c.now();
    c.advance(1500);
    h.queued(['IPv4']);
    expect(h.oldestPending()).toBe(first);
    c.advance(600);
    expect(h.isHealthy()).toBe(false);
  });

  it('is unhealthy when any family is late; lastUpdated is the most recent of all', () => {
    const c = clock();
    const h = new HealthState({ syncPeriodMs: 1000 }, c);
    h.updated(['IPv4', 'IPv6']);
    h.queued(['IPv6']);
    c.advance(100);
    h.updated(['IPv4']);
    c.advance(2000);
    const health = h.health();
    expect(health.healthy).toBe(false);
    expect(health.status.get('IPv4')?.healthy).toBe(true);
    expect(health.status.get('IPv6')?.healthy).toBe(false);
    expect(health.lastUpdated).toBe(c.now() - 2000);
    h.retainFamilies(['IPv4']);
    expect(h.isHealthy()).toBe(true);
    expect([...h.health().status.keys()]).toEqual(['IPv4']);
  });

  it('node eligibility: unknown is eligible; deleting, tainted or deleted is not', () => {
    const h = new HealthState({ syncPeriodMs: 1000 }, clock());
    expect(h.nodeEligible()).toBe(true);
    h.syncNode(undefined);
    expect(h.nodeEligible()).toBe(true);
    h.syncNode({ metadata: { name: 'n' } });
    expect(h.nodeEligible()).toBe(true);
    h.syncNode({ metadata: { name: 'n', deletionTimestamp: '2024-01-01T00:00:00Z' } });
    expect(h.nodeEligible()).toBe(false);
    h.syncNode({ metadata: { name: 'n' } });
    expect(h.nodeEligible()).toBe(true);
    h.syncNode(undefined);
    expect(h.nodeEligible()).toBe(false);
  });

  it('nodeIsEligible reads taints structurally', () => {
    const taint = (key: string) =>
      ({
        metadata: { name: 'n' },
        spec: { taints: [{ key: 'other' }, { key, effect: 'NoSchedule' }] },
      }) as never;
    expect(nodeIsEligible(taint('ToBeDeletedByClusterAutoscaler'))).toBe(false);
    expect(nodeIsEligible(taint('node.kubernetes.io/unschedulable'))).toBe(true);
    expect(nodeIsEligible({ metadata: { name: 'n' }, spec: { taints: 'garbage' } } as never)).toBe(true);
  });

  it("goTime renders Go's JSON time, and the zero time for undefined", () => {
    expect(goTime(undefined)).toBe('0001-01-01T00:00:00Z');
    expect(goTime(Date.UTC(2024, 0, 2, 3, 4, 5, 6))).toBe('2024-01-02T03:04:05.006Z');
  });
});
