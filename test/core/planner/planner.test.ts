import { describe, expect, it } from 'vitest';
import type { Logger } from '../../../core/log.js';
import { silentLogger } from '../../../core/log.js';
import type { SourceEvent } from '../../../core/model/events.js';
import type { KubeService } from '../../../core/model/kube.js';
import { Planner, plannerConfigFrom, type PlannerConfig } from '../../../core/planner/planner.js';
import { resolveNodePortAddresses } from '../../../core/planner/plan-node.js';
import { Tracker } from '../../../core/tracker/tracker.js';
import { endpoint, makeNode, makeService, makeSlice, makeState, NODE, port } from '../../support/fixtures.js';
import { CONFIG, planOf } from './helpers.js';

/** A logger that records warn() calls. */
function recordingLogger(): { logger: Logger; warnings: unknown[] } {
  const warnings: unknown[] = [];
  const logger = {
    child: () => logger,
    warn: (obj: unknown) => warnings.push(obj),
    info: () => undefined,
    debug: () => undefined,
    error: () => undefined,
  } as unknown as Logger;
  return { logger, warnings };
}

describe('Snapshot node-level fields', () => {
  it('generation increases with every plan', () => {
    const p = new Planner(silentLogger());
    const state = makeState({});
    expect(p.plan(state, CONFIG).snapshot.generation).toBe(1);
    expect(p.plan(state, CONFIG).snapshot.generation).toBe(2);
  });

  it('takes labels, zone and node IPs (InternalIP first, then ExternalIP, per family) from our Node', () => {
    const node = makeNode({
      zone: 'zone-a',
      internalIPs: ['192.168.77.2', 'FD00:77::2'],
      externalIPs: ['198.51.100.2', '192.168.77.2', '2001:db8::2'],
    });
    const s = planOf({ node }).snapshot;
    expect(s.nodeName).toBe(NODE);
    expect(s.zone).toBe('zone-a');
    expect(s.nodeLabels['topology.kubernetes.io/zone']).toBe('zone-a');
    expect(s.nodeIPs).toEqual({
      IPv4: ['192.168.77.2', '198.51.100.2'],
      IPv6: ['fd00:77::2', '2001:db8::2'],
    });
  });

  it('without our Node: empty labels and IPs, no zone', () => {
    for (const s of [
      planOf({}).snapshot,
      planOf({ node: makeNode({ name: 'someone-else', zone: 'z' }) }).snapshot,
    ]) {
      expect(s.nodeLabels).toEqual({});
      expect(s.zone).toBeUndefined();
      expect(s.nodeIPs).toEqual({ IPv4: [], IPv6: [] });
    }
  });

  it('splits clusterCIDRs by family and normalizes them', () => {
    const s = planOf(
      {},
      {
        clusterCIDRs: ['10.244.0.0/16', ' fd00:10:244::/56 ', '10.245.1.1/16', 'garbage'],
        masqueradeAll: true,
      },
    ).snapshot;
    expect(s.clusterCIDRs).toEqual({ IPv4: ['10.244.0.0/16', '10.245.0.0/16'], IPv6: ['fd00:10:244::/56'] });
    expect(s.masqueradeAll).toBe(true);
  });

  it('--detect-local-mode: NodeCIDR takes the Node podCIDRs, interface modes set localInterface', () => {
    const node = {
      ...makeNode({}),
      spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24', 'fd00:10:244:7::/64', 'x'] },
    };
    const base = { clusterCIDRs: ['10.244.0.0/16'] };
    const mode = (
      m: 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix',
    ): { detectLocal: { mode: typeof m; bridgeInterface: string; interfaceNamePrefix: string } } => ({
      detectLocal: { mode: m, bridgeInterface: 'cbr0', interfaceNamePrefix: 'veth' },
    });
    const nodeCIDR = planOf({ node }, { ...base, ...mode('NodeCIDR') });
    expect(nodeCIDR.snapshot.clusterCIDRs).toEqual({ IPv4: ['10.244.7.0/24'], IPv6: ['fd00:10:244:7::/64'] });
    expect(nodeCIDR.snapshot.localInterface).toBeUndefined();
    expect(nodeCIDR.skips.map((k) => k.field)).toContain('spec.podCIDRs[2]');
    // only the old single-family field set
    const old = { ...makeNode({}), spec: { podCIDR: '10.244.8.0/24' } };
    expect(planOf({ node: old }, { ...base, ...mode('NodeCIDR') }).snapshot.clusterCIDRs.IPv4).toEqual([
      '10.244.8.0/24',
    ]);
    // no Node yet: nothing is local (kube-proxy's detector would not be ready either)
    expect(planOf({}, { ...base, ...mode('NodeCIDR') }).snapshot.clusterCIDRs).toEqual({
      IPv4: [],
      IPv6: [],
    });
    expect(planOf({ node }, { ...base, ...mode('ClusterCIDR') }).snapshot.clusterCIDRs.IPv4).toEqual([
      '10.244.0.0/16',
    ]);
    const bridge = planOf({ node }, { ...base, ...mode('BridgeInterface') }).snapshot;
    expect(bridge.clusterCIDRs).toEqual({ IPv4: [], IPv6: [] });
    expect(bridge.localInterface).toEqual({ name: 'cbr0', prefix: false });
    expect(planOf({ node }, { ...base, ...mode('InterfaceNamePrefix') }).snapshot.localInterface).toEqual({
      name: 'veth',
      prefix: true,
    });
    // a name no rule can carry (config validation refuses it): nothing is local
    const bad = planOf(
      { node },
      { ...base, detectLocal: { mode: 'BridgeInterface', bridgeInterface: 'br 0', interfaceNamePrefix: '' } },
    ).snapshot;
    expect(bad.localInterface).toBeUndefined();
    expect(bad.clusterCIDRs).toEqual({ IPv4: [], IPv6: [] });
  });

  it('families default to both, in canonical order', () => {
    expect(planOf({}).snapshot.families).toEqual(['IPv4', 'IPv6']);
    expect(planOf({}, { families: ['IPv6', 'IPv4', 'IPv6'] }).snapshot.families).toEqual(['IPv4', 'IPv6']);
    expect(planOf({}, { families: ['IPv6'] }).snapshot.families).toEqual(['IPv6']);
  });

  it('plannerConfigFrom maps a ProxyConfig', () => {
    const cfg = plannerConfigFrom({
      hostname: 'n1',
      clusterCIDRs: ['10.0.0.0/8'],
      masqueradeAll: true,
      nodePortAddresses: ['all'],
    } as never);
    expect(cfg).toEqual({
      nodeName: 'n1',
      clusterCIDRs: ['10.0.0.0/8'],
      masqueradeAll: true,
      nodePortAddresses: ['all'],
    });
  });
});

