/**
 * fast-check arbitraries for Snapshots the model can express, valid or malformed-ish (odd ports,
 * bad IPs, many endpoints, IPv6, empty lists, odd timeouts), and for a follow-up snapshot with
 * its delta. Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2.
 */
import fc from 'fast-check';
import type {
  EndpointPlan,
  IPFamily,
  ServicePortPlan,
  Snapshot,
  TrafficVerdict,
} from '../../../core/model/snapshot.js';

const v4 = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom(10), fc.constantFrom(96, 244), fc.nat(255), fc.nat(255))
      .map((p) => p.join('.')),
  },
  { weight: 2, arbitrary: fc.ipV4() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      'None',
      '10.96.0.256',
      'fd00::1',
      ' 10.96.0.1',
      '0.0.0.0',
      '255.255.255.255',
    ),
  },
);
const v6 = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom('fd00:96::', 'fd00:244::', '2001:db8::'), fc.nat(0xffff))
      .map(([p, n]) => `${p}${n.toString(16)}`),
  },
  { weight: 2, arbitrary: fc.ipV6() },
  { weight: 1, arbitrary: fc.constantFrom('', '::', 'fe80::1%eth0', '10.96.0.1', ':::1', '::ffff:10.0.0.1') },
);
const port = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 65535 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 65536, 80.5, Number.NaN, 1, 65535) },
);
const cidr = (family: IPFamily): fc.Arbitrary<string> =>
  fc.oneof(
    fc
      .tuple(family === 'IPv4' ? v4 : v6, fc.integer({ min: 0, max: family === 'IPv4' ? 33 : 129 }))
      .map(([a, l]) => `${a}/${l}`),
    family === 'IPv4' ? v4 : v6,
    fc.constantFrom('203.0.113.0/25', '0.0.0.0/0', '::/0', 'garbage', '10.0.0.0/-1'),
  );

function endpoints(family: IPFamily): fc.Arbitrary<EndpointPlan[]> {
  const ep = fc.record({
    ip: family === 'IPv4' ? v4 : v6,
    port,
    ready: fc.boolean(),
    serving: fc.boolean(),
    terminating: fc.boolean(),
    isLocal: fc.boolean(),
  });
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(ep, { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.array(ep, { minLength: 20, maxLength: 70 }) },
  );
}

const verdict: fc.Arbitrary<TrafficVerdict> = fc.constantFrom('forward', 'reject', 'drop');

function portPlan(family: IPFamily, index: number): fc.Arbitrary<ServicePortPlan> {
  const ip = family === 'IPv4' ? v4 : v6;
  return fc
    .record({
      protocol: fc.constantFrom('TCP', 'UDP', 'SCTP', 'ICMP' as 'TCP'),
      clusterIP: ip,
      port,
      nodePort: fc.option(fc.oneof(fc.integer({ min: 30000, max: 30010 }), port), { nil: undefined }),
      externalIPs: fc.array(ip, { maxLength: 3 }),
      loadBalancerIPs: fc.array(ip, { maxLength: 2 }),
      loadBalancerSourceRanges: fc.array(cidr(family), { maxLength: 4 }),
      sessionAffinity: fc.option(
        fc.record({
          timeoutSeconds: fc.oneof(
            fc.integer({ min: -5, max: 200000 }),
            fc.constantFrom(Number.NaN, 0.5, 10800),
          ),
        }),
        { nil: undefined },
      ),
      internalPolicyLocal: fc.boolean(),
      externalPolicyLocal: fc.boolean(),
      internalEndpoints: endpoints(family),
      externalEndpoints: endpoints(family),
      shortCircuitEndpoints: endpoints(family),
      internal: verdict,
      external: verdict,
      portName: fc.constantFrom('', 'http', 'a-very-long-port-name-with-dashes-and-more-dashes-x'),
    })
    .map((r) => ({
      ...r,
      id: `ns-${index % 3}/svc-${index}:${r.portName}/${r.protocol}/${family}`,
      serviceKey: `ns-${index % 3}/svc-${index}`,
      namespace: `ns-${index % 3}`,
      name: `svc-${index}`,
      family,
      clusterEndpoints: r.internalEndpoints,
      localEndpoints: r.externalEndpoints,
      reachableEndpoints: [],
      allEndpoints: [],
    }));
}

