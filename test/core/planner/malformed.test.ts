/**
 * Every kind of malformed input is skipped at the smallest grain, reported as a PlanSkip, and
 * leaves every other Service exactly as it would be without it.
 */
import { describe, expect, it } from 'vitest';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../../core/model/kube.js';
import type { PlanSkip } from '../../../core/planner/planner.js';
import { endpoint, makeNode, makeService, makeSlice, NODE, port, slicePort } from '../../support/fixtures.js';
import { addrs, planOf } from './helpers.js';

const good = makeService({
  name: 'good',
  clusterIP: '10.96.0.20',
  type: 'NodePort',
  ports: [port('http', 80, { nodePort: 30080 })],
});
const goodSlice = makeSlice({
  service: 'good',
  endpoints: [endpoint('10.244.1.20', { nodeName: NODE }), '10.244.2.20'],
});
const BAD_ID = 'default/bad:http/TCP/IPv4';

function bad(spec: Record<string, unknown> = {}, status?: KubeService['status']): KubeService {
  return makeService({
    name: 'bad',
    clusterIP: '10.96.0.30',
    ...(spec as object),
    ...(status ? { status } : {}),
  });
}
function badSlice(over: Partial<KubeEndpointSlice> = {}): KubeEndpointSlice {
  return { ...makeSlice({ service: 'bad', endpoints: ['10.244.3.1'] }), ...over };
}

interface Case {
  what: string;
  service: KubeService;
  slices?: KubeEndpointSlice[];
  /** Expected skips (kind, field) for the bad objects. */
  skips: Pick<PlanSkip, 'kind' | 'field'>[];
  /** What must hold for the bad Service's own plans. */
  check: (ids: string[], plan: (id: string) => ReturnType<typeof getPlan>) => void;
}

function getPlan(
  r: ReturnType<typeof planOf>,
  id: string,
): NonNullable<ReturnType<typeof r.snapshot.servicePorts.get>> {
  const p = r.snapshot.servicePorts.get(id);
  if (!p) throw new Error(`missing ${id}`);
  return p;
}

const noPlans = (ids: string[]): void => expect(ids).toEqual([]);

