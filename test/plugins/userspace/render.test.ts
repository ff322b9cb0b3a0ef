// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
// 192.168.77.1, LB source range 203.0.113.0/25.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { frontendsOf, renderTable } from '../../../plugins/userspace/index.js';
import { kernelUnavailableReason, describeE2E } from '../../support/e2e-gate.js';
import { endpoint, servicePort, snapshotOf } from '../../support/snapshot-gen.js';

const eps = [
  endpoint('10.244.1.5', 8080, { targetName: 'web-1' }),
  endpoint('10.244.0.7', 8080, { isLocal: true, targetName: 'web-0' }),
];

function cluster(): ReturnType<typeof snapshotOf> {
  return snapshotOf(
    [
      servicePort({ name: 'web', clusterEndpoints: eps, nodePort: 30080, externalIPs: ['192.168.77.50'] }),
      servicePort({ name: 'dns', protocol: 'UDP', port: 53, clusterIP: '10.96.0.53', clusterEndpoints: eps }),
      servicePort({ name: 'empty', clusterIP: '10.96.0.11', nodePort: 30081 }),
      servicePort({
        name: 'lb',
        clusterIP: '10.96.0.14',
        loadBalancerIPs: ['203.0.113.200'],
        loadBalancerSourceRanges: ['203.0.113.0/25'],
        clusterEndpoints: eps,
      }),
      servicePort({
        name: 'itp',
        clusterIP: '10.96.0.15',
        internalPolicyLocal: true,
        clusterEndpoints: [eps[0]!],
      }),
      servicePort({ name: 'sctp', protocol: 'SCTP', clusterIP: '10.96.0.16', clusterEndpoints: eps }),
      servicePort({
        name: 'web6',
        family: 'IPv6',
        clusterIP: 'fd00:96::10',
        clusterEndpoints: [endpoint('fd00:244::5', 8080)],
      }),
    ],
    {
      families: ['IPv4', 'IPv6'],
      nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: ['192.168.77.2/32'] }, IPv6: { kind: 'all' } },
    },
  );
}

function ports(keys: readonly string[]): Map<string, number> {
  return new Map(keys.map((k, i) => [k, 40000 + i]));
}

describe('userspace frontends and nft rendering', () => {
  it('derives one frontend per address, protocol and port with its kernel verdict', () => {
    const set = frontendsOf(cluster());
    const byKey = new Map(set.frontends.map((f) => [f.key, f]));
    expect([...byKey.keys()].sort()).toEqual([
      'IPv4|TCP|10.96.0.10|80',
      'IPv4|TCP|10.96.0.11|80',
      'IPv4|TCP|10.96.0.14|80',
      'IPv4|TCP|10.96.0.15|80',
      'IPv4|TCP|192.168.77.2|30080',
      'IPv4|TCP|192.168.77.2|30081',
      'IPv4|TCP|192.168.77.50|80',
      'IPv4|TCP|203.0.113.200|80',
      'IPv4|UDP|10.96.0.53|53',
      'IPv6|TCP|fd00:96::10|80',
    ]);
    expect(set.unsupported).toBe(1); // SCTP
    expect(byKey.get('IPv4|TCP|10.96.0.11|80')).toMatchObject({
      listen: false,
      reject: true,
      kind: 'cluster-ip',
    });
    expect(byKey.get('IPv4|TCP|192.168.77.2|30081')).toMatchObject({
      listen: false,
      reject: true,
      kind: 'node-port',
    });
    expect(byKey.get('IPv4|TCP|10.96.0.15|80')).toMatchObject({ listen: false, dropAll: true });
    expect(byKey.get('IPv4|TCP|203.0.113.200|80')).toMatchObject({
      listen: true,
      sourceRanges: ['203.0.113.0/25'],
      kind: 'load-balancer',
    });
    expect(set.clusterIPs.IPv4).toEqual([
      '10.96.0.10',
      '10.96.0.11',
      '10.96.0.14',
      '10.96.0.15',
      '10.96.0.53',
    ]);
  });

  it('renders elements only: the rules do not grow with the number of Services', () => {
    const small = frontendsOf(snapshotOf([servicePort({ clusterEndpoints: eps })]));
    const big = frontendsOf(
      snapshotOf(
        Array.from({ length: 200 }, (_, i) =>
          servicePort({
            name: `s${i}`,
            clusterIP: `10.96.${i >> 8}.${(i & 255) + 1}`,
            clusterEndpoints: eps,
          }),
        ),
      ),
    );
    const render = (s: typeof small): ReturnType<typeof renderTable> =>
      renderTable({
        family: 'IPv4',
        frontends: s.frontends,
        listenerPorts: ports(s.frontends.map((f) => f.key)),
        clusterIPs: s.clusterIPs.IPv4,
        clusterCIDRs: [],
      });
    const a = render(small);
    const b = render(big);
    expect(a.text.split('\n').length).toBe(b.text.split('\n').length);
    expect(b.elements).toBe(400); // 200 map elements + 200 ClusterIPs
  });
});

describeE2E('userspace nft table loads in a real kernel', kernelUnavailableReason(['nft', 'unshare']), () => {
  it('nft accepts the rendered table for both families (in a throwaway network namespace)', () => {
    const snap = cluster();
    const set = frontendsOf(snap);
    const lp = ports(set.frontends.map((f) => f.key));
    const text =
      renderTable({
        family: 'IPv4',
        frontends: set.frontends,
        listenerPorts: lp,
        clusterIPs: set.clusterIPs.IPv4,
        clusterCIDRs: ['10.244.0.0/16'],
      }).text +
      renderTable({
        family: 'IPv6',
        frontends: set.frontends,
        listenerPorts: lp,
        clusterIPs: set.clusterIPs.IPv6,
        clusterCIDRs: ['fd00:244::/56'],
      }).text;
    const listed = execFileSync(
      'unshare',
      [
        '-n',
        'sh',
        '-c',
        'nft -f - && nft list table ip switchyard-userspace && nft list table ip6 switchyard-userspace',
      ],
      {
        input: text,
        encoding: 'utf8',
      },
    );
    expect(listed).toContain(`192.168.77.2 . tcp . 30080 : ${lp.get('IPv4|TCP|192.168.77.2|30080')}`);
    expect(listed).toContain('10.96.0.11 . tcp . 80');
    expect(listed).toContain('203.0.113.200 . tcp . 80 . 203.0.113.0/25');
    expect(listed).toContain(`fd00:96::10 . tcp . 80 : ${lp.get('IPv6|TCP|fd00:96::10|80')}`);
    expect(listed).toContain('redirect to :ip daddr . meta l4proto . th dport map @fe');
  });
});
