// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { describe, expect, it } from 'vitest';
import {
  contributionOf,
  planSync,
  renderIptables,
  selectNodePortIPs,
  type IpvsState,
  type KernelState,
  type RenderOptions,
} from '../../../backends/ipvs/render.js';
import { kernelStateFrom, parseConnections, parseIpvsSave } from '../../../backends/ipvs/kernel-state.js';
import type { Snapshot, SnapshotDelta } from '../../../core/model/snapshot.js';
import {
  bigSnapshot,
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  snapshotOf,
  withPorts,
} from '../../support/snapshot-gen.js';

const OPTS: RenderOptions = {
  scheduler: 'rr',
  nodePortIPs: { IPv4: ['192.168.77.2'], IPv6: ['fd00:77::2'] },
};
const ep1 = endpoint('10.244.1.10', 8080);
const ep2 = endpoint('10.244.2.10', 8080);
const epLocal = endpoint('10.244.1.11', 8080, { isLocal: true });

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

function full(s: Snapshot): ReturnType<typeof planSync> {
  return planSync(s, fullDelta(s), undefined, undefined, OPTS);
}

function next(s: Snapshot, delta: SnapshotDelta, state: IpvsState): ReturnType<typeof planSync> {
  return planSync(s, delta, state, undefined, { ...OPTS, nodePortIPs: state.nodePortIPs });
}

