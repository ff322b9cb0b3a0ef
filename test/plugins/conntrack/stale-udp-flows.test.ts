// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../../backends/exec/executor.js';
import { silentLogger } from '../../../core/log.js';
import {
  clearConntrack,
  conntrackArgs,
  parseConntrackList,
  staleUdpFlows,
  unhandledUdpFlows,
} from '../../../plugins/conntrack/index.js';
import { endpoint, servicePort, snapshotOf, withPorts } from '../../support/snapshot-gen.js';

const ep1 = endpoint('10.244.1.1', 5353);
const ep2 = endpoint('10.244.1.2', 5353);
const dns = (eps: (typeof ep1)[], extra = {}) =>
  servicePort({
    name: 'dns',
    protocol: 'UDP',
    port: 53,
    clusterIP: '10.96.0.53',
    clusterEndpoints: eps,
    ...extra,
  });

describe('staleUdpFlows', () => {
  it('a UDP Service getting its first endpoint: every destination of it', () => {
    const ext = { nodePort: 30053, externalIPs: ['192.168.77.100'], loadBalancerIPs: ['192.168.77.200'] };
    const prev = snapshotOf([dns([], ext)]);
    const next = withPorts(prev, [dns([ep1], ext)]);
    expect(staleUdpFlows(prev, next)).toEqual([
      { family: 'IPv4', protocol: 'UDP', origDst: '10.96.0.53', origPortDst: 53 },
      { family: 'IPv4', protocol: 'UDP', origDst: '192.168.77.100', origPortDst: 53 },
      { family: 'IPv4', protocol: 'UDP', origDst: '192.168.77.200', origPortDst: 53 },
      { family: 'IPv4', protocol: 'UDP', origDst: undefined, origPortDst: 30053 },
    ]);
  });

  it('a new UDP Service with endpoints counts as getting its first endpoint', () => {
    const prev = snapshotOf([]);
    const next = snapshotOf([dns([ep1])]);
    expect(staleUdpFlows(prev, next)).toEqual([
      { family: 'IPv4', protocol: 'UDP', origDst: '10.96.0.53', origPortDst: 53 },
    ]);
  });

  it('an endpoint going away: flows DNATed to it', () => {
    const prev = snapshotOf([dns([ep1, ep2], { nodePort: 30053 })]);
    const next = withPorts(prev, [dns([ep1], { nodePort: 30053 })]);
    expect(staleUdpFlows(prev, next)).toEqual([
      {
        family: 'IPv4',
        protocol: 'UDP',
        origDst: '10.96.0.53',
        origPortDst: 53,
        replySrc: '10.244.1.2',
        replyPortSrc: 5353,
      },
      {
        family: 'IPv4',
        protocol: 'UDP',
        origDst: undefined,
        origPortDst: 30053,
        replySrc: '10.244.1.2',
        replyPortSrc: 5353,
      },
    ]);
  });

  it('a removed UDP Service: flows to each of its endpoints', () => {
    const prev = snapshotOf([dns([ep1])]);
    const next = withPorts(prev, [], [dns([ep1]).id]);
    expect(staleUdpFlows(prev, next)).toEqual([
      {
        family: 'IPv4',
        protocol: 'UDP',
        origDst: '10.96.0.53',
        origPortDst: 53,
        replySrc: '10.244.1.1',
        replyPortSrc: 5353,
      },
    ]);
  });

  it('TCP, unchanged ports and still-served UDP ports need nothing', () => {
    const tcp = servicePort({ name: 'web', clusterEndpoints: [ep1] });
    const prev = snapshotOf([tcp, dns([ep1])]);
    expect(staleUdpFlows(prev, prev)).toEqual([]);
    const tcp2 = servicePort({ name: 'web', clusterEndpoints: [] });
    expect(staleUdpFlows(prev, withPorts(prev, [tcp2, dns([ep1, ep2])]))).toEqual([]);
  });

  it('IPv6 flows say so', () => {
    const v6 = servicePort({
      name: 'dns',
      protocol: 'UDP',
      family: 'IPv6',
      port: 53,
      clusterIP: 'fd00:96::53',
      clusterEndpoints: [endpoint('fd00:244::1', 53)],
    });
    const [d] = staleUdpFlows(snapshotOf([]), snapshotOf([v6]));
    expect(conntrackArgs(d!)).toEqual([
      '-D',
      '-f',
      'ipv6',
      '-p',
      'udp',
      '--orig-dst',
      'fd00:96::53',
      '--orig-port-dst',
      '53',
    ]);
  });
});

