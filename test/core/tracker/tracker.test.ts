import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SourceEvent } from '../../../core/model/events.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../../core/model/kube.js';
import { servicesEquivalent, slicesEquivalent, Tracker } from '../../../core/tracker/tracker.js';
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

describe('Tracker change reporting (changedServicesSince)', () => {
  const changed = (s: ReturnType<Tracker['state']>, earlier: ReturnType<Tracker['state']>): string[] =>
    [...(s.changedServicesSince?.(earlier) ?? ['(cannot tell)'])].sort();

  it('names the Services whose object or slice group changed, across several states', () => {
    const t = new Tracker(NODE);
    t.apply(replace('services', [makeService({ name: 'web' }), makeService({ name: 'api' })]));
    t.apply(replace('endpointslices', [makeSlice({ name: 'web-1', service: 'web' })]));
    const s0 = t.state();
    expect(changed(s0, s0)).toEqual([]);

    t.apply(
      upsert('endpointslices', makeSlice({ name: 'web-1', service: 'web', endpoints: ['10.244.1.9'] })),
    );
    const s1 = t.state();
    expect(changed(s1, s0)).toEqual(['default/web']);

    // A slice moves from web to api: both groups changed.
    t.apply(upsert('endpointslices', makeSlice({ name: 'web-1', service: 'api' })));
    const s2 = t.state();
    expect(changed(s2, s1)).toEqual(['default/api', 'default/web']);

    // A Service change, a slice without owner (no Service affected), a no-op relist.
    t.apply(upsert('services', makeService({ name: 'db', clusterIP: '10.96.0.12' })));
    const orphan = makeSlice({ name: 'orphan' });
    delete orphan.metadata!.labels;
    t.apply(upsert('endpointslices', orphan));
    const s3 = t.state();
    expect(changed(s3, s2)).toEqual(['default/db']);
    // Over several states: the union, in either direction.
    expect(changed(s3, s0)).toEqual(['default/api', 'default/db', 'default/web']);
    expect(changed(s0, s3)).toEqual(['default/api', 'default/db', 'default/web']);

    // Deleting a Service and the last slice of a group.
    t.apply(del('services', makeService({ name: 'web' })));
    t.apply(del('endpointslices', makeSlice({ name: 'web-1', service: 'api' })));
    const s4 = t.state();
    expect(changed(s4, s3)).toEqual(['default/api', 'default/web']);
    expect(s4.slicesByService.has('default/api')).toBe(false);

    // A node change is not a Service change (the planner compares node facts itself).
    t.apply(upsert('nodes', makeNode({ zone: 'z9' })));
    const s5 = t.state();
    expect(s5).not.toBe(s4);
    expect(changed(s5, s4)).toEqual([]);
  });

  it('cannot tell for a state of another tracker or a hand-made one', () => {
    const a = new Tracker(NODE);
    const b = new Tracker(NODE);
    a.apply(upsert('services', makeService()));
    b.apply(upsert('services', makeService()));
    expect(a.state().changedServicesSince?.(b.state())).toBeUndefined();
    const handMade = { ...a.state(), services: new Map(a.state().services) };
    expect(a.state().changedServicesSince?.(handMade)).toBeUndefined();
  });

  it('earlier states keep their contents while many later changes are published', () => {
    const t = new Tracker(NODE);
    const states: { state: ReturnType<Tracker['state']>; slices: [string, unknown][] }[] = [];
    for (let i = 0; i < 300; i++) {
      const svc = `s${i % 37}`;
      if (i % 11 === 5) t.apply(del('endpointslices', makeSlice({ name: `${svc}-1`, service: svc })));
      else
        t.apply(
          upsert(
            'endpointslices',
            makeSlice({ name: `${svc}-1`, service: svc, endpoints: [`10.244.${i % 250}.1`] }),
          ),
        );
      const state = t.state();
      states.push({ state, slices: [...state.endpointSlices].map(([k, v]) => [k, clone(v)]) });
    }
    for (const { state, slices } of states) {
      expect([...state.endpointSlices].map(([k, v]) => [k, clone(v)])).toEqual(slices);
      for (const group of state.slicesByService.values())
        for (const s of group) expect(state.endpointSlices.get(`default/${s.metadata!.name}`)).toBe(s);
    }
  });
});