describe('ipvs render: full sync', () => {
  it('a ClusterIP Service: address, virtual server with masquerade real servers, set members', () => {
    const s = snapshotOf([
      servicePort({ name: 'web', clusterIP: '10.96.0.10', port: 80, clusterEndpoints: [ep1, ep2] }),
    ]);
    const p = full(s);
    expect(lines(p.ipvs)).toEqual([
      '-A -t 10.96.0.10:80 -s rr',
      '-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1',
      '-a -t 10.96.0.10:80 -r 10.244.2.10:8080 -m -w 1',
    ]);
    expect(lines(p.addressAdd)).toEqual(['address add 10.96.0.10/32 dev swy-ipvs0']);
    const adds = lines(p.ipsetAdd);
    expect(adds).toContain('create SYV-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 1048576');
    expect(adds).toContain('add SYV-CLUSTER-IP 10.96.0.10,tcp:80');
    expect(adds).toContain('add SYV-IPS 10.96.0.10');
    expect(adds.some((l) => l.startsWith('add SYV-REJECT'))).toBe(false);
    expect(p.ipsetDel).toBe('');
    expect(p.full).toBe(true);
  });

  it('UDP, SCTP and IPv6 virtual servers use the right ipvsadm service flags', () => {
    const s = snapshotOf(
      [
        servicePort({
          name: 'dns',
          protocol: 'UDP',
          clusterIP: '10.96.0.10',
          port: 53,
          clusterEndpoints: [endpoint('10.244.1.10', 5353)],
        }),
        servicePort({
          name: 'sctp',
          protocol: 'SCTP',
          clusterIP: '10.96.0.11',
          port: 7777,
          clusterEndpoints: [endpoint('10.244.1.10', 7777)],
        }),
        servicePort({
          name: 'v6',
          family: 'IPv6',
          clusterIP: 'fd00:10:96::10',
          port: 80,
          clusterEndpoints: [endpoint('fd00:10:244:1::10', 8080)],
        }),
      ],
      { families: ['IPv4', 'IPv6'] },
    );
    const p = full(s);
    const ipvs = lines(p.ipvs);
    expect(ipvs).toContain('-A -u 10.96.0.10:53 -s rr');
    expect(ipvs).toContain('-a --sctp-service 10.96.0.11:7777 -r 10.244.1.10:7777 -m -w 1');
    expect(ipvs).toContain('-A -t [fd00:10:96::10]:80 -s rr');
    expect(ipvs).toContain('-a -t [fd00:10:96::10]:80 -r [fd00:10:244:1::10]:8080 -m -w 1');
    expect(lines(p.addressAdd)).toContain('address add fd00:10:96::10/128 dev swy-ipvs0 nodad');
    expect(lines(p.ipsetAdd)).toContain('add SYV6-CLUSTER-IP fd00:10:96::10,tcp:80');
    expect(lines(p.ipsetAdd)).toContain('add SYV-CLUSTER-IP 10.96.0.11,sctp:7777');
  });

  it('session affinity is IPVS persistence; the scheduler comes from the options', () => {
    const s = snapshotOf([
      servicePort({
        clusterIP: '10.96.0.100',
        sessionAffinity: { timeoutSeconds: 300 },
        clusterEndpoints: [ep1],
      }),
    ]);
    const p = planSync(s, fullDelta(s), undefined, undefined, { ...OPTS, scheduler: 'sh' });
    expect(lines(p.ipvs)[0]).toBe('-A -t 10.96.0.100:80 -s sh -p 300');
  });

  it('NodePort, externalIPs and LB IPs: one virtual server each, classified into sets', () => {
    const s = snapshotOf([
      servicePort({
        name: 'lb',
        clusterIP: '10.96.0.40',
        nodePort: 30040,
        externalIPs: ['172.16.77.10'],
        loadBalancerIPs: ['198.51.100.10'],
        loadBalancerSourceRanges: ['203.0.113.0/25', '198.18.0.1/32'],
        clusterEndpoints: [ep1],
      }),
    ]);
    const p = full(s);
    const ipvs = lines(p.ipvs);
    for (const vip of ['10.96.0.40:80', '172.16.77.10:80', '198.51.100.10:80', '192.168.77.2:30040']) {
      expect(ipvs).toContain(`-A -t ${vip} -s rr`);
      expect(ipvs).toContain(`-a -t ${vip} -r 10.244.1.10:8080 -m -w 1`);
    }
    expect(lines(p.addressAdd)).toEqual([
      'address add 10.96.0.40/32 dev swy-ipvs0',
      'address add 172.16.77.10/32 dev swy-ipvs0',
      'address add 198.51.100.10/32 dev swy-ipvs0',
    ]);
    const adds = lines(p.ipsetAdd);
    expect(adds).toContain('add SYV-EXTERNAL-IP 172.16.77.10,tcp:80');
    expect(adds).toContain('add SYV-LOAD-BALANCER 198.51.100.10,tcp:80');
    expect(adds).toContain('add SYV-LOAD-BALANCER-FW 198.51.100.10,tcp:80');
    expect(adds).toContain('add SYV-LOAD-BALANCER-SOURCE-CIDR 198.51.100.10,tcp:80,203.0.113.0/25');
    expect(adds).toContain('add SYV-LOAD-BALANCER-SOURCE-CIDR 198.51.100.10,tcp:80,198.18.0.1');
    expect(adds).toContain('add SYV-NODE-PORT 192.168.77.2,tcp:30040');
    expect(adds.some((l) => l.startsWith('add ') && l.includes('-LOCAL '))).toBe(false);
  });

  it('externalTrafficPolicy Local: local endpoints only on external destinations, *-LOCAL sets, hairpin members', () => {
    const s = snapshotOf([
      servicePort({
        clusterIP: '10.96.0.50',
        nodePort: 30050,
        externalIPs: ['172.16.77.50'],
        loadBalancerIPs: ['198.51.100.20'],
        externalPolicyLocal: true,
        clusterEndpoints: [epLocal, ep2],
      }),
    ]);
    const p = full(s);
    const ipvs = lines(p.ipvs);
    expect(ipvs.filter((l) => l.startsWith('-a -t 192.168.77.2:30050'))).toEqual([
      '-a -t 192.168.77.2:30050 -r 10.244.1.11:8080 -m -w 1',
    ]);
    expect(ipvs.filter((l) => l.startsWith('-a -t 10.96.0.50:80'))).toHaveLength(2);
    const adds = lines(p.ipsetAdd);
    expect(adds).toContain('add SYV-NODE-PORT-LOCAL 192.168.77.2,tcp:30050');
    expect(adds).toContain('add SYV-EXTERNAL-IP-LOCAL 172.16.77.50,tcp:80');
    expect(adds).toContain('add SYV-LOAD-BALANCER-LOCAL 198.51.100.20,tcp:80');
    expect(adds).toContain('add SYV-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11');
    expect(adds).not.toContain('add SYV-LOOP-BACK 10.244.2.10,tcp:8080,10.244.2.10');
  });

  it('verdicts: no endpoints → REJECT members; Local policy without local endpoints → DROP members', () => {
    const s = snapshotOf([
      servicePort({ name: 'empty', clusterIP: '10.96.0.90', nodePort: 30090, clusterEndpoints: [] }),
      servicePort({
        name: 'itp',
        clusterIP: '10.96.0.80',
        internalPolicyLocal: true,
        clusterEndpoints: [ep2],
      }),
      servicePort({
        name: 'etp',
        clusterIP: '10.96.0.60',
        nodePort: 30060,
        externalPolicyLocal: true,
        clusterEndpoints: [ep2],
      }),
    ]);
    const adds = lines(full(s).ipsetAdd);
    expect(adds).toContain('add SYV-REJECT 10.96.0.90,tcp:80');
    expect(adds).toContain('add SYV-REJECT 192.168.77.2,tcp:30090');
    expect(adds).toContain('add SYV-DROP 10.96.0.80,tcp:80');
    expect(adds).toContain('add SYV-DROP 192.168.77.2,tcp:30060');
    expect(adds).not.toContain('add SYV-DROP 10.96.0.60,tcp:80');
    // the virtual server still exists (as kube-proxy's), just without real servers
    expect(lines(full(s).ipvs)).toContain('-A -t 10.96.0.90:80 -s rr');
  });

  it('malformed pieces are skipped and counted, the rest of the port still renders', () => {
    const s = snapshotOf([
      servicePort({
        clusterIP: '10.96.0.10',
        externalIPs: ['not-an-ip', 'fd00::1'],
        loadBalancerSourceRanges: ['nonsense'],
        loadBalancerIPs: ['198.51.100.1'],
        clusterEndpoints: [ep1, endpoint('fd00::5', 80)],
      }),
      servicePort({ name: 'bad', port: 70000, clusterEndpoints: [ep1] }),
    ]);
    const p = full(s);
    expect(p.stats.skipped).toBe(4);
    expect(lines(p.ipvs).filter((l) => l.startsWith('-a -t 10.96.0.10:80'))).toEqual([
      '-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1',
    ]);
    expect(p.ipvs).not.toContain('70000');
  });

  it('a /0 source range opens the LB to everyone (no firewall entry)', () => {
    const s = snapshotOf([
      servicePort({
        loadBalancerIPs: ['198.51.100.1'],
        loadBalancerSourceRanges: ['0.0.0.0/0'],
        clusterEndpoints: [ep1],
      }),
    ]);
    expect(lines(full(s).ipsetAdd).filter((l) => l.startsWith('add SYV-LOAD-BALANCER-FW'))).toEqual([]);
  });
});