const cases: Case[] = [
  // Service-level: the whole Service goes.
  {
    what: 'ClusterIP not an IP',
    service: bad({ clusterIP: '10.96.0.300', clusterIPs: ['10.96.0.300'] }),
    skips: [{ kind: 'Service', field: 'spec.clusterIPs[0]' }],
    check: noPlans,
  },
  {
    what: 'second clusterIPs entry not an IP',
    service: bad({ clusterIPs: ['10.96.0.30', 'fd00::zz'] }),
    skips: [{ kind: 'Service', field: 'spec.clusterIPs[1]' }],
    check: noPlans,
  },
  {
    what: 'legacy clusterIP not an IP',
    service: (() => {
      const s = bad({ clusterIP: 'ten' });
      delete s.spec!.clusterIPs;
      return s;
    })(),
    skips: [{ kind: 'Service', field: 'spec.clusterIP' }],
    check: noPlans,
  },
  {
    what: 'clusterIP a number',
    service: bad({ clusterIP: 42, clusterIPs: [42] }),
    skips: [{ kind: 'Service', field: 'spec.clusterIPs[0]' }],
    check: noPlans,
  },
  {
    what: 'unknown type',
    service: bad({ type: 'Ingress' }),
    skips: [{ kind: 'Service', field: 'spec.type' }],
    check: noPlans,
  },
  {
    what: 'no spec',
    service: (() => {
      const s = bad();
      delete s.spec;
      return s;
    })(),
    skips: [{ kind: 'Service', field: 'spec' }],
    check: noPlans,
  },
  {
    what: 'spec is a string',
    service: { ...bad(), spec: 'oops' as unknown as KubeService['spec'] },
    skips: [{ kind: 'Service', field: 'spec' }],
    check: noPlans,
  },
  {
    what: 'no ports',
    service: bad({ ports: [] }),
    skips: [{ kind: 'Service', field: 'spec.ports' }],
    check: noPlans,
  },
  {
    what: 'ports not a list',
    service: bad({ ports: 'http' }),
    skips: [{ kind: 'Service', field: 'spec.ports' }],
    check: noPlans,
  },
  // Service: an extra ClusterIP of one family is only an ignored entry.
  {
    what: 'two IPv4 clusterIPs',
    service: bad({ clusterIPs: ['10.96.0.30', '10.96.0.31'] }),
    skips: [{ kind: 'Service', field: 'spec.clusterIPs[1]' }],
    check: (ids, plan) => {
      expect(ids).toEqual([BAD_ID]);
      expect(plan(BAD_ID).clusterIP).toBe('10.96.0.30');
    },
  },
  // Port-level: that port goes, the others stay.
  ...(
    [
      ['port not an object', 'http-bogus', 'spec.ports[1]'],
      ['unknown protocol', { name: 'x', port: 81, protocol: 'tcp' }, 'spec.ports[1].protocol'],
      ['port 0', { name: 'x', port: 0 }, 'spec.ports[1].port'],
      ['port 70000', { name: 'x', port: 70000 }, 'spec.ports[1].port'],
      ['port missing', { name: 'x' }, 'spec.ports[1].port'],
      ['port as a string', { name: 'x', port: '81' }, 'spec.ports[1].port'],
      ['port fractional', { name: 'x', port: 80.5 }, 'spec.ports[1].port'],
      ['duplicate port/protocol', { name: 'again', port: 80, protocol: 'TCP' }, 'spec.ports[1]'],
      ['duplicate name/protocol', { name: 'http', port: 81, protocol: 'TCP' }, 'spec.ports[1]'],
    ] as [string, unknown, string][]
  ).map(([what, p, field]): Case => ({
    what,
    service: bad({ ports: [port('http', 80), p, port('metrics', 9090)] }),
    skips: [{ kind: 'Service', field }],
    check: (ids) => expect(ids).toEqual(['default/bad:http/TCP/IPv4', 'default/bad:metrics/TCP/IPv4']),
  })),
  {
    what: 'same port number with another protocol is fine',
    service: bad({ ports: [port('dns', 53), port('dns-udp', 53, { protocol: 'UDP' })] }),
    skips: [],
    check: (ids) => expect(ids).toEqual(['default/bad:dns-udp/UDP/IPv4', 'default/bad:dns/TCP/IPv4']),
  },
  // Field-level: only that value goes.
  {
    what: 'nodePort out of range',
    service: bad({ type: 'NodePort', ports: [port('http', 80, { nodePort: 99999 })] }),
    skips: [{ kind: 'Service', field: 'spec.ports[0].nodePort' }],
    check: (_ids, plan) => expect(plan(BAD_ID).nodePort).toBeUndefined(),
  },
  {
    what: 'externalIP not an IP',
    service: bad({ externalIPs: ['172.16.77.50', 'nope', '172.16.77.51'] }),
    skips: [{ kind: 'Service', field: 'spec.externalIPs[1]' }],
    check: (_ids, plan) => expect(plan(BAD_ID).externalIPs).toEqual(['172.16.77.50', '172.16.77.51']),
  },
  {
    what: 'externalIPs not a list',
    service: bad({ externalIPs: '172.16.77.50' }),
    skips: [{ kind: 'Service', field: 'spec.externalIPs' }],
    check: (_ids, plan) => {
      expect(plan(BAD_ID).externalIPs).toEqual([]);
      expect(plan(BAD_ID).externalPolicyLocal).toBe(false);
    },
  },
  {
    what: 'LB ingress IP not an IP',
    service: bad(
      { type: 'LoadBalancer' },
      { loadBalancer: { ingress: [{ ip: '198.51.100.300' }, { ip: '198.51.100.7' }] } },
    ),
    skips: [{ kind: 'Service', field: 'status.loadBalancer.ingress[0].ip' }],
    check: (_ids, plan) => expect(plan(BAD_ID).loadBalancerIPs).toEqual(['198.51.100.7']),
  },
  {
    what: 'loadBalancerSourceRange not a CIDR',
    service: bad({
      type: 'LoadBalancer',
      loadBalancerSourceRanges: ['203.0.113.0/25', '203.0.113.0/33', '192.168.77.1', 7],
    }),
    skips: [
      { kind: 'Service', field: 'spec.loadBalancerSourceRanges[1]' },
      { kind: 'Service', field: 'spec.loadBalancerSourceRanges[2]' },
      { kind: 'Service', field: 'spec.loadBalancerSourceRanges[3]' },
    ],
    check: (_ids, plan) => expect(plan(BAD_ID).loadBalancerSourceRanges).toEqual(['203.0.113.0/25']),
  },
  {
    what: 'affinity timeout out of range',
    service: bad({
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: -5 } },
    }),
    skips: [{ kind: 'Service', field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds' }],
    check: (_ids, plan) => expect(plan(BAD_ID).sessionAffinity).toEqual({ timeoutSeconds: 10800 }),
  },
  {
    what: 'unknown externalTrafficPolicy',
    service: bad({ type: 'NodePort', externalTrafficPolicy: 'Nearby' }),
    skips: [{ kind: 'Service', field: 'spec.externalTrafficPolicy' }],
    check: (_ids, plan) => expect(plan(BAD_ID).externalPolicyLocal).toBe(false),
  },
  {
    what: 'unknown internalTrafficPolicy',
    service: bad({ internalTrafficPolicy: 'local' }),
    skips: [{ kind: 'Service', field: 'spec.internalTrafficPolicy' }],
    check: (_ids, plan) => expect(plan(BAD_ID).internalPolicyLocal).toBe(false),
  },
  {
    what: 'LoadBalancer Local without healthCheckNodePort',
    service: bad({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' }),
    skips: [{ kind: 'Service', field: 'spec.healthCheckNodePort' }],
    check: (_ids, plan) => {
      expect(plan(BAD_ID).healthCheckNodePort).toBeUndefined();
      expect(plan(BAD_ID).externalPolicyLocal).toBe(true);
    },
  },
  // EndpointSlices.
  {
    what: 'slice with unknown addressType',
    service: bad(),
    slices: [
      badSlice({ addressType: 'IPv5' }),
      makeSlice({ name: 'bad-ok', service: 'bad', endpoints: ['10.244.3.2'] }),
    ],
    skips: [{ kind: 'EndpointSlice', field: 'addressType' }],
    check: (_ids, plan) => expect(addrs(plan(BAD_ID).allEndpoints)).toEqual(['10.244.3.2:8080']),
  },
  {
    what: 'slice without addressType',
    service: bad(),
    slices: [
      (() => {
        const s = badSlice();
        delete s.addressType;
        return s;
      })(),
    ],
    skips: [{ kind: 'EndpointSlice', field: 'addressType' }],
    check: (_ids, plan) => expect(plan(BAD_ID).internal).toBe('reject'),
  },
  ...(
    [
      ['slice port number invalid', [slicePort('http', 0)], 'ports[0].port'],
      ['slice port protocol unknown', [slicePort('http', 8080, 'ICMP')], 'ports[0].protocol'],
      ['slice port not an object', [null], 'ports[0]'],
    ] as [string, unknown[], string][]
  ).map(([what, ports, field]): Case => ({
    what,
    service: bad({ ports: [port('http', 80), port('metrics', 9090)] }),
    slices: [badSlice({ ports: [...ports, slicePort('metrics', 9100)] as KubeEndpointSlice['ports'] })],
    skips: [{ kind: 'EndpointSlice', field }],
    check: (_ids, plan) => {
      expect(plan(BAD_ID).allEndpoints).toEqual([]);
      expect(addrs(plan('default/bad:metrics/TCP/IPv4').allEndpoints)).toEqual(['10.244.3.1:9100']);
    },
  })),
  {
    what: 'duplicate slice port',
    service: bad(),
    slices: [badSlice({ ports: [slicePort('http', 8080), slicePort('http', 9999)] })],
    skips: [{ kind: 'EndpointSlice', field: 'ports[1]' }],
    check: (_ids, plan) => expect(addrs(plan(BAD_ID).allEndpoints)).toEqual(['10.244.3.1:8080']),
  },
  ...(
    [
      ['endpoint without addresses', { addresses: [] }, 'endpoints[0].addresses'],
      ['endpoint addresses missing', { conditions: {} }, 'endpoints[0].addresses'],
      ['endpoint address not an IP', { addresses: ['10.244.3.999'] }, 'endpoints[0].addresses[0]'],
      ['endpoint address of the other family', { addresses: ['fd00::1'] }, 'endpoints[0].addresses[0]'],
      ['endpoint address a number', { addresses: [7] }, 'endpoints[0].addresses[0]'],
      ['endpoint not an object', 'x', 'endpoints[0]'],
    ] as [string, unknown, string][]
  ).map(([what, ep, field]): Case => ({
    what,
    service: bad(),
    slices: [badSlice({ endpoints: [ep, endpoint('10.244.3.2')] as KubeEndpointSlice['endpoints'] })],
    skips: [{ kind: 'EndpointSlice', field }],
    check: (_ids, plan) => expect(addrs(plan(BAD_ID).allEndpoints)).toEqual(['10.244.3.2:8080']),
  })),
  {
    what: 'garbage conditions and hints are read as absent',
    service: bad(),
    slices: [
      badSlice({
        endpoints: [
          { addresses: ['10.244.3.1'], conditions: { ready: 'yes' }, hints: { forZones: 'zone-a' } } as never,
        ],
      }),
    ],
    skips: [],
    check: (_ids, plan) => expect(plan(BAD_ID).allEndpoints[0]).toMatchObject({ ready: true, serving: true }),
  },
];

describe('malformed input', () => {
  const alone = planOf({ services: [good], slices: [goodSlice], node: makeNode() });
  const goodPlans = [...alone.snapshot.servicePorts.values()];

  it('the baseline plans the good Service', () => {
    expect(goodPlans.map((p) => p.id)).toEqual(['default/good:http/TCP/IPv4']);
    expect(alone.skips).toEqual([]);
  });

  it.each(cases)('$what', (c) => {
    const r = planOf({
      services: [c.service, good],
      slices: [...(c.slices ?? [badSlice()]), goodSlice],
      node: makeNode(),
    });
    // The good Service is exactly as without the bad one.
    const others = [...r.snapshot.servicePorts.values()].filter((p) => p.serviceKey === 'default/good');
    expect(others).toEqual(goodPlans);
    // The expected skips, nothing else.
    expect(
      r.skips.map((s) => ({ kind: s.kind, field: s.field })).sort((a, b) => a.field.localeCompare(b.field)),
    ).toEqual([...c.skips].sort((a, b) => a.field.localeCompare(b.field)));
    for (const s of r.skips) {
      expect(s.key.startsWith('default/bad')).toBe(true);
      expect(s.reason.length).toBeGreaterThan(5);
    }
    const ids = [...r.snapshot.servicePorts.keys()].filter((id) => id.startsWith('default/bad:')).sort();
    c.check(ids, (id) => getPlan(r, id));
  });

  it('a Service that is not an object at all does not break the plan', () => {
    const junk = {
      metadata: { name: 'junk', namespace: 'default' },
      spec: { ports: [null, 5, 'x'], clusterIPs: [{}] },
    } as unknown as KubeService;
    const r = planOf({ services: [junk, good], slices: [goodSlice] });
    expect([...r.snapshot.servicePorts.keys()]).toEqual(['default/good:http/TCP/IPv4']);
    expect(r.skips.map((s) => s.field)).toEqual(['spec.clusterIPs[0]']);
  });

  it('ServicePort ids that collide (names the API refuses) keep the first', () => {
    const a = makeService({ name: 'x', ports: [port('p:q', 80)] });
    const b = makeService({ name: 'x:p', clusterIP: '10.96.0.40', ports: [port('q', 81)] });
    const r = planOf({ services: [a, b, good], slices: [goodSlice] });
    expect(r.snapshot.servicePorts.get('default/x:p:q/TCP/IPv4')?.clusterIP).toBe('10.96.0.10');
    expect(r.skips).toEqual([
      {
        kind: 'Service',
        key: 'default/x:p',
        field: 'metadata.name',
        reason: expect.stringContaining('already taken'),
      },
    ]);
    expect([...r.snapshot.servicePorts.values()].filter((p) => p.serviceKey === 'default/good')).toEqual(
      goodPlans,
    );
  });

  it('a Node address that is not an IP is skipped; the others are kept', () => {
    const node: KubeNode = makeNode({ internalIPs: ['192.168.77.999', '192.168.77.2'] });
    const r = planOf({ services: [good], slices: [goodSlice], node });
    expect(r.snapshot.nodeIPs.IPv4).toEqual(['192.168.77.2']);
    expect(r.skips).toEqual([
      { kind: 'Node', key: NODE, field: 'status.addresses[0].address', reason: expect.any(String) },
    ]);
    expect([...r.snapshot.servicePorts.values()]).toEqual(goodPlans);
  });
});