describe('unhandledUdpFlows (start-up sweep)', () => {
  const listing = [
    'udp      17 25 src=10.244.2.2 dst=10.96.0.53 sport=40001 dport=53 [UNREPLIED] src=10.96.0.53 dst=10.244.2.2 sport=53 dport=40001 mark=0 use=1',
    'udp      17 25 src=10.244.2.2 dst=10.96.0.53 sport=40002 dport=53 src=10.244.1.1 dst=10.244.2.2 sport=5353 dport=40002 mark=0 use=1',
    'udp      17 25 src=192.168.77.1 dst=192.168.77.2 sport=40003 dport=30053 src=192.168.77.2 dst=192.168.77.1 sport=30053 dport=40003 mark=0 use=1',
    'udp      17 25 src=10.244.2.2 dst=10.96.0.99 sport=40004 dport=53 src=10.96.0.99 dst=10.244.2.2 sport=53 dport=40004 mark=0 use=1',
    'tcp      6 431999 ESTABLISHED src=10.244.2.2 dst=10.96.0.53 sport=40005 dport=53 src=10.96.0.53 dst=10.244.2.2 sport=53 dport=40005 [ASSURED] mark=0 use=1',
  ].join('\n');

  it('parses the original tuple and the reply source of UDP lines', () => {
    expect(parseConntrackList(listing)[1]).toEqual({
      origSrc: '10.244.2.2',
      origDst: '10.96.0.53',
      origPortSrc: 40002,
      origPortDst: 53,
      replySrc: '10.244.1.1',
    });
    expect(parseConntrackList(listing)).toHaveLength(4);
  });

  it('picks flows to served UDP destinations that nothing DNATed', () => {
    const next = snapshotOf([dns([ep1], { nodePort: 30053 })]);
    expect(unhandledUdpFlows(next, 'IPv4', listing).map((d) => [d.origDst, d.origPortSrc])).toEqual([
      ['10.96.0.53', 40001],
      ['192.168.77.2', 40003],
    ]);
    // no endpoints: nothing to sweep (the flows would be rejected anyway)
    expect(unhandledUdpFlows(snapshotOf([dns([])]), 'IPv4', listing)).toEqual([]);
    expect(unhandledUdpFlows(next, 'IPv4', '')).toEqual([]);
  });
});

describe('clearConntrack', () => {
  it('runs conntrack -D per deletion and treats "0 flow entries" as success', async () => {
    const ex = new FakeExecutor().on((c) =>
      c.args.includes('10.96.0.53')
        ? { code: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' }
        : undefined,
    );
    const failed = await clearConntrack(
      ex,
      [
        { family: 'IPv4', protocol: 'UDP', origDst: '10.96.0.53', origPortDst: 53 },
        { family: 'IPv4', protocol: 'UDP', origPortDst: 30053, replySrc: '10.244.1.2', replyPortSrc: 5353 },
      ],
      silentLogger(),
    );
    expect(failed).toBe(0);
    expect(ex.callsTo('conntrack').map((c) => c.args)).toEqual([
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53'],
      [
        '-D',
        '-f',
        'ipv4',
        '-p',
        'udp',
        '--orig-port-dst',
        '30053',
        '--reply-src',
        '10.244.1.2',
        '--reply-port-src',
        '5353',
      ],
    ]);
  });

  it('counts real failures and a missing binary, never throws', async () => {
    const ex = new FakeExecutor().failNext(
      'conntrack',
      'conntrack v1.4.7: Operation failed: invalid parameters',
    );
    expect(
      await clearConntrack(ex, [{ family: 'IPv4', protocol: 'UDP', origPortDst: 1 }], silentLogger()),
    ).toBe(1);
    const missing = { run: () => Promise.reject(new Error('cannot run conntrack: spawn conntrack ENOENT')) };
    const many = Array.from({ length: 10 }, (_, i) => ({
      family: 'IPv4' as const,
      protocol: 'UDP' as const,
      origPortDst: i + 1,
    }));
    expect(await clearConntrack(missing, many, silentLogger())).toBe(10);
  });
});