describe('ipvs render: incremental syncs', () => {
  const a = servicePort({ name: 'a', clusterIP: '10.96.0.10', clusterEndpoints: [ep1, ep2] });
  const b = servicePort({ name: 'b', clusterIP: '10.96.0.11', clusterEndpoints: [ep1] });
  const s1 = snapshotOf([a, b]);
  const p1 = full(s1);

  it('nothing changed → nothing to run', () => {
    const p = next(s1, partialDelta([]), p1.commit());
    expect([p.ipvs, p.ipsetAdd, p.ipsetDel, p.addressAdd, p.addressDel]).toEqual(['', '', '', '', '']);
    expect(p.full).toBe(false);
  });

  it('one endpoint added: one real server line, nothing else', () => {
    const a2 = servicePort({
      name: 'a',
      clusterIP: '10.96.0.10',
      clusterEndpoints: [ep1, ep2, endpoint('10.244.3.3', 8080)],
    });
    const p = next(withPorts(s1, [a2]), partialDelta([a2.id]), p1.commit());
    expect(lines(p.ipvs)).toEqual(['-a -t 10.96.0.10:80 -r 10.244.3.3:8080 -m -w 1']);
    expect(p.ipsetAdd + p.ipsetDel + p.addressAdd + p.addressDel).toBe('');
  });

  it('a TCP endpoint that goes away drains at weight 0; it comes back at weight 1', () => {
    const a2 = servicePort({ name: 'a', clusterIP: '10.96.0.10', clusterEndpoints: [ep1] });
    const p = next(withPorts(s1, [a2]), partialDelta([a2.id]), full(s1).commit());
    expect(lines(p.ipvs)).toEqual(['-e -t 10.96.0.10:80 -r 10.244.2.10:8080 -m -w 0']);
    expect([...(p.commit().draining.get('TCP|10.96.0.10|80') ?? [])]).toEqual(['10.244.2.10|8080']);
    // still gone at the next sync: nothing more to say (the backend removes it once drained)
    const again = next(withPorts(s1, [a2]), partialDelta([a2.id]), p.commit());
    expect(again.ipvs).toBe('');
    const back = next(s1, partialDelta([a.id]), p.commit());
    expect(lines(back.ipvs)).toEqual(['-e -t 10.96.0.10:80 -r 10.244.2.10:8080 -m -w 1']);
    expect(back.commit().draining.size).toBe(0);
  });

  it('a UDP endpoint that goes away is removed at once', () => {
    const u = servicePort({
      name: 'u',
      protocol: 'UDP',
      clusterIP: '10.96.0.12',
      port: 53,
      clusterEndpoints: [endpoint('10.244.1.10', 5353), endpoint('10.244.2.10', 5353)],
    });
    const s = snapshotOf([u]);
    const u2 = servicePort({
      name: 'u',
      protocol: 'UDP',
      clusterIP: '10.96.0.12',
      port: 53,
      clusterEndpoints: [endpoint('10.244.1.10', 5353)],
    });
    const p = next(withPorts(s, [u2]), partialDelta([u2.id]), full(s).commit());
    expect(lines(p.ipvs)).toEqual(['-d -u 10.96.0.12:53 -r 10.244.2.10:5353']);
  });

  it('a removed Service: virtual server, members and address go; shared addresses stay', () => {
    const a81 = servicePort({
      name: 'a',
      portName: 'alt',
      clusterIP: '10.96.0.10',
      port: 81,
      clusterEndpoints: [ep1],
    });
    const s = snapshotOf([a, a81, b]);
    const base = full(s).commit();
    const p = next(withPorts(s, [], [a81.id]), partialDelta([], [a81.id]), base);
    expect(lines(p.ipvs)).toEqual(['-D -t 10.96.0.10:81']);
    expect(lines(p.ipsetDel)).toEqual(['del SYV-CLUSTER-IP 10.96.0.10,tcp:81']);
    expect(p.addressDel).toBe(''); // port 80 still uses 10.96.0.10
    const p2 = next(withPorts(s, [], [a81.id, a.id]), partialDelta([], [a.id]), p.commit());
    expect(lines(p2.addressDel)).toEqual(['address del 10.96.0.10/32 dev swy-ipvs0']);
    expect(lines(p2.ipsetDel)).toEqual(['del SYV-CLUSTER-IP 10.96.0.10,tcp:80', 'del SYV-IPS 10.96.0.10']);
  });

  it('losing every endpoint adds a REJECT member; getting one back removes it', () => {
    const a0 = servicePort({ name: 'a', clusterIP: '10.96.0.10', clusterEndpoints: [] });
    const p = next(withPorts(s1, [a0]), partialDelta([a0.id]), full(s1).commit());
    expect(lines(p.ipsetAdd)).toEqual(['add SYV-REJECT 10.96.0.10,tcp:80']);
    const back = next(s1, partialDelta([a.id]), p.commit());
    expect(lines(back.ipsetDel)).toEqual(['del SYV-REJECT 10.96.0.10,tcp:80']);
  });

  it('a plan changes nothing until it is committed', () => {
    const base = full(s1).commit();
    const a0 = servicePort({ name: 'a', clusterIP: '10.96.0.10', clusterEndpoints: [] });
    const p = next(withPorts(s1, [a0]), partialDelta([a0.id]), base);
    expect(base.virtualServers.get('TCP|10.96.0.10|80')?.reals.size).toBe(2);
    expect(base.entries.has('SYV-REJECT 10.96.0.10,tcp:80')).toBe(false);
    const after = p.commit();
    expect(after.virtualServers.get('TCP|10.96.0.10|80')?.reals.size).toBe(2); // draining at weight 0
    expect(after.draining.get('TCP|10.96.0.10|80')?.size).toBe(2);
    expect(after.entries.has('SYV-REJECT 10.96.0.10,tcp:80')).toBe(true);
    expect(p.stats.realServers).toBe(3);
  });

  it('an affinity change edits the virtual server', () => {
    const a2 = servicePort({
      name: 'a',
      clusterIP: '10.96.0.10',
      sessionAffinity: { timeoutSeconds: 60 },
      clusterEndpoints: [ep1, ep2],
    });
    const p = next(withPorts(s1, [a2]), partialDelta([a2.id]), p1.commit());
    expect(lines(p.ipvs)).toEqual(['-E -t 10.96.0.10:80 -s rr -p 60']);
  });

  it('at 10k Services, a one-endpoint change is a one-line sync', () => {
    const big = bigSnapshot({ services: 10_000, endpointsPerService: 10 });
    const base = full(big);
    expect(base.stats.virtualServers).toBe(10_000);
    expect(base.stats.realServers).toBe(100_000);
    const [id, port] = [...big.servicePorts][1234]!;
    const changed = { ...port, clusterEndpoints: [...port.clusterEndpoints, endpoint('10.250.0.1', 8080)] };
    const changedPort = {
      ...changed,
      internalEndpoints: changed.clusterEndpoints,
      externalEndpoints: changed.clusterEndpoints,
      reachableEndpoints: changed.clusterEndpoints,
    };
    const t = performance.now();
    const p = next(withPorts(big, [changedPort]), partialDelta([id]), base.commit());
    const ms = performance.now() - t;
    expect(lines(p.ipvs)).toEqual([`-a -t ${port.clusterIP}:80 -r 10.250.0.1:8080 -m -w 1`]);
    expect(ms).toBeLessThan(200); // generous: it touches one Service port, never copies the state
  });
});

