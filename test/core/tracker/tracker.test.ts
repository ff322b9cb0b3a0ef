import { describe, expect, it } from 'vitest';
import type { SourceEvent } from '../../../core/model/events.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../../core/model/kube.js';
import { Tracker } from '../../../core/tracker/tracker.js';
import { endpoint, makeNode, makeService, makeSlice, NODE } from '../../support/fixtures.js';

const upsert = (
  resource: SourceEvent['resource'],
  object: KubeService | KubeEndpointSlice | KubeNode,
): SourceEvent => ({
  type: 'upsert',
  resource,
  object,
});
const del = (
  resource: SourceEvent['resource'],
  object: KubeService | KubeEndpointSlice | KubeNode,
): SourceEvent => ({
  type: 'delete',
  resource,
  object,
});
const replace = (
  resource: SourceEvent['resource'],
  objects: (KubeService | KubeEndpointSlice | KubeNode)[],
): SourceEvent => ({
  type: 'replace',
  resource,
  objects,
});

function clone<T>(x: T): T {
  return structuredClone(x);
}

describe('Tracker basics', () => {
  it('starts empty and unsynced', () => {
    const t = new Tracker(NODE);
    const s = t.state();
    expect(s.services.size).toBe(0);
    expect(s.endpointSlices.size).toBe(0);
    expect(s.slicesByService.size).toBe(0);
    expect(s.node).toBeUndefined();
    expect(s.synced).toEqual({ services: false, endpointslices: false, nodes: false });
    expect(t.state()).toBe(s);
  });

  it('accepts the ProxyConfig shape too', () => {
    const t = new Tracker({ hostname: NODE });
    expect(t.apply(upsert('nodes', makeNode())).nodeChanged).toBe(true);
  });

  it('keys and groups objects', () => {
    const t = new Tracker(NODE);
    const svc = makeService({ name: 'web', namespace: 'shop' });
    const a = makeSlice({ name: 'web-b', namespace: 'shop', service: 'web' });
    const b = makeSlice({ name: 'web-a', namespace: 'shop', service: 'web' });
    expect(t.apply(upsert('services', svc))).toMatchObject({ changed: true, services: 1, endpointSlices: 0 });
    expect(t.apply(upsert('endpointslices', a))).toMatchObject({
      changed: true,
      services: 0,
      endpointSlices: 1,
    });
    t.apply(upsert('endpointslices', b));
    const s = t.state();
    expect(s.services.get('shop/web')).toBe(svc);
    expect(s.endpointSlices.get('shop/web-a')).toBe(b);
    // Sorted by slice key.
    expect(s.slicesByService.get('shop/web')).toEqual([b, a]);
  });

  it('keeps only this node', () => {
    const t = new Tracker(NODE);
    const r = t.apply(upsert('nodes', makeNode({ name: 'elsewhere' })));
    expect(r.changed).toBe(false);
    expect(t.state().node).toBeUndefined();
    const mine = makeNode();
    expect(t.apply(upsert('nodes', mine))).toMatchObject({ changed: true, nodeChanged: true });
    expect(t.state().node).toBe(mine);
    expect(t.apply(del('nodes', makeNode({ name: 'elsewhere' }))).changed).toBe(false);
    expect(t.apply(del('nodes', mine))).toMatchObject({ changed: true, nodeChanged: true });
    expect(t.state().node).toBeUndefined();
  });

  it('degraded and recovered change nothing', () => {
    const t = new Tracker(NODE);
    t.apply(upsert('services', makeService()));
    const before = t.state();
    expect(t.apply({ type: 'degraded', resource: 'services', reason: 'watch failed' }).changed).toBe(false);
    expect(t.apply({ type: 'recovered', resource: 'services' }).changed).toBe(false);
    expect(t.state()).toBe(before);
  });

  it('ignores and counts objects without name or namespace', () => {
    const t = new Tracker(NODE);
    const nameless = makeService();
    delete nameless.metadata!.name;
    const noNamespace = makeService();
    delete noNamespace.metadata!.namespace;
    expect(t.apply(upsert('services', nameless))).toMatchObject({ changed: false, ignored: 1 });
    expect(t.apply(upsert('services', noNamespace))).toMatchObject({ changed: false, ignored: 1 });
    expect(t.apply(upsert('endpointslices', { metadata: {} }))).toMatchObject({ changed: false, ignored: 1 });
    expect(t.apply(upsert('nodes', { metadata: {} }))).toMatchObject({ changed: false, ignored: 1 });
    expect(t.apply(upsert('services', null as unknown as KubeService))).toMatchObject({
      changed: false,
      ignored: 1,
    });
    const good = makeService({ name: 'ok' });
    const r = t.apply(replace('services', [nameless, good, noNamespace]));
    expect(r).toMatchObject({ changed: true, services: 1, ignored: 2, syncedChanged: true });
    expect([...t.state().services.keys()]).toEqual(['default/ok']);
  });

  it('deleting something unknown is no change', () => {
    const t = new Tracker(NODE);
    expect(t.apply(del('services', makeService())).changed).toBe(false);
    expect(t.apply(del('endpointslices', makeSlice())).changed).toBe(false);
    expect(t.apply(del('nodes', makeNode())).changed).toBe(false);
  });

  it('deletes', () => {
    const t = new Tracker(NODE);
    t.apply(upsert('services', makeService()));
    t.apply(upsert('endpointslices', makeSlice()));
    expect(t.apply(del('services', makeService()))).toMatchObject({ changed: true, services: 1 });
    expect(t.apply(del('endpointslices', makeSlice()))).toMatchObject({ changed: true, endpointSlices: 1 });
    const s = t.state();
    expect(s.services.size).toBe(0);
    expect(s.endpointSlices.size).toBe(0);
    expect(s.slicesByService.has('default/web')).toBe(false);
  });
});