describe('nodePortAddresses', () => {
  const dual = { IPv4: ['192.168.77.2', '198.51.100.2'], IPv6: ['fd00:77::2'] };
  const v4only = { IPv4: ['192.168.77.2'], IPv6: [] };
  const none = { IPv4: [], IPv6: [] };
  const all = { kind: 'all' };
  const cidrs = (...c: string[]): { kind: 'cidrs'; cidrs: string[] } => ({ kind: 'cidrs', cidrs: c });

  it.each<[string, string[], typeof dual, unknown, unknown]>([
    ['default (empty) = primary IPs', [], dual, cidrs('192.168.77.2/32'), cidrs('fd00:77::2/128')],
    ['primary', ['primary'], dual, cidrs('192.168.77.2/32'), cidrs('fd00:77::2/128')],
    [
      'primary without an IPv6 node IP: all on IPv6 (kube-proxy)',
      ['primary'],
      v4only,
      cidrs('192.168.77.2/32'),
      all,
    ],
    ['primary without a Node: all', [], none, all, all],
    ['all', ['all'], dual, all, all],
    [
      'CIDRs of one family: the other gets none',
      ['192.168.77.0/24'],
      dual,
      cidrs('192.168.77.0/24'),
      cidrs(),
    ],
    [
      'CIDRs of both families, normalized',
      ['192.168.77.9/24', '10.0.0.0/8', 'fd00:77::/64', '10.0.0.0/8'],
      dual,
      cidrs('192.168.77.0/24', '10.0.0.0/8'),
      cidrs('fd00:77::/64'),
    ],
    [
      'a zero CIDR means all for its family',
      ['0.0.0.0/0', '192.168.77.0/24', 'fd00:77::/64'],
      dual,
      all,
      cidrs('fd00:77::/64'),
    ],
    ['::/0', ['::/0'], dual, cidrs(), all],
    ['invalid entries are ignored', ['nope', '192.168.77.0/24'], dual, cidrs('192.168.77.0/24'), cidrs()],
  ])('%s', (_what, values, nodeIPs, v4, v6) => {
    expect(resolveNodePortAddresses(values, nodeIPs).addresses).toEqual({ IPv4: v4, IPv6: v6 });
  });

  it('reaches the snapshot from the Node', () => {
    expect(planOf({ node: makeNode() }).snapshot.nodePortAddresses).toEqual({
      IPv4: cidrs('192.168.77.2/32'),
      IPv6: all,
    });
  });
});