describe('ipvs render: full sync against what the kernel holds', () => {
  const a = servicePort({
    name: 'a',
    clusterIP: '10.96.0.10',
    nodePort: 30080,
    clusterEndpoints: [ep1, ep2],
  });
  const s = snapshotOf([a]);

  function kernel(ipvs: string, ipset: string, addr: string): KernelState {
    return kernelStateFrom(ipvs, ipset, addr, true);
  }

  it('what is already there is not re-added; stale objects of ours are removed; others are untouched', () => {
    const k = kernel(
      [
        '-A -t 10.96.0.10:80 -s rr',
        '-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1',
        '-a -t 10.96.0.10:80 -r 10.244.9.9:8080 -m -w 1',
        '-A -t 10.96.0.99:80 -s rr', // ours (address on our interface), stale
        '-A -t 192.168.77.2:31000 -s rr', // ours (in our NODE-PORT set), stale
        '-A -t 192.168.77.2:22 -s rr', // someone else's
        '-A -t 10.1.1.1:80 -s wlc', // someone else's
      ].join('\n'),
      [
        'create SYV-NODE-PORT hash:ip,port family inet',
        'add SYV-NODE-PORT 192.168.77.2,tcp:31000',
        'create OTHER hash:ip',
        'add OTHER 10.1.1.1',
      ].join('\n'),
      [
        '2: ext0    inet 192.168.77.2/24 brd 192.168.77.255 scope global ext0\\       valid_lft forever',
        '3: swy-ipvs0    inet 10.96.0.10/32 scope global swy-ipvs0\\       valid_lft forever',
        '3: swy-ipvs0    inet 10.96.0.99/32 scope global swy-ipvs0\\       valid_lft forever',
      ].join('\n'),
    );
    expect([...k.virtualServers.keys()].sort()).toEqual([
      'TCP|10.96.0.10|80',
      'TCP|10.96.0.99|80',
      'TCP|192.168.77.2|31000',
    ]);
    const p = planSync(s, fullDelta(s), undefined, k, OPTS);
    const ipvs = lines(p.ipvs);
    expect(ipvs).toContain('-a -t 10.96.0.10:80 -r 10.244.2.10:8080 -m -w 1');
    expect(ipvs).toContain('-e -t 10.96.0.10:80 -r 10.244.9.9:8080 -m -w 0'); // drains, TCP
    expect(ipvs).toContain('-D -t 10.96.0.99:80');
    expect(ipvs).toContain('-D -t 192.168.77.2:31000');
    expect(ipvs).toContain('-A -t 192.168.77.2:30080 -s rr');
    expect(ipvs.some((l) => l.includes('10.1.1.1') || l.includes(':22 '))).toBe(false);
    expect(ipvs).not.toContain('-A -t 10.96.0.10:80 -s rr');
    expect(lines(p.addressDel)).toEqual(['address del 10.96.0.99/32 dev swy-ipvs0']);
    expect(lines(p.addressAdd)).toEqual([]);
    expect(lines(p.ipsetDel)).toEqual(['del SYV-NODE-PORT 192.168.77.2,tcp:31000']);
  });

  it('NodePort addresses: all local addresses, or those inside --nodeport-addresses', () => {
    const local = { IPv4: ['192.168.77.2', '192.168.88.2'], IPv6: ['fd00:77::2'] };
    const all = snapshotOf([], { families: ['IPv4', 'IPv6'] });
    expect(selectNodePortIPs(all, local)).toEqual({
      IPv4: ['192.168.77.2', '192.168.88.2'],
      IPv6: ['fd00:77::2'],
    });
    const some = snapshotOf([], {
      nodePortAddresses: {
        IPv4: { kind: 'cidrs', cidrs: ['192.168.77.0/24'] },
        IPv6: { kind: 'cidrs', cidrs: [] },
      },
    });
    expect(selectNodePortIPs(some, local)).toEqual({ IPv4: ['192.168.77.2'], IPv6: [] });
  });
});