describe('Tracker replace and synced', () => {
  it('the first replace of each resource marks it synced', () => {
    const t = new Tracker(NODE);
    const r1 = t.apply(replace('services', []));
    expect(r1).toMatchObject({ changed: true, syncedChanged: true, services: 0 });
    expect(t.state().synced).toEqual({ services: true, endpointslices: false, nodes: false });
    const r2 = t.apply(replace('services', []));
    expect(r2.changed).toBe(false);
    t.apply(replace('endpointslices', []));
    t.apply(replace('nodes', []));
    expect(t.state().synced).toEqual({ services: true, endpointslices: true, nodes: true });
  });

  it('a replace deletes what is absent and keeps what is equal', () => {
    const t = new Tracker(NODE);
    const a = makeService({ name: 'a' });
    const b = makeService({ name: 'b' });
    t.apply(replace('services', [a, b]));
    const a2 = { ...clone(a), metadata: { ...a.metadata, resourceVersion: '99' } };
    const c = makeService({ name: 'c' });
    const r = t.apply(replace('services', [a2, c]));
    expect(r).toMatchObject({ changed: true, services: 2, syncedChanged: false }); // b deleted, c added
    const s = t.state();
    expect([...s.services.keys()].sort()).toEqual(['default/a', 'default/c']);
    expect(s.services.get('default/a')).toBe(a); // the equivalent relisted copy was dropped
  });

  it('a replace of nodes finds ours, or removes it', () => {
    const t = new Tracker(NODE);
    const mine = makeNode();
    expect(t.apply(replace('nodes', [makeNode({ name: 'x' }), mine]))).toMatchObject({
      nodeChanged: true,
      syncedChanged: true,
    });
    expect(t.state().node).toBe(mine);
    expect(t.apply(replace('nodes', [makeNode({ name: 'x' })]))).toMatchObject({
      changed: true,
      nodeChanged: true,
    });
    expect(t.state().node).toBeUndefined();
  });

  it('a replace of slices regroups', () => {
    const t = new Tracker(NODE);
    const s1 = makeSlice({ name: 's1', service: 'web' });
    const s2 = makeSlice({ name: 's2', service: 'api' });
    t.apply(replace('endpointslices', [s1, s2]));
    expect(t.state().slicesByService.get('default/web')).toEqual([s1]);
    t.apply(replace('endpointslices', [s2]));
    const st = t.state();
    expect(st.slicesByService.has('default/web')).toBe(false);
    expect(st.slicesByService.get('default/api')).toEqual([s2]);
  });
});