describe('Tracker state, checked against a from-scratch model (property)', () => {
  const names = ['web', 'api', 'db'];
  const namespaces = ['default', 'shop'];
  const svcArb = fc
    .record({
      name: fc.constantFrom(...names),
      namespace: fc.constantFrom(...namespaces),
      n: fc.integer({ min: 1, max: 3 }),
      rv: fc.integer({ min: 1, max: 3 }),
    })
    .map((s) =>
      makeService({
        name: s.name,
        namespace: s.namespace,
        clusterIP: `10.96.0.${s.n}`,
        resourceVersion: String(s.rv),
      }),
    );
  const sliceArb = fc
    .record({
      name: fc.constantFrom('s1', 's2', 's3', 's4'),
      namespace: fc.constantFrom(...namespaces),
      owner: fc.option(fc.constantFrom(...names), { nil: undefined }),
      ip: fc.integer({ min: 1, max: 3 }),
      rv: fc.integer({ min: 1, max: 3 }),
    })
    .map((s) => {
      const slice = makeSlice({
        name: s.name,
        namespace: s.namespace,
        service: s.owner ?? 'x',
        endpoints: [`10.244.1.${s.ip}`],
        resourceVersion: String(s.rv),
      });
      if (s.owner === undefined) delete slice.metadata!.labels;
      return slice;
    });
  const eventArb: fc.Arbitrary<SourceEvent> = fc.oneof(
    svcArb.map((o) => upsert('services', o)),
    sliceArb.map((o) => upsert('endpointslices', o)),
    sliceArb.map((o) => upsert('endpointslices', o)),
    svcArb.map((o) => del('services', o)),
    sliceArb.map((o) => del('endpointslices', o)),
    fc.array(svcArb, { maxLength: 4 }).map((l) => replace('services', l)),
    fc.array(sliceArb, { maxLength: 6 }).map((l) => replace('endpointslices', l)),
  );

  /** slicesByService as makeState builds it from the slices alone. */
  function grouped(slices: ReadonlyMap<string, KubeEndpointSlice>): Map<string, KubeEndpointSlice[]> {
    const out = new Map<string, KubeEndpointSlice[]>();
    for (const key of [...slices.keys()].sort()) {
      const s = slices.get(key) as KubeEndpointSlice;
      const svc = s.metadata?.labels?.['kubernetes.io/service-name'];
      if (!svc) continue;
      const gk = `${s.metadata?.namespace}/${svc}`;
      out.set(gk, [...(out.get(gk) ?? []), s]);
    }
    return out;
  }

  it('groups, keeps earlier states intact and reports every changed Service', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(eventArb, fc.boolean()), { minLength: 1, maxLength: 40 }), (steps) => {
        const t = new Tracker(NODE);
        const model = {
          services: new Map<string, KubeService>(),
          slices: new Map<string, KubeEndpointSlice>(),
        };
        const states: { state: ReturnType<Tracker['state']>; services: string; slices: string }[] = [];
        for (const [event, read] of steps) {
          t.apply(event);
          // The model: what the API holds (the tracker may keep an equivalent older object).
          const m = event.resource === 'services' ? model.services : model.slices;
          const keyOf = (o: { metadata?: { namespace?: string; name?: string } }): string =>
            `${o.metadata?.namespace}/${o.metadata?.name}`;
          if (event.type === 'upsert') m.set(keyOf(event.object), event.object as never);
          else if (event.type === 'delete') m.delete(keyOf(event.object));
          else if (event.type === 'replace') {
            m.clear();
            for (const o of event.objects) m.set(keyOf(o), o as never);
          }
          if (!read) continue;
          const state = t.state();
          expect([...state.services.keys()].sort()).toEqual([...model.services.keys()].sort());
          expect([...state.endpointSlices.keys()].sort()).toEqual([...model.slices.keys()].sort());
          for (const [k, s] of model.slices)
            expect(slicesEquivalent(state.endpointSlices.get(k)!, s)).toBe(true);
          for (const [k, s] of model.services)
            expect(servicesEquivalent(state.services.get(k)!, s)).toBe(true);
          expect(new Map(state.slicesByService)).toEqual(grouped(state.endpointSlices));
          states.push({
            state,
            services: JSON.stringify([...state.services].sort()),
            slices: JSON.stringify([...state.slicesByService].sort()),
          });
        }
        for (const a of states) {
          expect(JSON.stringify([...a.state.services].sort())).toBe(a.services);
          expect(JSON.stringify([...a.state.slicesByService].sort())).toBe(a.slices);
          for (const b of states) {
            const changed = b.state.changedServicesSince?.(a.state);
            expect(changed).toBeDefined();
            const keys = new Set([...a.state.services.keys(), ...b.state.services.keys()]);
            for (const k of [...a.state.slicesByService.keys(), ...b.state.slicesByService.keys()])
              keys.add(k);
            for (const k of keys) {
              if (
                a.state.services.get(k) !== b.state.services.get(k) ||
                a.state.slicesByService.get(k) !== b.state.slicesByService.get(k)
              )
                expect(changed!.has(k), k).toBe(true);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