describe('memoization by identity', () => {
  const web = makeService({ name: 'web', clusterIP: '10.96.0.10' });
  const api = makeService({
    name: 'api',
    clusterIP: '10.96.0.11',
    ports: [port('http', 80), port('grpc', 9000)],
  });
  const webSlice = makeSlice({ service: 'web', endpoints: ['10.244.1.5'] });
  const apiSlice = makeSlice({ service: 'api', endpoints: ['10.244.2.5'] });

  function tracked(): Tracker {
    const t = new Tracker(NODE);
    const ev = (e: SourceEvent): void => void t.apply(e);
    ev({ type: 'replace', resource: 'services', objects: [web, api] });
    ev({ type: 'replace', resource: 'endpointslices', objects: [webSlice, apiSlice] });
    ev({ type: 'replace', resource: 'nodes', objects: [makeNode({ zone: 'zone-a' })] });
    return t;
  }

  it('the same state gives the very same ServicePortPlan objects', () => {
    const t = tracked();
    const p = new Planner(silentLogger());
    const a = p.plan(t.state(), CONFIG).snapshot;
    const b = p.plan(t.state(), CONFIG).snapshot;
    expect(b).not.toBe(a);
    expect(a.servicePorts.size).toBe(3);
    for (const [id, plan] of b.servicePorts) expect(plan).toBe(a.servicePorts.get(id));
  });

  it('a change to one Service re-plans only that Service', () => {
    const t = tracked();
    const p = new Planner(silentLogger());
    const a = p.plan(t.state(), CONFIG).snapshot;
    t.apply({
      type: 'upsert',
      resource: 'services',
      object: makeService({
        name: 'api',
        clusterIP: '10.96.0.12',
        ports: [port('http', 80), port('grpc', 9000)],
      }),
    });
    const b = p.plan(t.state(), CONFIG).snapshot;
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/web:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')).not.toBe(
      a.servicePorts.get('default/api:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')?.clusterIP).toBe('10.96.0.12');
  });

  it('a slice change re-plans only its Service', () => {
    const t = tracked();
    const p = new Planner(silentLogger());
    const a = p.plan(t.state(), CONFIG).snapshot;
    t.apply({
      type: 'upsert',
      resource: 'endpointslices',
      object: makeSlice({ service: 'web', endpoints: ['10.244.1.5', '10.244.1.6'] }),
    });
    const b = p.plan(t.state(), CONFIG).snapshot;
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')).not.toBe(
      a.servicePorts.get('default/web:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/api:http/TCP/IPv4'),
    );
  });

  it('a new object with equal meaning keeps the old plans (no delta for metadata-only changes)', () => {
    const p = new Planner(silentLogger());
    const a = p.plan(makeState({ services: [web], slices: [webSlice] }), CONFIG).snapshot;
    const relabelled: KubeService = {
      ...structuredClone(web),
      metadata: { ...web.metadata, labels: { team: 'x' } },
    };
    const b = p.plan(
      makeState({ services: [relabelled], slices: [structuredClone(webSlice)] }),
      CONFIG,
    ).snapshot;
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/web:http/TCP/IPv4'),
    );
  });

  it('one port of a Service changing keeps the other port plan', () => {
    const p = new Planner(silentLogger());
    const a = p.plan(makeState({ services: [api], slices: [apiSlice] }), CONFIG).snapshot;
    const api2 = makeService({
      name: 'api',
      clusterIP: '10.96.0.11',
      ports: [port('http', 80), port('grpc', 9001)],
    });
    const b = p.plan(makeState({ services: [api2], slices: [apiSlice] }), CONFIG).snapshot;
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/api:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:grpc/TCP/IPv4')).not.toBe(
      a.servicePorts.get('default/api:grpc/TCP/IPv4'),
    );
  });

  it('a zone change re-plans, but plans without hints stay the same objects', () => {
    const hinted = makeSlice({
      service: 'api',
      endpoints: [
        endpoint('10.244.2.5', { zoneHints: ['zone-a'] }),
        endpoint('10.244.3.5', { zoneHints: ['zone-b'] }),
      ],
    });
    const p = new Planner(silentLogger());
    const a = p.plan(
      makeState({ services: [web, api], slices: [webSlice, hinted], node: makeNode({ zone: 'zone-a' }) }),
      CONFIG,
    ).snapshot;
    const b = p.plan(
      makeState({ services: [web, api], slices: [webSlice, hinted], node: makeNode({ zone: 'zone-b' }) }),
      CONFIG,
    ).snapshot;
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/web:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')).not.toBe(
      a.servicePorts.get('default/api:http/TCP/IPv4'),
    );
    expect(b.servicePorts.get('default/api:http/TCP/IPv4')?.clusterEndpoints.map((e) => e.ip)).toEqual([
      '10.244.3.5',
    ]);
  });

  it('a nodeName change re-plans locality', () => {
    const p = new Planner(silentLogger());
    const state = makeState({
      services: [web],
      slices: [makeSlice({ service: 'web', endpoints: [endpoint('10.244.1.5', { nodeName: NODE })] })],
    });
    const a = p.plan(state, CONFIG).snapshot;
    const b = p.plan(state, { ...CONFIG, nodeName: 'other' }).snapshot;
    expect(a.servicePorts.get('default/web:http/TCP/IPv4')?.allEndpoints[0]?.isLocal).toBe(true);
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')?.allEndpoints[0]?.isLocal).toBe(false);
  });

  it('config outside the plans (masqueradeAll, clusterCIDRs) keeps plan identity', () => {
    const p = new Planner(silentLogger());
    const state = makeState({ services: [web], slices: [webSlice] });
    const a = p.plan(state, CONFIG).snapshot;
    const b = p.plan(state, { ...CONFIG, masqueradeAll: true, clusterCIDRs: [] }).snapshot;
    expect(b.servicePorts.get('default/web:http/TCP/IPv4')).toBe(
      a.servicePorts.get('default/web:http/TCP/IPv4'),
    );
  });

  it('deleted Services disappear from the snapshot', () => {
    const p = new Planner(silentLogger());
    p.plan(makeState({ services: [web, api] }), CONFIG);
    const b = p.plan(makeState({ services: [web] }), CONFIG).snapshot;
    expect([...b.servicePorts.keys()]).toEqual(['default/web:http/TCP/IPv4']);
  });
});

