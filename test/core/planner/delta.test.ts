import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import type { Snapshot } from '../../../core/model/snapshot.js';
import { computeDelta, Planner } from '../../../core/planner/planner.js';
import { makeNode, makeService, makeSlice, makeState, port } from '../../support/fixtures.js';
import { CONFIG } from './helpers.js';

const web = makeService({
  name: 'web',
  clusterIP: '10.96.0.10',
  ports: [port('http', 80), port('https', 443)],
});
const api = makeService({ name: 'api', clusterIP: '10.96.0.11' });

function twoPlans(): { planner: Planner; prev: Snapshot } {
  const planner = new Planner(silentLogger());
  const prev = planner.plan(makeState({ services: [web, api], node: makeNode() }), CONFIG).snapshot;
  return { planner, prev };
}

describe('computeDelta', () => {
  it('no previous snapshot: full, everything changed, nothing removed', () => {
    const { prev } = twoPlans();
    const d = computeDelta(undefined, prev, false);
    expect(d.full).toBe(true);
    expect([...d.changed].sort()).toEqual([
      'default/api:http/TCP/IPv4',
      'default/web:http/TCP/IPv4',
      'default/web:https/TCP/IPv4',
    ]);
    expect(d.removed.size).toBe(0);
  });

  it('identical plans: empty partial delta', () => {
    const { planner, prev } = twoPlans();
    const next = planner.plan(makeState({ services: [web, api], node: makeNode() }), CONFIG).snapshot;
    expect(computeDelta(prev, next, false)).toEqual({ full: false, changed: new Set(), removed: new Set() });
  });

  it('forceFull: full, and removed still computed', () => {
    const { planner, prev } = twoPlans();
    const next = planner.plan(makeState({ services: [web], node: makeNode() }), CONFIG).snapshot;
    const d = computeDelta(prev, next, true);
    expect(d.full).toBe(true);
    expect([...d.changed].sort()).toEqual(['default/web:http/TCP/IPv4', 'default/web:https/TCP/IPv4']);
    expect([...d.removed]).toEqual(['default/api:http/TCP/IPv4']);
  });

  it('partial: changed by identity, added, removed', () => {
    const { planner, prev } = twoPlans();
    const web2 = makeService({
      name: 'web',
      clusterIP: '10.96.0.10',
      ports: [port('http', 80), port('https', 8443)],
    });
    const db = makeService({ name: 'db', clusterIP: '10.96.0.12' });
    const next = planner.plan(
      makeState({
        services: [web2, db],
        slices: [makeSlice({ service: 'db', endpoints: ['10.244.1.1'] })],
        node: makeNode(),
      }),
      CONFIG,
    ).snapshot;
    const d = computeDelta(prev, next, false);
    expect(d.full).toBe(false);
    expect([...d.changed].sort()).toEqual(['default/db:http/TCP/IPv4', 'default/web:https/TCP/IPv4']);
    expect([...d.removed]).toEqual(['default/api:http/TCP/IPv4']);
  });

  it.each<[string, (s: Snapshot) => Snapshot]>([
    ['nodeIPs', (s) => ({ ...s, nodeIPs: { IPv4: ['192.168.77.3'], IPv6: [] } })],
    ['clusterCIDRs', (s) => ({ ...s, clusterCIDRs: { IPv4: ['10.245.0.0/16'], IPv6: [] } })],
    ['masqueradeAll', (s) => ({ ...s, masqueradeAll: !s.masqueradeAll })],
    ['localInterface set', (s) => ({ ...s, localInterface: { name: 'cbr0', prefix: false } })],
    [
      'nodePortAddresses kind',
      (s) => ({ ...s, nodePortAddresses: { IPv4: { kind: 'all' }, IPv6: s.nodePortAddresses.IPv6 } }),
    ],
    [
      'nodePortAddresses cidrs',
      (s) => ({
        ...s,
        nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: ['10.0.0.0/8'] }, IPv6: s.nodePortAddresses.IPv6 },
      }),
    ],
    ['families', (s) => ({ ...s, families: ['IPv4'] })],
    ['nodeName', (s) => ({ ...s, nodeName: 'other' })],
  ])('a node-level change (%s) makes it full', (_what, mutate) => {
    const { prev } = twoPlans();
    const next = mutate({ ...prev, generation: prev.generation + 1 });
    const d = computeDelta(prev, next, false);
    expect(d.full).toBe(true);
    expect(d.changed.size).toBe(3);
  });

  it('node-level fields recomputed equal (new arrays) stay partial', () => {
    const { planner, prev } = twoPlans();
    const next = planner.plan(
      makeState({ services: [web, api], node: makeNode({ zone: 'zone-x' }) }),
      CONFIG,
    ).snapshot;
    expect(next.nodeIPs).not.toBe(prev.nodeIPs);
    const d = computeDelta(prev, next, false);
    expect(d.full).toBe(false);
    expect(d.changed.size).toBe(0);
  });
});