export const snapshotArb: fc.Arbitrary<Snapshot> = fc
  .record({
    v4: fc.array(fc.nat(), { maxLength: 8 }),
    v6: fc.array(fc.nat(), { maxLength: 4 }),
    families: fc.constantFrom<IPFamily[]>(['IPv4'], ['IPv6'], ['IPv4', 'IPv6']),
    cidr4: fc.array(cidr('IPv4'), { maxLength: 3 }),
    cidr6: fc.array(cidr('IPv6'), { maxLength: 2 }),
    masqueradeAll: fc.boolean(),
    // --detect-local-mode by interface: valid names, and some the backend must refuse
    localInterface: fc.option(
      fc.record({
        name: fc.oneof(
          fc.constantFrom('cbr0', 'veth', 'cali', 'eth0.100', 'a"b', '', 'x'.repeat(16)),
          fc.string(),
        ),
        prefix: fc.boolean(),
      }),
      { nil: undefined },
    ),
    np4: fc.oneof(
      fc.constant({ kind: 'all' as const }),
      fc.array(cidr('IPv4'), { maxLength: 3 }).map((c) => ({ kind: 'cidrs' as const, cidrs: c })),
    ),
    np6: fc.oneof(
      fc.constant({ kind: 'all' as const }),
      fc.array(cidr('IPv6'), { maxLength: 2 }).map((c) => ({ kind: 'cidrs' as const, cidrs: c })),
    ),
  })
  .chain((r) =>
    fc
      .tuple(
        fc.tuple(...r.v4.map((_, i) => portPlan('IPv4', i))),
        fc.tuple(...r.v6.map((_, i) => portPlan('IPv6', 100 + i))),
      )
      .map(([p4, p6]) => ({
        generation: 1,
        nodeName: 'node-a',
        nodeLabels: {},
        nodeIPs: { IPv4: ['192.168.77.2'], IPv6: [] },
        families: r.families,
        clusterCIDRs: { IPv4: r.cidr4, IPv6: r.cidr6 },
        masqueradeAll: r.masqueradeAll,
        ...(r.localInterface ? { localInterface: r.localInterface } : {}),
        nodePortAddresses: { IPv4: r.np4, IPv6: r.np6 },
        servicePorts: new Map([...p4, ...p6].map((p) => [p.id, p])),
        healthChecks: [],
      })),
  );

/** A second snapshot: some ports kept (same object), some replaced, some removed, some added. */
export const nextArb = (
  s: Snapshot,
): fc.Arbitrary<{ next: Snapshot; changed: string[]; removed: string[] }> =>
  fc
    .tuple(
      fc.array(fc.constantFrom('keep', 'drop', 'swap'), {
        minLength: s.servicePorts.size,
        maxLength: s.servicePorts.size,
      }),
      snapshotArb,
    )
    .map(([fate, other]) => {
      const ports = new Map<string, ServicePortPlan>();
      const changed: string[] = [];
      const removed: string[] = [];
      const others = [...other.servicePorts.values()];
      [...s.servicePorts.values()].forEach((p, i) => {
        if (fate[i] === 'keep') ports.set(p.id, p);
        else if (fate[i] === 'drop') removed.push(p.id);
        else {
          const q = others.find((o) => o.family === p.family);
          if (q) {
            ports.set(p.id, { ...q, id: p.id });
            changed.push(p.id);
          } else removed.push(p.id);
        }
      });
      for (const q of others) {
        const id = `new/${q.id}`;
        ports.set(id, { ...q, id });
        changed.push(id);
      }
      return { next: { ...s, generation: 2, servicePorts: ports }, changed, removed };
    });
