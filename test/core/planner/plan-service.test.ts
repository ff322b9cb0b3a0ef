/**
 * Service semantics, one table per topic. Test IP plan: pods 10.244.0.0/16, ClusterIPs
 * 10.96.0.0/16, node 192.168.77.2, external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import { describe, expect, it } from 'vitest';
import type { KubeService } from '../../../core/model/kube.js';
import {
  endpoint,
  makeNode,
  makeService,
  makeSlice,
  NODE,
  OTHER_NODE,
  port,
  slicePort,
  type EndpointOptions,
} from '../../support/fixtures.js';
import { addrs, planOf, portPlan } from './helpers.js';

const ID = 'default/web:http/TCP/IPv4';

describe('ClusterIPs and families', () => {
  it('plans one ServicePortPlan per port with every field filled', () => {
    const r = planOf({
      services: [makeService()],
      slices: [
        makeSlice({ endpoints: [endpoint('10.244.1.5', { nodeName: NODE, zone: 'z1', pod: 'web-1' })] }),
      ],
    });
    expect([...r.snapshot.servicePorts.keys()]).toEqual([ID]);
    const ep = {
      ip: '10.244.1.5',
      port: 8080,
      ready: true,
      serving: true,
      terminating: false,
      isLocal: true,
      nodeName: NODE,
      zone: 'z1',
      targetName: 'web-1',
    };
    expect(portPlan(r, ID)).toEqual({
      id: ID,
      serviceKey: 'default/web',
      namespace: 'default',
      name: 'web',
      portName: 'http',
      protocol: 'TCP',
      family: 'IPv4',
      clusterIP: '10.96.0.10',
      port: 80,
      externalIPs: [],
      loadBalancerIPs: [],
      loadBalancerSourceRanges: [],
      internalPolicyLocal: false,
      externalPolicyLocal: false,
      clusterEndpoints: [ep],
      localEndpoints: [ep],
      internalEndpoints: [ep],
      externalEndpoints: [ep],
      shortCircuitEndpoints: [],
      reachableEndpoints: [ep],
      allEndpoints: [ep],
      internal: 'forward',
      external: 'forward',
    });
    expect(r.skips).toEqual([]);
  });

  it('dual-stack: a plan per (port, family), each with its family ClusterIP and slices', () => {
    const svc = makeService({
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10', 'FD00:10:96::000a'],
      ports: [port('http', 80), port('dns', 53, { protocol: 'UDP' })],
    });
    const r = planOf({
      services: [svc],
      slices: [
        makeSlice({
          ports: [slicePort('http', 8080), slicePort('dns', 5353, 'UDP')],
          endpoints: ['10.244.1.5'],
        }),
        makeSlice({
          addressType: 'IPv6',
          ports: [slicePort('http', 8080), slicePort('dns', 5353, 'UDP')],
          endpoints: ['fd00:10:244::5'],
        }),
      ],
    });
    expect([...r.snapshot.servicePorts.keys()].sort()).toEqual([
      'default/web:dns/UDP/IPv4',
      'default/web:dns/UDP/IPv6',
      'default/web:http/TCP/IPv4',
      'default/web:http/TCP/IPv6',
    ]);
    expect(portPlan(r, 'default/web:http/TCP/IPv6').clusterIP).toBe('fd00:10:96::a');
    expect(addrs(portPlan(r, 'default/web:http/TCP/IPv6').clusterEndpoints)).toEqual([
      '[fd00:10:244::5]:8080',
    ]);
    expect(addrs(portPlan(r, 'default/web:dns/UDP/IPv4').clusterEndpoints)).toEqual(['10.244.1.5:5353']);
  });

  it('uses spec.clusterIP when clusterIPs is absent (older objects)', () => {
    const svc = makeService({ clusterIP: '10.96.0.77', clusterIPs: undefined });
    delete svc.spec!.clusterIPs;
    expect(portPlan(planOf({ services: [svc] }), ID).clusterIP).toBe('10.96.0.77');
  });

  it('plans only the configured families', () => {
    const svc = makeService({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] });
    expect([...planOf({ services: [svc] }, { families: ['IPv6'] }).snapshot.servicePorts.keys()]).toEqual([
      'default/web:http/TCP/IPv6',
    ]);
    expect([
      ...planOf(
        { services: [makeService({ clusterIPs: ['fd00:10:96::a'], clusterIP: 'fd00:10:96::a' })] },
        { families: ['IPv4'] },
      ).snapshot.servicePorts.keys(),
    ]).toEqual([]);
  });

  it.each<[string, Partial<KubeService['spec']>]>([
    ['ExternalName', { type: 'ExternalName', externalName: 'example.com' }],
    ['headless (None)', { clusterIP: 'None', clusterIPs: ['None'] }],
    ['empty clusterIP', { clusterIP: '', clusterIPs: [] }],
    ['no clusterIP at all', { clusterIP: undefined, clusterIPs: undefined }],
  ])('%s Services are ignored without a skip', (_what, spec) => {
    const svc = makeService();
    Object.assign(svc.spec!, spec);
    const r = planOf({ services: [svc], slices: [makeSlice({ endpoints: ['10.244.1.5'] })] });
    expect(r.snapshot.servicePorts.size).toBe(0);
    expect(r.skips).toEqual([]);
  });

  it.each(['ClusterIP', 'NodePort', 'LoadBalancer', undefined])('type %s is proxied', (type) => {
    const svc = makeService({ ...(type ? { type } : {}), ports: [port('http', 80, { nodePort: 30080 })] });
    if (!type) delete svc.spec!.type;
    const p = portPlan(planOf({ services: [svc] }), ID);
    expect(p.nodePort).toBe(type === 'NodePort' || type === 'LoadBalancer' ? 30080 : undefined);
  });
});

describe('ports and protocols', () => {
  it.each([
    ['TCP', 'TCP'],
    ['UDP', 'UDP'],
    ['SCTP', 'SCTP'],
    [undefined, 'TCP'],
    ['', 'TCP'],
  ])('protocol %j plans as %s', (protocol, expected) => {
    const p = port('http', 80);
    if (protocol === undefined) delete p.protocol;
    else p.protocol = protocol;
    const r = planOf({
      services: [makeService({ ports: [p] })],
      slices: [makeSlice({ ports: [slicePort('http', 8080, expected)], endpoints: ['10.244.1.5'] })],
    });
    const plan = portPlan(r, `default/web:http/${expected}/IPv4`);
    expect(plan.protocol).toBe(expected);
    expect(addrs(plan.clusterEndpoints)).toEqual(['10.244.1.5:8080']);
  });

  it("a single unnamed port has portName ''", () => {
    const r = planOf({
      services: [makeService({ ports: [{ port: 80, targetPort: 8080 }] })],
      slices: [makeSlice({ ports: [{ port: 8080, protocol: 'TCP', name: '' }], endpoints: ['10.244.1.5'] })],
    });
    const p = portPlan(r, 'default/web:/TCP/IPv4');
    expect(p.portName).toBe('');
    expect(addrs(p.clusterEndpoints)).toEqual(['10.244.1.5:8080']);
  });

  it('a slice port without a name matches the unnamed port (lenient for YAML)', () => {
    const r = planOf({
      services: [makeService({ ports: [{ port: 80 }] })],
      slices: [makeSlice({ ports: [{ port: 8080 }], endpoints: ['10.244.1.5'] })],
    });
    expect(addrs(portPlan(r, 'default/web:/TCP/IPv4').clusterEndpoints)).toEqual(['10.244.1.5:8080']);
  });

  it('named target ports resolve through the slice port of the same name and protocol', () => {
    const svc = makeService({
      ports: [
        port('http', 80, { targetPort: 'web' }),
        port('metrics', 9090, { targetPort: 'prom' }),
        port('dns', 53, { protocol: 'UDP' }),
      ],
    });
    const r = planOf({
      services: [svc],
      slices: [
        // Two slices during a rollout: the named port points at different numbers.
        makeSlice({
          name: 'web-1',
          ports: [slicePort('http', 8080), slicePort('metrics', 9100), slicePort('dns', 53, 'TCP')],
          endpoints: ['10.244.1.5'],
        }),
        makeSlice({ name: 'web-2', ports: [slicePort('http', 8081)], endpoints: ['10.244.1.6'] }),
      ],
    });
    expect(addrs(portPlan(r, 'default/web:http/TCP/IPv4').clusterEndpoints)).toEqual([
      '10.244.1.5:8080',
      '10.244.1.6:8081',
    ]);
    expect(addrs(portPlan(r, 'default/web:metrics/TCP/IPv4').clusterEndpoints)).toEqual(['10.244.1.5:9100']);
    // The slice's dns port is TCP: no match for the UDP service port.
    const dns = portPlan(r, 'default/web:dns/UDP/IPv4');
    expect(dns.allEndpoints).toEqual([]);
    expect(dns.internal).toBe('reject');
  });

  it('nodePort only on NodePort and LoadBalancer; absent when not allocated', () => {
    const lbNoNodePorts = makeService({ type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
    expect(portPlan(planOf({ services: [lbNoNodePorts] }), ID).nodePort).toBeUndefined();
    const np = makeService({ type: 'NodePort', ports: [port('http', 80, { nodePort: 30080 })] });
    expect(portPlan(planOf({ services: [np] }), ID).nodePort).toBe(30080);
    const zero = makeService({ type: 'NodePort', ports: [port('http', 80, { nodePort: 0 })] });
    const r = planOf({ services: [zero] });
    expect(portPlan(r, ID).nodePort).toBeUndefined();
    expect(r.skips).toEqual([]);
  });
});

describe('external addresses', () => {
  it('externalIPs of the family, normalized and de-duplicated', () => {
    const svc = makeService({
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      externalIPs: ['172.16.77.50', '2001:DB8::50', '172.16.77.50', '172.016.77.51'],
    });
    const r = planOf({ services: [svc] });
    expect(portPlan(r, ID).externalIPs).toEqual(['172.16.77.50', '172.16.77.51']);
    expect(portPlan(r, 'default/web:http/TCP/IPv6').externalIPs).toEqual(['2001:db8::50']);
  });

  it('LB ingress IPs: hostname-only and ipMode Proxy are left out', () => {
    const svc = makeService({
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      status: {
        loadBalancer: {
          ingress: [
            { ip: '198.51.100.7' },
            { ip: '198.51.100.8', ipMode: 'VIP' },
            { ip: '198.51.100.9', ipMode: 'Proxy' },
            { hostname: 'lb.example.com' },
            { ip: '2001:db8::7' },
          ],
        },
      },
    });
    const r = planOf({ services: [svc] });
    expect(portPlan(r, ID).loadBalancerIPs).toEqual(['198.51.100.7', '198.51.100.8']);
    expect(portPlan(r, 'default/web:http/TCP/IPv6').loadBalancerIPs).toEqual(['2001:db8::7']);
    expect(r.skips).toEqual([]);
  });

  it('loadBalancerSourceRanges: trimmed, normalized, per family', () => {
    const svc = makeService({
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      loadBalancerSourceRanges: [' 203.0.113.0/25 ', '192.168.77.1/32', '2001:db8::1/64', '203.0.113.5/25'],
    });
    const r = planOf({ services: [svc] });
    expect(portPlan(r, ID).loadBalancerSourceRanges).toEqual(['203.0.113.0/25', '192.168.77.1/32']);
    expect(portPlan(r, 'default/web:http/TCP/IPv6').loadBalancerSourceRanges).toEqual(['2001:db8::/64']);
  });
});

describe('session affinity', () => {
  it.each<[string, Partial<KubeService['spec']>, number | undefined, boolean]>([
    ['None', { sessionAffinity: 'None' }, undefined, false],
    ['unset', {}, undefined, false],
    ['ClientIP without config: 10800', { sessionAffinity: 'ClientIP' }, 10800, false],
    [
      'ClientIP 300',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } } },
      300,
      false,
    ],
    [
      'ClientIP 1',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } } },
      1,
      false,
    ],
    [
      'ClientIP 86400',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } } },
      86400,
      false,
    ],
    [
      'ClientIP 0 -> default',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } },
      10800,
      true,
    ],
    [
      'ClientIP 86401 -> default',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } } },
      10800,
      true,
    ],
    [
      'ClientIP 1.5 -> default',
      { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1.5 } } },
      10800,
      true,
    ],
    ['unknown value -> None', { sessionAffinity: 'Cookie' }, undefined, true],
  ])('%s', (_what, spec, timeout, skipped) => {
    const r = planOf({ services: [makeService(spec as object)] });
    expect(portPlan(r, ID).sessionAffinity).toEqual(
      timeout === undefined ? undefined : { timeoutSeconds: timeout },
    );
    expect(r.skips.length > 0).toBe(skipped);
    if (skipped) expect(r.skips[0]!.field).toMatch(/^spec\.sessionAffinity/);
  });
});

describe('traffic policies', () => {
  const local = endpoint('10.244.1.5', { nodeName: NODE });
  const remote = endpoint('10.244.2.5', { nodeName: OTHER_NODE });

  it.each<[string, Partial<KubeService['spec']>, boolean, number | undefined]>([
    ['ClusterIP + Local: not externally accessible', { externalTrafficPolicy: 'Local' }, false, undefined],
    [
      'ClusterIP + externalIPs + Local',
      { externalTrafficPolicy: 'Local', externalIPs: ['172.16.77.50'] },
      true,
      undefined,
    ],
    ['NodePort + Local', { type: 'NodePort', externalTrafficPolicy: 'Local' }, true, undefined],
    [
      'LoadBalancer + Local',
      { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 },
      true,
      32000,
    ],
    [
      'LoadBalancer + Cluster',
      { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', healthCheckNodePort: 32000 },
      false,
      undefined,
    ],
    ['NodePort + Cluster', { type: 'NodePort' }, false, undefined],
  ])('%s', (_what, spec, externalPolicyLocal, hc) => {
    const svc = makeService({ ...(spec as object), ports: [port('http', 80, { nodePort: 30080 })] });
    const r = planOf({ services: [svc], slices: [makeSlice({ endpoints: [local, remote] })] });
    const p = portPlan(r, ID);
    expect(p.externalPolicyLocal).toBe(externalPolicyLocal);
    expect(p.healthCheckNodePort).toBe(hc);
    expect(addrs(p.externalEndpoints)).toEqual(
      externalPolicyLocal ? ['10.244.1.5:8080'] : ['10.244.1.5:8080', '10.244.2.5:8080'],
    );
    expect(r.snapshot.healthChecks.map((h) => h.port)).toEqual(hc ? [hc] : []);
  });

  it('externalTrafficPolicy Local: short-circuit to cluster endpoints; drop when no local endpoint', () => {
    const svc = makeService({
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [port('http', 80, { nodePort: 30080 })],
    });
    const withLocal = portPlan(
      planOf({ services: [svc], slices: [makeSlice({ endpoints: [local, remote] })] }),
      ID,
    );
    expect(addrs(withLocal.shortCircuitEndpoints)).toEqual(['10.244.1.5:8080', '10.244.2.5:8080']);
    expect(addrs(withLocal.internalEndpoints)).toEqual(['10.244.1.5:8080', '10.244.2.5:8080']);
    expect([withLocal.internal, withLocal.external]).toEqual(['forward', 'forward']);
    expect(addrs(withLocal.reachableEndpoints)).toEqual(['10.244.1.5:8080', '10.244.2.5:8080']);

    const noLocal = portPlan(planOf({ services: [svc], slices: [makeSlice({ endpoints: [remote] })] }), ID);
    expect(noLocal.externalEndpoints).toEqual([]);
    expect([noLocal.internal, noLocal.external]).toEqual(['forward', 'drop']);
    expect(addrs(noLocal.shortCircuitEndpoints)).toEqual(['10.244.2.5:8080']);
  });

  it('internalTrafficPolicy Local: internal path uses local endpoints, drop when none', () => {
    const svc = makeService({ internalTrafficPolicy: 'Local' });
    const withLocal = portPlan(
      planOf({ services: [svc], slices: [makeSlice({ endpoints: [local, remote] })] }),
      ID,
    );
    expect(withLocal.internalPolicyLocal).toBe(true);
    expect(addrs(withLocal.internalEndpoints)).toEqual(['10.244.1.5:8080']);
    // Not externally accessible: only the local endpoint is reachable from here.
    expect(addrs(withLocal.reachableEndpoints)).toEqual(['10.244.1.5:8080']);

    const noLocal = portPlan(planOf({ services: [svc], slices: [makeSlice({ endpoints: [remote] })] }), ID);
    expect(noLocal.internal).toBe('drop');
    expect(noLocal.internalEndpoints).toEqual([]);
    expect(noLocal.reachableEndpoints).toEqual([]);
  });

  it('internal Local + NodePort Cluster: reachable is the union', () => {
    const svc = makeService({
      type: 'NodePort',
      internalTrafficPolicy: 'Local',
      ports: [port('http', 80, { nodePort: 30080 })],
    });
    const p = portPlan(planOf({ services: [svc], slices: [makeSlice({ endpoints: [local, remote] })] }), ID);
    expect(addrs(p.internalEndpoints)).toEqual(['10.244.1.5:8080']);
    expect(addrs(p.externalEndpoints)).toEqual(['10.244.1.5:8080', '10.244.2.5:8080']);
    expect(addrs(p.reachableEndpoints)).toEqual(['10.244.1.5:8080', '10.244.2.5:8080']);
  });

  it('no usable endpoint anywhere: reject on both paths', () => {
    const svc = makeService({
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Local',
      ports: [port('http', 80, { nodePort: 30080 })],
    });
    const p = portPlan(
      planOf({
        services: [svc],
        slices: [makeSlice({ endpoints: [endpoint('10.244.1.5', { nodeName: NODE, ready: false })] })],
      }),
      ID,
    );
    expect([p.internal, p.external]).toEqual(['reject', 'reject']);
    expect(addrs(p.allEndpoints)).toEqual(['10.244.1.5:8080']);
    expect(p.reachableEndpoints).toEqual([]);
    const none = portPlan(planOf({ services: [makeService()] }), ID);
    expect([none.internal, none.external]).toEqual(['reject', 'reject']);
  });
});

describe('endpoint conditions (KEP-1669 terminating fallback)', () => {
  const e = (ip: string, o: EndpointOptions): ReturnType<typeof endpoint> => endpoint(ip, o);

  it.each<
    [string, EndpointOptions, { cluster: boolean; ready: boolean; serving: boolean; terminating: boolean }]
  >([
    ['all nil -> ready', {}, { cluster: true, ready: true, serving: true, terminating: false }],
    ['ready', { ready: true }, { cluster: true, ready: true, serving: true, terminating: false }],
    ['not ready', { ready: false }, { cluster: false, ready: false, serving: false, terminating: false }],
    [
      'serving+terminating',
      { ready: false, serving: true, terminating: true },
      { cluster: true, ready: false, serving: true, terminating: true },
    ],
    [
      'terminating, not serving',
      { ready: false, serving: false, terminating: true },
      { cluster: false, ready: false, serving: false, terminating: true },
    ],
    // serving nil takes ready's value (the issue; kube-proxy would read it as true).
    [
      'terminating, serving nil',
      { ready: false, terminating: true },
      { cluster: false, ready: false, serving: false, terminating: true },
    ],
    [
      'serving, not terminating, not ready',
      { ready: false, serving: true, terminating: false },
      { cluster: false, ready: false, serving: true, terminating: false },
    ],
  ])('%s', (_what, o, want) => {
    const p = portPlan(
      planOf({ services: [makeService()], slices: [makeSlice({ endpoints: [e('10.244.2.5', o)] })] }),
      ID,
    );
    expect(p.allEndpoints[0]).toMatchObject({
      ready: want.ready,
      serving: want.serving,
      terminating: want.terminating,
    });
    expect(p.clusterEndpoints.length).toBe(want.cluster ? 1 : 0);
  });

  it('ready endpoints win over serving+terminating ones; the fallback only when none is ready', () => {
    const term = e('10.244.2.6', { ready: false, serving: true, terminating: true });
    const ready = e('10.244.2.5', { ready: true });
    const both = portPlan(
      planOf({ services: [makeService()], slices: [makeSlice({ endpoints: [term, ready] })] }),
      ID,
    );
    expect(addrs(both.clusterEndpoints)).toEqual(['10.244.2.5:8080']);
    const onlyTerm = portPlan(
      planOf({ services: [makeService()], slices: [makeSlice({ endpoints: [term] })] }),
      ID,
    );
    expect(addrs(onlyTerm.clusterEndpoints)).toEqual(['10.244.2.6:8080']);
    expect(onlyTerm.internal).toBe('forward');
  });

  it('local endpoints fall back to local serving+terminating independently of the cluster list', () => {
    const svc = makeService({ internalTrafficPolicy: 'Local' });
    const localTerm = e('10.244.1.6', { nodeName: NODE, ready: false, serving: true, terminating: true });
    const remoteReady = e('10.244.2.5', { ready: true });
    const p = portPlan(
      planOf({ services: [svc], slices: [makeSlice({ endpoints: [localTerm, remoteReady] })] }),
      ID,
    );
    expect(addrs(p.localEndpoints)).toEqual(['10.244.1.6:8080']);
    expect(addrs(p.clusterEndpoints)).toEqual(['10.244.2.5:8080']);
    expect(addrs(p.internalEndpoints)).toEqual(['10.244.1.6:8080']);
    expect(p.internal).toBe('forward');
  });

  it('merges slices, de-duplicates by ip:port preferring the local copy, sorts numerically', () => {
    const r = planOf({
      services: [makeService()],
      slices: [
        makeSlice({
          name: 'a',
          endpoints: [
            '10.244.10.1',
            '10.244.9.1',
            e('10.244.2.5', { nodeName: OTHER_NODE, pod: 'remote-copy' }),
          ],
        }),
        makeSlice({
          name: 'b',
          endpoints: [e('10.244.2.5', { nodeName: NODE, pod: 'local-copy' }), '10.244.9.1'],
        }),
      ],
    });
    const p = portPlan(r, ID);
    expect(addrs(p.allEndpoints)).toEqual(['10.244.2.5:8080', '10.244.9.1:8080', '10.244.10.1:8080']);
    expect(p.allEndpoints[0]).toMatchObject({ isLocal: true, targetName: 'local-copy' });
  });

  it('FQDN slices are ignored', () => {
    const r = planOf({
      services: [makeService()],
      slices: [makeSlice({ addressType: 'FQDN', endpoints: ['example.com'] })],
    });
    expect(portPlan(r, ID).allEndpoints).toEqual([]);
    expect(r.skips).toEqual([]);
  });

  it('the same IP on two ports of the service stays separate per port', () => {
    const svc = makeService({ ports: [port('http', 80), port('https', 443)] });
    const r = planOf({
      services: [svc],
      slices: [
        makeSlice({ ports: [slicePort('http', 8080), slicePort('https', 8443)], endpoints: ['10.244.1.5'] }),
      ],
    });
    expect(addrs(portPlan(r, 'default/web:https/TCP/IPv4').clusterEndpoints)).toEqual(['10.244.1.5:8443']);
  });
});

describe('topology (trafficDistribution / topology-aware hints)', () => {
  const node = makeNode({ zone: 'zone-a' });
  const svc = makeService({ trafficDistribution: 'PreferClose' });
  const z = (ip: string, zones: string[] | undefined, o: EndpointOptions = {}): ReturnType<typeof endpoint> =>
    endpoint(ip, { ...(zones ? { zoneHints: zones } : {}), ...o });

  it.each<[string, ReturnType<typeof endpoint>[], string[], ReturnType<typeof makeNode> | undefined]>([
    [
      'zone hints filter to our zone',
      [z('10.244.1.1', ['zone-a']), z('10.244.2.1', ['zone-b'])],
      ['10.244.1.1:8080'],
      node,
    ],
    [
      'an endpoint hinted for two zones counts',
      [z('10.244.1.1', ['zone-b', 'zone-a']), z('10.244.2.1', ['zone-b'])],
      ['10.244.1.1:8080'],
      node,
    ],
    [
      'one ready endpoint without hints: hints ignored',
      [z('10.244.1.1', ['zone-a']), z('10.244.2.1', undefined)],
      ['10.244.1.1:8080', '10.244.2.1:8080'],
      node,
    ],
    [
      'a NOT ready endpoint without hints does not matter',
      [z('10.244.1.1', ['zone-a']), z('10.244.2.1', undefined, { ready: false })],
      ['10.244.1.1:8080'],
      node,
    ],
    [
      'no endpoint for our zone: hints ignored',
      [z('10.244.1.1', ['zone-b']), z('10.244.2.1', ['zone-c'])],
      ['10.244.1.1:8080', '10.244.2.1:8080'],
      node,
    ],
    [
      'node without zone label: hints ignored',
      [z('10.244.1.1', ['zone-a']), z('10.244.2.1', ['zone-b'])],
      ['10.244.1.1:8080', '10.244.2.1:8080'],
      makeNode(),
    ],
    [
      'Node unknown: hints ignored',
      [z('10.244.1.1', ['zone-a']), z('10.244.2.1', ['zone-b'])],
      ['10.244.1.1:8080', '10.244.2.1:8080'],
      undefined,
    ],
    [
      'PreferSameNode: node hints for us',
      [
        z('10.244.1.1', ['zone-a'], { nodeHints: [NODE] }),
        z('10.244.1.2', ['zone-a'], { nodeHints: ['node-c'] }),
        z('10.244.2.1', ['zone-b'], { nodeHints: [OTHER_NODE] }),
      ],
      ['10.244.1.1:8080'],
      node,
    ],
    [
      'PreferSameNode: no node hint for us -> zone hints',
      [
        z('10.244.1.1', ['zone-a'], { nodeHints: ['node-c'] }),
        z('10.244.1.2', ['zone-a'], { nodeHints: ['node-c'] }),
        z('10.244.2.1', ['zone-b'], { nodeHints: [OTHER_NODE] }),
      ],
      ['10.244.1.1:8080', '10.244.1.2:8080'],
      node,
    ],
    [
      'PreferSameNode: missing node hint -> zone hints',
      [
        z('10.244.1.1', ['zone-a'], { nodeHints: [NODE] }),
        z('10.244.1.2', ['zone-a']),
        z('10.244.2.1', ['zone-b'], { nodeHints: [OTHER_NODE] }),
      ],
      ['10.244.1.1:8080', '10.244.1.2:8080'],
      node,
    ],
    [
      'PreferSameNode: no node hint for us and no zone hints -> all',
      [
        z('10.244.1.1', undefined, { nodeHints: ['node-c'] }),
        z('10.244.2.1', undefined, { nodeHints: [OTHER_NODE] }),
      ],
      ['10.244.1.1:8080', '10.244.2.1:8080'],
      node,
    ],
  ])('%s', (_what, endpoints, expected, theNode) => {
    const r = planOf({
      services: [svc],
      slices: [makeSlice({ endpoints })],
      ...(theNode ? { node: theNode } : {}),
    });
    expect(addrs(portPlan(r, ID).clusterEndpoints)).toEqual(expected);
  });

  it('topology never filters local endpoints, and falls back to terminating endpoints without hints', () => {
    const s = makeService({
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [port('http', 80, { nodePort: 30080 })],
    });
    const endpoints = [z('10.244.1.1', ['zone-b'], { nodeName: NODE }), z('10.244.2.1', ['zone-a'])];
    const p = portPlan(planOf({ services: [s], slices: [makeSlice({ endpoints })], node }), ID);
    expect(addrs(p.clusterEndpoints)).toEqual(['10.244.2.1:8080']);
    expect(addrs(p.localEndpoints)).toEqual(['10.244.1.1:8080']);
    expect(addrs(p.reachableEndpoints)).toEqual(['10.244.1.1:8080', '10.244.2.1:8080']);

    const terminating = [
      z('10.244.1.1', ['zone-b'], { ready: false, serving: true, terminating: true }),
      z('10.244.2.1', ['zone-b'], { ready: false, serving: true, terminating: true }),
    ];
    const t = portPlan(
      planOf({ services: [svc], slices: [makeSlice({ endpoints: terminating })], node }),
      ID,
    );
    expect(addrs(t.clusterEndpoints)).toEqual(['10.244.1.1:8080', '10.244.2.1:8080']);
  });

  it('hints decide even without trafficDistribution (the legacy annotation works the same way)', () => {
    const plain = makeService({ annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } });
    const endpoints = [z('10.244.1.1', ['zone-a']), z('10.244.2.1', ['zone-b'])];
    const p = portPlan(planOf({ services: [plain], slices: [makeSlice({ endpoints })], node }), ID);
    expect(addrs(p.clusterEndpoints)).toEqual(['10.244.1.1:8080']);
  });
});

describe('health checks', () => {
  it('count distinct local READY endpoint IPs across the ports of the primary family', () => {
    const svc = makeService({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      ports: [port('http', 80, { nodePort: 30080 }), port('https', 443, { nodePort: 30443 })],
    });
    const ports = [slicePort('http', 8080), slicePort('https', 8443)];
    const r = planOf({
      services: [svc],
      slices: [
        makeSlice({
          ports,
          endpoints: [
            endpoint('10.244.1.5', { nodeName: NODE }),
            endpoint('10.244.1.6', { nodeName: NODE }),
            endpoint('10.244.1.7', { nodeName: NODE, ready: false, serving: true, terminating: true }),
            endpoint('10.244.2.5', { nodeName: OTHER_NODE }),
          ],
        }),
        makeSlice({
          addressType: 'IPv6',
          ports,
          endpoints: [endpoint('fd00:10:244::5', { nodeName: NODE })],
        }),
      ],
    });
    expect(r.snapshot.healthChecks).toEqual([
      { serviceKey: 'default/web', namespace: 'default', name: 'web', port: 32000, localEndpoints: 2 },
    ]);
    // The v6 family alone (primary family not programmed here) counts its own.
    const v6 = planOf(
      {
        services: [svc],
        slices: [
          makeSlice({
            addressType: 'IPv6',
            ports,
            endpoints: [endpoint('fd00:10:244::5', { nodeName: NODE })],
          }),
        ],
      },
      { families: ['IPv6'] },
    );
    expect(v6.snapshot.healthChecks[0]?.localEndpoints).toBe(1);
  });

  it('only terminating local endpoints: 0 (the LB must drain this node)', () => {
    const svc = makeService({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      ports: [port('http', 80, { nodePort: 30080 })],
    });
    const r = planOf({
      services: [svc],
      slices: [
        makeSlice({
          endpoints: [
            endpoint('10.244.1.7', { nodeName: NODE, ready: false, serving: true, terminating: true }),
          ],
        }),
      ],
    });
    expect(r.snapshot.healthChecks[0]?.localEndpoints).toBe(0);
    // ... while traffic still goes to the terminating endpoint.
    expect(portPlan(r, ID).external).toBe('forward');
  });
});
