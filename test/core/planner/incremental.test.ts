/**
 * Incremental planning is an optimization only: for any sequence of tracker events, a Planner
 * that plans the tracker's states one after the other (re-planning only the Services the state
 * says changed) must give the snapshot a fresh Planner gives from scratch, and computeDelta
 * must give the same delta whether or not it can use the maps' change log.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../../../core/model/cluster-state.js';
import type { SourceEvent } from '../../../core/model/events.js';
import type { KubeEndpoint, KubeEndpointSlice, KubeService } from '../../../core/model/kube.js';
import type { IPFamily, Snapshot, SnapshotDelta } from '../../../core/model/snapshot.js';
import { computeDelta } from '../../../core/planner/delta.js';
import { Planner, type PlannerConfig, type PlanResult } from '../../../core/planner/planner.js';
import { deepEqual } from '../../../core/tracker/deep-equal.js';
import { Tracker } from '../../../core/tracker/tracker.js';
import { changedKeysBetween } from '../../../core/tracker/versioned-map.js';
import {
  endpoint,
  makeNode,
  makeService,
  makeSlice,
  NODE,
  OTHER_NODE,
  port,
  slicePort,
} from '../../support/fixtures.js';
import { CONFIG } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// Arbitraries: a small universe of names so that events hit the same objects again and again.

const NAMESPACES = ['default', 'shop'] as const;
// 'a:b' gives ServicePort ids that can collide with those of 'a' (port 'b:...'): the planner
// must fall back to planning everything while such a Service exists.
const SERVICE_NAMES = ['web', 'api', 'db', 'a', 'a:b'] as const;
const SLICE_SUFFIXES = ['1', '2'] as const;

const ipv4Pool = ['10.244.1.1', '10.244.1.2', '10.244.2.1', '010.244.1.3', '::ffff:10.244.1.4', '10.244.9.9'];
const ipv6Pool = ['fd00::1:1', 'FD00::1:2', 'fd00:0::2:1', 'fd00::9'];
const badIPs = ['nope', '', '10.244.1.300'];

const endpointArb = (pool: readonly string[]): fc.Arbitrary<KubeEndpoint> =>
  fc
    .record({
      ip: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...pool) },
        { weight: 1, arbitrary: fc.constantFrom(...badIPs) },
      ),
      local: fc.boolean(),
      ready: fc.option(fc.boolean(), { nil: undefined }),
      serving: fc.option(fc.boolean(), { nil: undefined }),
      terminating: fc.option(fc.boolean(), { nil: undefined }),
      zoneHints: fc.option(fc.subarray(['z1', 'z2']), { nil: undefined }),
      nodeHints: fc.option(fc.subarray([NODE, OTHER_NODE]), { nil: undefined }),
    })
    .map((e) =>
      endpoint(e.ip, {
        nodeName: e.local ? NODE : OTHER_NODE,
        ...(e.ready !== undefined ? { ready: e.ready } : {}),
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
        ...(e.zoneHints ? { zoneHints: e.zoneHints } : {}),
        ...(e.nodeHints ? { nodeHints: e.nodeHints } : {}),
      }),
    );

const serviceArb: fc.Arbitrary<KubeService> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom(...SERVICE_NAMES),
    n: fc.integer({ min: 1, max: 40 }),
    stack: fc.constantFrom('v4', 'v6', 'dual', 'headless', 'bad'),
    type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'Weird'),
    etpLocal: fc.boolean(),
    itpLocal: fc.boolean(),
    healthCheckNodePort: fc.option(fc.constantFrom(32000, 32001, 0), { nil: undefined }),
    ports: fc.subarray(
      [
        port('http', 80, { nodePort: 30080 }),
        port('dns', 53, { protocol: 'UDP', nodePort: 30053 }),
        port('', 8443),
        port('b:http', 81),
        port('http', 80, { protocol: 'SCTP' }),
        port('bad', 0),
      ],
      { minLength: 0 },
    ),
    affinity: fc.boolean(),
    externalIP: fc.option(fc.constantFrom('203.0.113.10', 'fd00:ee::1', 'bogus'), { nil: undefined }),
    resourceVersion: fc.integer({ min: 1, max: 3 }).map(String),
  })
  .map((s) => {
    const v4 = `10.96.0.${s.n}`;
    const v6 = `fd00:96::${s.n.toString(16)}`;
    const clusterIPs =
      s.stack === 'v4'
        ? [v4]
        : s.stack === 'v6'
          ? [v6]
          : s.stack === 'dual'
            ? [v4, v6]
            : s.stack === 'headless'
              ? ['None']
              : ['not-an-ip'];
    return makeService({
      namespace: s.namespace,
      name: s.name,
      type: s.type,
      clusterIP: clusterIPs[0],
      clusterIPs,
      ports: s.ports,
      ...(s.etpLocal ? { externalTrafficPolicy: 'Local' } : {}),
      ...(s.itpLocal ? { internalTrafficPolicy: 'Local' } : {}),
      ...(s.healthCheckNodePort !== undefined ? { healthCheckNodePort: s.healthCheckNodePort } : {}),
      ...(s.affinity ? { sessionAffinity: 'ClientIP' } : {}),
      ...(s.externalIP !== undefined ? { externalIPs: [s.externalIP] } : {}),
      resourceVersion: s.resourceVersion,
    });
  });

const sliceArb: fc.Arbitrary<KubeEndpointSlice> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    owner: fc.constantFrom(...SERVICE_NAMES),
    nameOwner: fc.constantFrom(...SERVICE_NAMES),
    suffix: fc.constantFrom(...SLICE_SUFFIXES),
    addressType: fc.constantFrom('IPv4', 'IPv4', 'IPv6', 'FQDN', 'Bogus'),
    ports: fc.subarray([
      slicePort('http', 8080),
      slicePort('dns', 5353, 'UDP'),
      slicePort('', 8443),
      slicePort('b:http', 81),
    ]),
    v4: fc.array(endpointArb(ipv4Pool), { maxLength: 4 }),
    v6: fc.array(endpointArb(ipv6Pool), { maxLength: 3 }),
    resourceVersion: fc.integer({ min: 1, max: 3 }).map(String),
  })
  .map((s) =>
    makeSlice({
      namespace: s.namespace,
      // The slice's name comes from one Service, its label may name another (a slice that
      // moves between Services keeps its key).
      name: `${s.nameOwner}-${s.suffix}`,
      service: s.owner,
      addressType: s.addressType,
      ports: s.ports,
      endpoints: s.addressType === 'IPv6' ? s.v6 : s.v4,
      resourceVersion: s.resourceVersion,
    }),
  );

const refArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom(...SERVICE_NAMES),
  suffix: fc.constantFrom(...SLICE_SUFFIXES),
});

type Command =
  | { readonly kind: 'event'; readonly event: SourceEvent }
  | { readonly kind: 'state' }
  | { readonly kind: 'plan'; readonly succeeded: boolean; readonly forceFull: boolean }
  | { readonly kind: 'families'; readonly families: readonly IPFamily[] | undefined };

const eventArb: fc.Arbitrary<SourceEvent> = fc.oneof(
  {
    weight: 5,
    arbitrary: serviceArb.map((object): SourceEvent => ({ type: 'upsert', resource: 'services', object })),
  },
  {
    weight: 6,
    arbitrary: sliceArb.map((object): SourceEvent => ({
      type: 'upsert',
      resource: 'endpointslices',
      object,
    })),
  },
  {
    weight: 2,
    arbitrary: refArb.map((r): SourceEvent => ({
      type: 'delete',
      resource: 'services',
      object: { metadata: { namespace: r.namespace, name: r.name } },
    })),
  },
  {
    weight: 2,
    arbitrary: refArb.map((r): SourceEvent => ({
      type: 'delete',
      resource: 'endpointslices',
      object: { metadata: { namespace: r.namespace, name: `${r.name}-${r.suffix}` } },
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(serviceArb, { maxLength: 6 })
      .map((objects): SourceEvent => ({ type: 'replace', resource: 'services', objects })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(sliceArb, { maxLength: 8 })
      .map((objects): SourceEvent => ({ type: 'replace', resource: 'endpointslices', objects })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        zone: fc.option(fc.constantFrom('z1', 'z2'), { nil: undefined }),
        ip: fc.constantFrom('192.168.77.2', '192.168.77.3'),
      })
      .map((n): SourceEvent => ({
        type: 'upsert',
        resource: 'nodes',
        object: makeNode({ internalIPs: [n.ip], ...(n.zone !== undefined ? { zone: n.zone } : {}) }),
      })),
  },
  {
    weight: 1,
    arbitrary: fc.constant<SourceEvent>({ type: 'delete', resource: 'nodes', object: makeNode() }),
  },
);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 10, arbitrary: eventArb.map((event): Command => ({ kind: 'event', event })) },
  { weight: 3, arbitrary: fc.constant<Command>({ kind: 'state' }) },
  {
    weight: 5,
    arbitrary: fc
      // A sync fails now and then (the next delta is then full), and a periodic resync forces one.
      .record({ fail: fc.integer({ min: 0, max: 4 }), resync: fc.integer({ min: 0, max: 5 }) })
      .map((p): Command => ({ kind: 'plan', succeeded: p.fail > 0, forceFull: p.resync === 0 })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom<readonly IPFamily[] | undefined>(undefined, ['IPv4'], ['IPv6'])
      .map((families): Command => ({ kind: 'families', families })),
  },
);

// ---------------------------------------------------------------------------------------------
// Comparison helpers.

/** A snapshot as comparable data: servicePorts sorted by id, generation left out. */
function comparable(s: Snapshot): unknown {
  const { generation: _generation, servicePorts, ...rest } = s;
  const ports = [...servicePorts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { ...rest, servicePorts: ports, size: servicePorts.size };
}

/** The same snapshot with plain Maps: computeDelta cannot use a change log on it. */
function plain(s: Snapshot): Snapshot {
  return { ...s, servicePorts: new Map(s.servicePorts) };
}

function sorted(set: ReadonlySet<string>): string[] {
  return [...set].sort();
}

function expectSameDelta(a: SnapshotDelta, b: SnapshotDelta): void {
  expect(a.full).toBe(b.full);
  expect(sorted(a.changed)).toEqual(sorted(b.changed));
  expect(sorted(a.removed)).toEqual(sorted(b.removed));
}

interface Applied {
  readonly state: ClusterState;
  readonly config: PlannerConfig;
  readonly result: PlanResult;
  /** servicePorts entries when it was planned (to check nothing changed it since). */
  readonly entries: readonly (readonly [string, unknown])[];
}

/** Runs the commands; returns how many plans were made incrementally. */
function runCommands(commands: readonly Command[]): { plans: number; incremental: number } {
  const tracker = new Tracker(NODE);
  const planner = new Planner();
  let config: PlannerConfig = CONFIG;
  let applied: Applied | undefined;
  let lastPlanned: PlanResult | undefined;
  let needFull = false;
  const history: Applied[] = [];
  let plans = 0;
  let incremental = 0;
  for (const cmd of commands) {
    if (cmd.kind === 'event') {
      tracker.apply(cmd.event);
      continue;
    }
    if (cmd.kind === 'state') {
      tracker.state();
      continue;
    }
    if (cmd.kind === 'families') {
      config = { ...CONFIG, ...(cmd.families ? { families: cmd.families } : {}) };
      continue;
    }
    const state = tracker.state();
    const result = planner.plan(state, config);
    const reference = new Planner().plan(state, config);
    plans++;
    if (lastPlanned && changedKeysBetween(lastPlanned.snapshot.servicePorts, result.snapshot.servicePorts))
      incremental++;
    lastPlanned = result;

    // The snapshot is the one a fresh planner makes, skips included (in the same order).
    expect(comparable(result.snapshot)).toEqual(comparable(reference.snapshot));
    expect(result.skips).toEqual(reference.skips);
    // servicePorts answers get/has/size like its iteration says.
    const entries = [...result.snapshot.servicePorts];
    expect(entries.length).toBe(result.snapshot.servicePorts.size);
    for (const [id, p] of entries) {
      expect(result.snapshot.servicePorts.get(id)).toBe(p);
      expect(result.snapshot.servicePorts.has(id)).toBe(true);
    }

    // The delta: the same with or without the change log, and it misses no real change.
    const forceFull = needFull || cmd.forceFull;
    const delta = computeDelta(applied?.result.snapshot, result.snapshot, forceFull);
    expectSameDelta(
      delta,
      computeDelta(applied && plain(applied.result.snapshot), plain(result.snapshot), forceFull),
    );
    if (applied) {
      const before = new Planner().plan(applied.state, applied.config).snapshot.servicePorts;
      const after = reference.snapshot.servicePorts;
      expect(sorted(delta.removed)).toEqual([...before.keys()].filter((id) => !after.has(id)).sort());
      for (const [id, p] of after) {
        if (!deepEqual(before.get(id), p)) expect(delta.changed.has(id), `changed ${id}`).toBe(true);
      }
      for (const id of delta.changed) expect(after.has(id)).toBe(true);
    }
    if (cmd.succeeded) {
      applied = {
        state,
        config,
        result,
        entries: entries.map(([id, p]) => [id, structuredClone(p)] as const),
      };
      history.push(applied);
      needFull = false;
    } else {
      needFull = true;
    }
  }
  // Snapshots handed out earlier never changed under anyone's feet.
  for (const h of history) {
    expect([...h.result.snapshot.servicePorts].map(([id, p]) => [id, structuredClone(p)])).toEqual(h.entries);
  }
  return { plans, incremental };
}

describe('incremental planning', () => {
  it('gives the snapshot and delta of planning from scratch, for random tracker event sequences', () => {
    let plans = 0;
    let incremental = 0;
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 10, maxLength: 60, size: 'max' }), (commands) => {
        const r = runCommands(commands);
        plans += r.plans;
        incremental += r.incremental;
      }),
      { numRuns: 300 },
    );
    // The property must have exercised the incremental path, not only the full walk.
    expect(incremental).toBeGreaterThan(plans / 5);
  });

  it('re-plans only the changed Service and keeps the others', () => {
    const tracker = new Tracker(NODE);
    const planner = new Planner();
    const services = Array.from({ length: 50 }, (_, i) =>
      makeService({ name: `svc-${i}`, clusterIP: `10.96.1.${i + 1}` }),
    );
    const slices = services.map((_, i) =>
      makeSlice({
        service: `svc-${i}`,
        endpoints: [`10.244.3.${i + 1}`, endpoint(`10.244.4.${i + 1}`, { nodeName: NODE })],
      }),
    );
    tracker.apply({ type: 'replace', resource: 'nodes', objects: [makeNode()] });
    tracker.apply({ type: 'replace', resource: 'services', objects: services });
    tracker.apply({ type: 'replace', resource: 'endpointslices', objects: slices });
    const first = planner.plan(tracker.state(), CONFIG).snapshot;

    const moved = makeSlice({ service: 'svc-7', endpoints: ['10.244.5.7'], resourceVersion: '2' });
    tracker.apply({ type: 'upsert', resource: 'endpointslices', object: moved });
    tracker.state(); // the pipeline reads the state after every event
    tracker.apply({ type: 'delete', resource: 'services', object: services[9] as KubeService });
    const second = planner.plan(tracker.state(), CONFIG).snapshot;

    expect(
      sorted(changedKeysBetween(first.servicePorts, second.servicePorts) ?? new Set(['(none)'])),
    ).toEqual(['default/svc-7:http/TCP/IPv4', 'default/svc-9:http/TCP/IPv4']);
    const delta = computeDelta(first, second, false);
    expect(sorted(delta.changed)).toEqual(['default/svc-7:http/TCP/IPv4']);
    expect(sorted(delta.removed)).toEqual(['default/svc-9:http/TCP/IPv4']);
    expect(second.servicePorts.get('default/svc-7:http/TCP/IPv4')?.clusterEndpoints.map((e) => e.ip)).toEqual(
      ['10.244.5.7'],
    );
    for (const [id, p] of second.servicePorts)
      if (!id.includes('svc-7')) expect(first.servicePorts.get(id)).toBe(p);
    // The first snapshot still says what it said.
    expect(first.servicePorts.size).toBe(50);
    expect(first.servicePorts.get('default/svc-7:http/TCP/IPv4')?.clusterEndpoints).toHaveLength(2);
  });

  it('walks everything when the node context changes, and gives the same answer', () => {
    const tracker = new Tracker(NODE);
    const planner = new Planner();
    tracker.apply({ type: 'replace', resource: 'nodes', objects: [makeNode({ zone: 'z1' })] });
    tracker.apply({ type: 'replace', resource: 'services', objects: [makeService()] });
    tracker.apply({
      type: 'replace',
      resource: 'endpointslices',
      objects: [
        makeSlice({
          endpoints: [
            endpoint('10.244.1.1', { zoneHints: ['z1'] }),
            endpoint('10.244.1.2', { zoneHints: ['z2'] }),
          ],
        }),
      ],
    });
    const first = planner.plan(tracker.state(), CONFIG).snapshot;
    expect(first.servicePorts.get('default/web:http/TCP/IPv4')?.clusterEndpoints.map((e) => e.ip)).toEqual([
      '10.244.1.1',
    ]);
    tracker.apply({
      type: 'upsert',
      resource: 'nodes',
      object: makeNode({ zone: 'z2', resourceVersion: '2' }),
    });
    const state = tracker.state();
    const second = planner.plan(state, CONFIG).snapshot;
    expect(changedKeysBetween(first.servicePorts, second.servicePorts)).toBeUndefined();
    expect(comparable(second)).toEqual(comparable(new Planner().plan(state, CONFIG).snapshot));
    expect(second.servicePorts.get('default/web:http/TCP/IPv4')?.clusterEndpoints.map((e) => e.ip)).toEqual([
      '10.244.1.2',
    ]);
    expect(sorted(computeDelta(first, second, false).changed)).toEqual(['default/web:http/TCP/IPv4']);
  });

  it('walks everything when most Services changed, with the same answer', () => {
    const tracker = new Tracker(NODE);
    const planner = new Planner();
    const services = (ip: number): KubeService[] =>
      Array.from({ length: 200 }, (_, i) =>
        makeService({ name: `svc-${i}`, clusterIP: `10.96.${ip}.${i + 1}`, resourceVersion: String(ip) }),
      );
    tracker.apply({ type: 'replace', resource: 'services', objects: services(1) });
    const s1 = tracker.state();
    const first = planner.plan(s1, CONFIG).snapshot;
    // 150 of 200 change: above the incremental share.
    tracker.apply({
      type: 'replace',
      resource: 'services',
      objects: [...services(2).slice(0, 150), ...services(1).slice(150)],
    });
    const state = tracker.state();
    expect(state.changedServicesSince?.(s1)?.size).toBe(150);
    const second = planner.plan(state, CONFIG).snapshot;
    expect(changedKeysBetween(first.servicePorts, second.servicePorts)).toBeUndefined();
    expect(comparable(second)).toEqual(comparable(new Planner().plan(state, CONFIG).snapshot));
    const delta = computeDelta(first, second, false);
    expect(delta.changed.size).toBe(150);
    expect(delta.removed.size).toBe(0);
  });

  it('walks everything for a state without change information', () => {
    const planner = new Planner();
    const tracker = new Tracker(NODE);
    tracker.apply({ type: 'replace', resource: 'services', objects: [makeService()] });
    const tracked = tracker.state();
    planner.plan(tracked, CONFIG);
    const { changedServicesSince: _omit, ...bare } = tracked;
    const copy: ClusterState = {
      ...bare,
      services: new Map([['default/api', makeService({ name: 'api', clusterIP: '10.96.0.11' })]]),
    };
    const r = planner.plan(copy, CONFIG);
    expect([...r.snapshot.servicePorts.keys()]).toEqual(['default/api:http/TCP/IPv4']);
  });
});