describe('ipvs kernel listings', () => {
  it('parses ipvsadm -Sn (as ipvsadm 1.31 prints it)', () => {
    const vss = parseIpvsSave(
      [
        '-A -t 10.96.0.10:80 -s rr',
        '-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1',
        '-A -u 10.96.0.10:53 -s rr -p 300',
        '-A --sctp-service 10.96.0.10:7777 -s rr',
        '-a --sctp-service 10.96.0.10:7777 -r 10.244.1.10:7777 -m -w 0',
        '-A -t [fd00:10:96::10]:80 -s sh',
        '-a -t [fd00:10:96::10]:80 -r [fd00:10:244:1::10]:8080 -m -w 1',
        '-A -f 5 -s rr',
      ].join('\n'),
    );
    expect(
      vss.map(
        (v) =>
          `${v.protocol} ${v.ip} ${v.port} ${v.scheduler} ${v.persistenceSeconds ?? '-'} ${[...v.reals.values()].map((r) => `${r.ip}:${r.port}/${r.weight}`).join(',')}`,
      ),
    ).toEqual([
      'TCP 10.96.0.10 80 rr - 10.244.1.10:8080/1',
      'UDP 10.96.0.10 53 rr 300 ',
      'SCTP 10.96.0.10 7777 rr - 10.244.1.10:7777/0',
      'TCP fd00:10:96::10 80 sh - fd00:10:244:1::10:8080/1',
    ]);
  });

  it('parses connection counts from ipvsadm -Ln', () => {
    const c = parseConnections(
      [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  10.96.0.10:80 rr',
        '  -> 10.244.1.10:8080             Masq    1      2          5         ',
        '  -> 10.244.2.10:8080             Masq    0      0          0         ',
        'TCP  [fd00:10:96::10]:80 rr persistent 300',
        '  -> [fd00:10:244:1::10]:8080     Masq    1      0          1         ',
      ].join('\n'),
    );
    expect(c.get('TCP|10.96.0.10|80')?.get('10.244.1.10|8080')).toMatchObject({
      weight: 1,
      active: 2,
      inactive: 5,
    });
    expect(c.get('TCP|10.96.0.10|80')?.get('10.244.2.10|8080')).toMatchObject({
      weight: 0,
      active: 0,
      inactive: 0,
    });
    expect(c.get('TCP|fd00:10:96::10|80')?.get('fd00:10:244:1::10|8080')).toMatchObject({ inactive: 1 });
  });
});