describe('Tracker no-op dedup', () => {
  const base = makeService({
    type: 'LoadBalancer',
    status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } },
  });

  it.each<[string, (s: KubeService) => void]>([
    ['resourceVersion', (s) => (s.metadata!.resourceVersion = '2')],
    ['generation', (s) => (s.metadata!.generation = 7)],
    [
      'managedFields',
      (s) => ((s.metadata as Record<string, unknown>).managedFields = [{ manager: 'kubectl' }]),
    ],
    [
      'annotations',
      (s) => (s.metadata!.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': '{}' }),
    ],
    ['uid', (s) => (s.metadata!.uid = 'u-2')],
    [
      'status.conditions',
      (s) => ((s.status as Record<string, unknown>).conditions = [{ type: 'Ready', status: 'True' }]),
    ],
    ['key order', (s) => (s.spec = Object.fromEntries(Object.entries(s.spec!).reverse()))],
  ])('a Service update touching only %s is no change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('services', base));
    const before = t.state();
    const next = clone(base);
    mutate(next);
    const r = t.apply(upsert('services', next));
    expect(r).toEqual({
      changed: false,
      services: 0,
      endpointSlices: 0,
      nodeChanged: false,
      syncedChanged: false,
      ignored: 0,
    });
    expect(t.state()).toBe(before);
    expect(t.state().services.get('default/web')).toBe(base);
  });

  it.each<[string, (s: KubeService) => void]>([
    ['spec.ports', (s) => (s.spec!.ports![0]!.port = 81)],
    ['spec.externalTrafficPolicy', (s) => (s.spec!.externalTrafficPolicy = 'Local')],
    ['status.loadBalancer.ingress', (s) => (s.status!.loadBalancer!.ingress = [{ ip: '198.51.100.8' }])],
    ['status.loadBalancer.ingress ipMode', (s) => (s.status!.loadBalancer!.ingress![0]!.ipMode = 'Proxy')],
    ['labels', (s) => (s.metadata!.labels = { app: 'x' })],
  ])('a Service update of %s is one change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('services', base));
    const before = t.state();
    const next = clone(base);
    mutate(next);
    expect(t.apply(upsert('services', next))).toMatchObject({ changed: true, services: 1 });
    const after = t.state();
    expect(after).not.toBe(before);
    expect(after.services.get('default/web')).toBe(next);
    expect(before.services.get('default/web')).toBe(base); // the old state is untouched
  });

  const slice = makeSlice({ endpoints: [endpoint('10.244.1.5', { nodeName: NODE, ready: true })] });

  it.each<[string, (s: KubeEndpointSlice) => void]>([
    ['resourceVersion', (s) => (s.metadata!.resourceVersion = '5')],
    [
      'managedFields',
      (s) => ((s.metadata as Record<string, unknown>).managedFields = [{ manager: 'controller' }]),
    ],
  ])('a slice update touching only %s is no change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('endpointslices', slice));
    const before = t.state();
    const next = clone(slice);
    mutate(next);
    expect(t.apply(upsert('endpointslices', next)).changed).toBe(false);
    expect(t.state()).toBe(before);
  });

  it.each<[string, (s: KubeEndpointSlice) => void]>([
    ['a condition', (s) => (s.endpoints![0]!.conditions!.ready = false)],
    ['an address', (s) => (s.endpoints![0]!.addresses = ['10.244.1.6'])],
    ['a port', (s) => (s.ports![0]!.port = 8081)],
    [
      'annotations',
      (s) => (s.metadata!.annotations = { 'endpoints.kubernetes.io/last-change-trigger-time': 'now' }),
    ],
    ['generation', (s) => (s.metadata!.generation = 3)],
  ])('a slice update of %s is one change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('endpointslices', slice));
    const next = clone(slice);
    mutate(next);
    expect(t.apply(upsert('endpointslices', next))).toMatchObject({ changed: true, endpointSlices: 1 });
    expect(t.state().slicesByService.get('default/web')).toEqual([next]);
  });

  const node = makeNode({ zone: 'zone-a' });

  it.each<[string, (n: KubeNode) => void]>([
    ['resourceVersion', (n) => (n.metadata!.resourceVersion = '9')],
    [
      'status.conditions (heartbeat)',
      (n) =>
        ((n.status as Record<string, unknown>).conditions = [{ type: 'Ready', lastHeartbeatTime: 'now' }]),
    ],
    ['annotations', (n) => (n.metadata!.annotations = { a: 'b' })],
    ['spec.unschedulable', (n) => (n.spec = { unschedulable: true })],
  ])('a Node update touching only %s is no change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('nodes', node));
    const before = t.state();
    const next = clone(node);
    mutate(next);
    expect(t.apply(upsert('nodes', next)).changed).toBe(false);
    expect(t.state()).toBe(before);
    expect(t.state().node).toBe(node);
  });

  it.each<[string, (n: KubeNode) => void]>([
    ['labels', (n) => (n.metadata!.labels!['topology.kubernetes.io/zone'] = 'zone-b')],
    ['status.addresses', (n) => (n.status!.addresses = [{ type: 'InternalIP', address: '192.168.77.3' }])],
    ['metadata.deletionTimestamp', (n) => (n.metadata!.deletionTimestamp = '2026-01-01T00:00:00Z')],
    [
      'spec.taints',
      (n) => (n.spec = { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] }),
    ],
    ['spec.podCIDRs', (n) => (n.spec = { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] })],
  ])('a Node update of %s is a change', (_what, mutate) => {
    const t = new Tracker(NODE);
    t.apply(upsert('nodes', node));
    const next = clone(node);
    mutate(next);
    expect(t.apply(upsert('nodes', next))).toMatchObject({ changed: true, nodeChanged: true });
    expect(t.state().node).toBe(next);
  });
});