describe('skip reporting', () => {
  const badSvc = makeService({ name: 'bad', externalIPs: ['nope'] });
  const cfg: PlannerConfig = CONFIG;

  it('logs each distinct skip once, returns all skips every time', () => {
    const { logger, warnings } = recordingLogger();
    const p = new Planner(logger);
    const state = makeState({ services: [badSvc] });
    const r1 = p.plan(state, cfg);
    expect(r1.skips).toHaveLength(1);
    expect(r1.newSkips).toEqual(r1.skips);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      kind: 'Service',
      object: 'default/bad',
      field: 'spec.externalIPs[0]',
    });
    const r2 = p.plan(state, cfg);
    expect(r2.skips).toEqual(r1.skips);
    expect(r2.newSkips).toEqual([]);
    expect(warnings).toHaveLength(1);
  });

  it('reports again when the object changes, and when a problem comes back', () => {
    const { logger, warnings } = recordingLogger();
    const p = new Planner(logger);
    p.plan(makeState({ services: [badSvc] }), cfg);
    const changed = makeService({ name: 'bad', externalIPs: ['nope'], clusterIP: '10.96.0.99' });
    const r = p.plan(makeState({ services: [changed] }), cfg);
    expect(r.newSkips).toHaveLength(1);
    expect(warnings).toHaveLength(2);
    // Fixed, then broken again (by the same old object): reported again.
    p.plan(makeState({ services: [makeService({ name: 'bad' })] }), cfg);
    expect(p.plan(makeState({ services: [changed] }), cfg).newSkips).toHaveLength(1);
  });

  it('a slice problem seen by several ports and families is one skip', () => {
    const svc = makeService({
      clusterIPs: ['10.96.0.10', 'fd00::a'],
      ports: [port('http', 80), port('https', 443)],
    });
    const slice = makeSlice({ addressType: 'Bogus' });
    const r = planOf({ services: [svc], slices: [slice] });
    expect(r.skips).toEqual([
      {
        kind: 'EndpointSlice',
        key: 'default/web-v4',
        field: 'addressType',
        reason: expect.stringContaining('Bogus'),
      },
    ]);
  });

  it('memoized Services still return their skips', () => {
    const p = new Planner(silentLogger());
    const state = makeState({ services: [badSvc] });
    p.plan(state, cfg);
    expect(p.plan(state, cfg).skips).toHaveLength(1);
  });

  it('invalid configuration is logged once', () => {
    const { logger, warnings } = recordingLogger();
    const p = new Planner(logger);
    p.plan(makeState({}), { ...cfg, clusterCIDRs: ['bad'] });
    p.plan(makeState({}), { ...cfg, clusterCIDRs: ['bad'] });
    expect(warnings).toEqual([{ field: 'clusterCIDRs', value: 'bad' }]);
  });

  it('an interface name no rule can carry is logged once', () => {
    const { logger, warnings } = recordingLogger();
    const p = new Planner(logger);
    const detectLocal = {
      mode: 'InterfaceNamePrefix',
      bridgeInterface: '',
      interfaceNamePrefix: 'veth*',
    } as const;
    p.plan(makeState({}), { ...cfg, detectLocal });
    p.plan(makeState({}), { ...cfg, detectLocal });
    expect(warnings).toEqual([{ field: 'detectLocal', value: 'veth*' }]);
  });
});