describe('ipvs iptables rules', () => {
  it('marks ClusterIP traffic from outside the cluster CIDR, masquerades hairpin and marked traffic', () => {
    const t = renderIptables('IPv4', {
      masqueradeBit: 14,
      masqueradeAll: false,
      clusterCIDRs: ['10.244.0.0/16', 'fd00::/48'],
    });
    expect(t).toContain(
      '-A SYV-SERVICES -m set --match-set SYV-CLUSTER-IP dst,dst -m comment --comment "cluster IP from outside the cluster CIDR" -j SYV-MASQ-NONPOD',
    );
    expect(t).toContain('-A SYV-MASQ-NONPOD -s 10.244.0.0/16 -j RETURN');
    expect(t).not.toContain('fd00::/48');
    expect(t).toContain('-A SYV-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000');
    expect(t).toContain(
      '-A SYV-POSTROUTING -m set --match-set SYV-LOOP-BACK dst,dst,src -m comment --comment "hairpin" -j MASQUERADE',
    );
    expect(t).toContain(
      '-m conntrack --ctstate NEW -m set --match-set SYV-REJECT dst,dst -m comment --comment "service has no endpoints" -j REJECT',
    );
    expect(t).toContain(
      '-A SYV-FIREWALL -m set --match-set SYV-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
    );
    expect(t.match(/^COMMIT$/gm)).toHaveLength(2);
  });

  it('marks ClusterIP traffic that did not come in on the pod interfaces (--detect-local-mode by interface)', () => {
    const t = renderIptables('IPv4', {
      masqueradeBit: 14,
      masqueradeAll: false,
      clusterCIDRs: [],
      localInterface: { name: 'cali', prefix: true },
    });
    expect(t).toContain(
      '-A SYV-SERVICES -m set --match-set SYV-CLUSTER-IP dst,dst ! -i cali+ -m comment --comment "cluster IP from outside the pod interfaces" -j SYV-MARK-MASQ',
    );
    expect(t).not.toContain('-j SYV-MASQ-NONPOD');
    const bridge = renderIptables('IPv4', {
      masqueradeBit: 14,
      masqueradeAll: true,
      clusterCIDRs: [],
      localInterface: { name: 'cbr0', prefix: false },
    });
    expect(bridge).not.toContain('cbr0');
  });

  it('--masquerade-all marks every ClusterIP packet; IPv6 uses the SYV6 sets', () => {
    const t = renderIptables('IPv6', { masqueradeBit: 10, masqueradeAll: true, clusterCIDRs: [] });
    expect(t).toContain(
      '-A SYV-SERVICES -m set --match-set SYV6-CLUSTER-IP dst,dst -m comment --comment "cluster IP, masquerade all" -j SYV-MARK-MASQ',
    );
    expect(t).toContain('--set-xmark 0x400/0x400');
    expect(t).not.toMatch(/SYV-CLUSTER-IP|SYV-NODE-PORT /);
  });

  it('contributionOf is deterministic and self-contained', () => {
    const p = servicePort({ clusterIP: '10.96.0.10', clusterEndpoints: [ep1, epLocal] });
    expect(contributionOf(p, OPTS)).toEqual(contributionOf(p, OPTS));
  });
});