describe('Tracker copy-on-write', () => {
  it('keeps the identity of untouched maps, objects and slice arrays', () => {
    const t = new Tracker(NODE);
    t.apply(replace('services', [makeService({ name: 'web' }), makeService({ name: 'api' })]));
    t.apply(
      replace('endpointslices', [
        makeSlice({ service: 'web' }),
        makeSlice({ service: 'api', endpoints: ['10.244.2.1'] }),
      ]),
    );
    const s1 = t.state();
    const webSlices = s1.slicesByService.get('default/web');
    const apiSlices = s1.slicesByService.get('default/api');

    // Only an api slice changes.
    t.apply(upsert('endpointslices', makeSlice({ service: 'api', endpoints: ['10.244.2.2'] })));
    const s2 = t.state();
    expect(s2).not.toBe(s1);
    expect(s2.services).toBe(s1.services);
    expect(s2.endpointSlices).not.toBe(s1.endpointSlices);
    expect(s2.slicesByService.get('default/web')).toBe(webSlices);
    expect(s2.slicesByService.get('default/api')).not.toBe(apiSlices);
    // The earlier state is unchanged.
    expect(s1.slicesByService.get('default/api')).toBe(apiSlices);
    expect(s1.endpointSlices.get('default/api-v4')?.endpoints?.[0]?.addresses).toEqual(['10.244.2.1']);

    // Only a Service changes.
    t.apply(upsert('services', makeService({ name: 'web', clusterIP: '10.96.0.11' })));
    const s3 = t.state();
    expect(s3.endpointSlices).toBe(s2.endpointSlices);
    expect(s3.slicesByService).toBe(s2.slicesByService);
    expect(s3.services.get('default/api')).toBe(s2.services.get('default/api'));
  });

  it('moves a slice whose service-name label changes', () => {
    const t = new Tracker(NODE);
    const s = makeSlice({ name: 'x', service: 'web' });
    t.apply(upsert('endpointslices', s));
    const moved = makeSlice({ name: 'x', service: 'api' });
    expect(t.apply(upsert('endpointslices', moved))).toMatchObject({ changed: true, endpointSlices: 1 });
    const st = t.state();
    expect(st.slicesByService.has('default/web')).toBe(false);
    expect(st.slicesByService.get('default/api')).toEqual([moved]);
  });

  it('keeps a slice without service-name label, ungrouped', () => {
    const t = new Tracker(NODE);
    const s = makeSlice({ name: 'orphan' });
    delete s.metadata!.labels;
    expect(t.apply(upsert('endpointslices', s)).changed).toBe(true);
    expect(t.state().endpointSlices.get('default/orphan')).toBe(s);
    expect(t.state().slicesByService.size).toBe(0);
  });

  it('returned maps never change afterwards', () => {
    const t = new Tracker(NODE);
    t.apply(upsert('services', makeService({ name: 'a' })));
    const s1 = t.state();
    t.apply(upsert('services', makeService({ name: 'b' })));
    t.apply(del('services', makeService({ name: 'a' })));
    expect([...s1.services.keys()]).toEqual(['default/a']);
    expect([...t.state().services.keys()]).toEqual(['default/b']);
  });
});
