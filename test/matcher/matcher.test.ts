/**
 * Fixed cases, run against both implementations (WasmMatcher and ReferenceMatcher).
 * Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2, external client
 * 192.168.77.1, LB source range 203.0.113.0/25.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMatcherSync } from '../../matcher/src/loader.js';
import type { Matcher, MatcherOptions, SelectQuery } from '../../matcher/src/matcher.js';
import { ReferenceMatcher } from '../../matcher/src/reference-matcher.js';
import { FLAG_FROM_NODE, NO_MATCH } from '../../matcher/src/codes.js';
import { parseIP } from '../../matcher/src/ip.js';
import { ensureWasm } from './ensure-wasm.js';
import { EXTERNAL_CLIENT, LB_SOURCE_RANGE, NODE_IP, ep, plan, snapshot } from './fixtures.js';

beforeAll(() => ensureWasm());

const implementations: [string, (o?: MatcherOptions) => Matcher][] = [
  ['wasm', (o) => loadMatcherSync(o)],
  ['reference', (o) => new ReferenceMatcher(o)],
];

const web = plan({
  name: 'web',
  clusterIP: '10.96.0.10',
  port: 80,
  nodePort: 30080,
  externalIPs: ['198.51.100.7'],
  endpoints: [ep('10.244.1.1'), ep('10.244.1.2'), ep('10.244.2.3')],
});
const empty = plan({ name: 'empty', clusterIP: '10.96.0.11', port: 80, nodePort: 30081 });
const localOnly = plan({
  name: 'local',
  clusterIP: '10.96.0.12',
  port: 443,
  nodePort: 30443,
  externalPolicyLocal: true,
  endpoints: [ep('10.244.5.1'), ep('10.244.5.2')],
  externalEndpoints: [],
  shortCircuitEndpoints: [ep('10.244.5.1'), ep('10.244.5.2')],
  external: 'drop',
});
const lb = plan({
  name: 'lb',
  clusterIP: '10.96.0.13',
  port: 8443,
  loadBalancerIPs: ['203.0.113.200'],
  loadBalancerSourceRanges: [LB_SOURCE_RANGE],
  endpoints: [ep('10.244.6.1')],
});
const sticky = plan({
  name: 'sticky',
  clusterIP: '10.96.0.14',
  port: 80,
  nodePort: 30082,
  affinitySeconds: 10,
  endpoints: [ep('10.244.7.1'), ep('10.244.7.2'), ep('10.244.7.3'), ep('10.244.7.4')],
});
const dns = plan({
  name: 'dns',
  protocol: 'UDP',
  clusterIP: '10.96.0.53',
  port: 53,
  endpoints: [ep('10.244.8.1', 53), ep('10.244.8.2', 53)],
});
const v6 = plan({
  name: 'web6',
  clusterIP: 'fd00:96::10',
  port: 80,
  loadBalancerIPs: ['2001:db8:1::100'],
  loadBalancerSourceRanges: ['2001:db8:ff::/48'],
  endpoints: [ep('fd00:244::1'), ep('fd00:244::2')],
});

const base = snapshot([web, empty, localOnly, lb, sticky, dns, v6]);

function q(
  destination: string,
  port: number,
  client = EXTERNAL_CLIENT,
  extra: Partial<SelectQuery> = {},
): SelectQuery {
  return { destination, protocol: 'TCP', port, client, clientPort: 40000, nowMs: 1000, ...extra };
}

describe.each(implementations)('%s matcher', (_name, make) => {
  it('answers no-match before any snapshot and for addresses that are not Services', () => {
    const m = make();
    expect(m.select(q('10.96.0.10', 80)).verdict).toBe('no-match');
    m.load(base);
    expect(m.select(q('10.96.0.99', 80)).verdict).toBe('no-match');
    expect(m.select(q('10.96.0.10', 81)).verdict).toBe('no-match');
    expect(m.select({ ...q('10.96.0.10', 80), protocol: 'UDP' }).verdict).toBe('no-match');
    expect(m.select(q('not-an-ip', 80)).verdict).toBe('no-match');
    // a mixed-family query is never a match
    expect(m.select(q('10.96.0.10', 80, 'fd00::1')).verdict).toBe('no-match');
  });

  it('forwards ClusterIP traffic uniformly among the eligible endpoints', () => {
    const m = make({ seed: 12345 });
    const r = m.load(base);
    expect(r.servicePorts).toBe(7);
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const s = m.select(q('10.96.0.10', 80, `10.244.9.${i % 250}`, { clientPort: 1000 + i }));
      expect(s.verdict).toBe('forward');
      expect(s.path).toBe('internal');
      expect(s.frontend).toBe('cluster-ip');
      expect(s.servicePort?.id).toBe(web.id);
      counts.set(s.endpoint!.ip, (counts.get(s.endpoint!.ip) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['10.244.1.1', '10.244.1.2', '10.244.2.3']);
    for (const n of counts.values()) expect(n).toBeGreaterThan(850); // 1000 expected each
  });

  it('is deterministic for a given seed', () => {
    const pick = (seed: number): number[] => {
      const m = make({ seed });
      m.load(base);
      return Array.from({ length: 50 }, () => m.select(q('10.96.0.10', 80)).code);
    };
    expect(pick(7)).toEqual(pick(7));
    expect(pick(7)).not.toEqual(pick(8));
  });

  it('rejects when a Service has no endpoints, on every path', () => {
    const m = make();
    m.load(base);
    const a = m.select(q('10.96.0.11', 80));
    expect(a).toMatchObject({ verdict: 'reject', reason: 'plan', path: 'internal' });
    expect(m.select(q(NODE_IP, 30081))).toMatchObject({
      verdict: 'reject',
      frontend: 'node-port',
      path: 'external',
    });
  });

  it('drops external traffic under a Local policy without local endpoints, but short-circuits pods and the node', () => {
    const m = make();
    m.load(base);
    expect(m.select(q(NODE_IP, 30443))).toMatchObject({ verdict: 'drop', reason: 'plan', path: 'external' });
    const pod = m.select(q(NODE_IP, 30443, '10.244.3.3'));
    expect(pod).toMatchObject({ verdict: 'forward', path: 'short-circuit' });
    expect(['10.244.5.1', '10.244.5.2']).toContain(pod.endpoint?.ip);
    expect(m.select(q(NODE_IP, 30443, NODE_IP, { fromNode: true }))).toMatchObject({
      verdict: 'forward',
      path: 'short-circuit',
    });
    // the ClusterIP itself still forwards
    expect(m.select(q('10.96.0.12', 443))).toMatchObject({ verdict: 'forward', path: 'internal' });
  });

  it('matches NodePorts only on the node-port addresses, or on any address with kind all', () => {
    const m = make();
    m.load(base);
    expect(m.select(q(NODE_IP, 30080))).toMatchObject({
      verdict: 'forward',
      frontend: 'node-port',
      path: 'external',
    });
    expect(m.select(q('192.168.77.9', 30080)).verdict).toBe('no-match');
    m.load(
      snapshot([web], {
        nodePortAddresses: { IPv4: { kind: 'all' }, IPv6: { kind: 'all' } },
      }),
    );
    expect(m.select(q('192.168.77.9', 30080))).toMatchObject({ verdict: 'forward', frontend: 'node-port' });
  });

  it('forwards externalIPs on the external path', () => {
    const m = make();
    m.load(base);
    expect(m.select(q('198.51.100.7', 80))).toMatchObject({
      verdict: 'forward',
      frontend: 'external-ip',
      path: 'external',
    });
  });

  it('enforces loadBalancerSourceRanges on LB IPs only', () => {
    const m = make();
    m.load(base);
    expect(m.select(q('203.0.113.200', 8443, '203.0.113.5'))).toMatchObject({
      verdict: 'forward',
      frontend: 'load-balancer',
    });
    expect(m.select(q('203.0.113.200', 8443, '203.0.113.130'))).toMatchObject({
      verdict: 'drop',
      reason: 'source-range',
    });
    expect(m.select(q('203.0.113.200', 8443, EXTERNAL_CLIENT))).toMatchObject({
      verdict: 'drop',
      reason: 'source-range',
    });
    // the ClusterIP of the same Service is not restricted
    expect(m.select(q('10.96.0.13', 8443, EXTERNAL_CLIENT)).verdict).toBe('forward');
  });

  it('lets the node reach its own LB VIP when a source range covers a node IP', () => {
    const m = make();
    const vip = plan({
      name: 'vip',
      clusterIP: '10.96.0.20',
      port: 80,
      loadBalancerIPs: ['198.51.100.50'],
      loadBalancerSourceRanges: ['192.168.77.0/24'],
      endpoints: [ep('10.244.6.9')],
    });
    m.load(snapshot([vip]));
    expect(m.select(q('198.51.100.50', 80, '198.51.100.50')).verdict).toBe('forward');
    expect(m.select(q('198.51.100.50', 80, '198.51.100.51')).verdict).toBe('drop');
    const closed = plan({ ...vipInput(), loadBalancerSourceRanges: ['203.0.113.0/25'] });
    m.load(snapshot([closed]));
    expect(m.select(q('198.51.100.50', 80, '198.51.100.50')).verdict).toBe('drop');
  });

  it('keeps a client on its endpoint while the affinity entry lives, and refreshes it on use', () => {
    const m = make({ seed: 99 });
    m.load(base);
    const first = m.select(q('10.96.0.14', 80, '10.244.3.3', { nowMs: 0 }));
    expect(first).toMatchObject({ verdict: 'forward', reason: 'random' });
    for (let t = 1000; t <= 30_000; t += 1000) {
      const again = m.select(q('10.96.0.14', 80, '10.244.3.3', { nowMs: t, clientPort: t }));
      expect(again).toMatchObject({ endpointId: first.endpointId, reason: 'affinity' });
    }
    // NodePort traffic of the same Service port shares the entry
    expect(m.select(q(NODE_IP, 30082, '10.244.3.3', { nowMs: 30_500 })).endpointId).toBe(first.endpointId);
    expect(m.affinityLookup(sticky.id, '10.244.3.3', 30_500)?.ip).toBe(first.endpoint?.ip);
    expect(m.stats().affinityEntries).toBe(1);
  });

  it('forgets affinity after the timeout', () => {
    const m = make({ seed: 5 });
    m.load(base);
    m.select(q('10.96.0.14', 80, '10.244.3.3', { nowMs: 0 }));
    expect(m.select(q('10.96.0.14', 80, '10.244.3.3', { nowMs: 9_999 })).reason).toBe('affinity');
    // last use at 9 999 ms: lives until 19 999 ms
    expect(m.affinityLookup(sticky.id, '10.244.3.3', 19_998)).toBeDefined();
    expect(m.affinityLookup(sticky.id, '10.244.3.3', 19_999)).toBeUndefined();
    expect(m.stats().affinityEntries).toBe(0);
    expect(m.select(q('10.96.0.14', 80, '10.244.3.3', { nowMs: 20_000 })).reason).toBe('random');
  });

  it('picks anew when the remembered endpoint is not eligible on this path', () => {
    const m = make({ seed: 3 });
    const eps = [ep('10.244.7.1'), ep('10.244.7.2')];
    const split = plan({
      name: 'split',
      clusterIP: '10.96.0.30',
      port: 80,
      nodePort: 30090,
      affinitySeconds: 100,
      internalEndpoints: [eps[0]!],
      externalEndpoints: [eps[1]!],
    });
    m.load(snapshot([split]));
    expect(m.select(q('10.96.0.30', 80, EXTERNAL_CLIENT)).endpoint?.ip).toBe('10.244.7.1');
    const ext = m.select(q(NODE_IP, 30090, EXTERNAL_CLIENT));
    expect(ext).toMatchObject({ reason: 'random', endpoint: { ip: '10.244.7.2' } });
    // the entry now remembers the external choice
    expect(m.affinityLookup(split.id, EXTERNAL_CLIENT, 1000)?.ip).toBe('10.244.7.2');
  });

  it('keeps live affinity and flow entries across a reload, and drops those whose endpoint left', () => {
    const m = make({ seed: 11 });
    m.load(base);
    const clients = Array.from({ length: 40 }, (_, i) => `10.244.4.${i + 1}`);
    const chosen = new Map<string, string>();
    for (const c of clients) {
      const s = m.select(q('10.96.0.14', 80, c, { nowMs: 0, trackFlow: true }));
      chosen.set(c, s.endpoint!.ip);
    }
    expect(m.stats().affinityEntries).toBe(40);
    expect(m.stats().flowEntries).toBe(40);
    const gone = '10.244.7.2';
    const affected = clients.filter((c) => chosen.get(c) === gone).length;
    expect(affected).toBeGreaterThan(0);
    const next = plan({
      name: 'sticky',
      clusterIP: '10.96.0.14',
      port: 80,
      nodePort: 30082,
      affinitySeconds: 10,
      endpoints: [ep('10.244.7.1'), ep('10.244.7.3'), ep('10.244.7.4'), ep('10.244.7.5')],
    });
    const r = m.load(snapshot([web, next], { generation: 2 }));
    expect(r.purgedAffinity).toBe(affected);
    expect(r.purgedFlows).toBe(affected);
    expect(m.stats().affinityEntries).toBe(40 - affected);
    for (const c of clients) {
      const kept = m.affinityLookup(next.id, c, 100);
      if (chosen.get(c) === gone) expect(kept).toBeUndefined();
      else expect(kept?.ip).toBe(chosen.get(c));
      const s = m.select(q('10.96.0.14', 80, c, { nowMs: 200, trackFlow: true }));
      if (chosen.get(c) !== gone) {
        expect(s).toMatchObject({ reason: 'flow', endpoint: { ip: chosen.get(c) } });
      } else {
        expect(s.reason).toBe('random');
        expect(s.endpoint?.ip).not.toBe(gone);
      }
    }
  });

  it('keeps everything when a reload only adds endpoints or changes nothing', () => {
    const m = make({ seed: 21 });
    m.load(base);
    for (let i = 1; i <= 20; i++) m.select(q('10.96.0.14', 80, `10.244.4.${i}`, { trackFlow: true }));
    expect(m.load(base)).toMatchObject({ purgedAffinity: 0, purgedFlows: 0 });
    const grown = plan({
      name: 'sticky',
      clusterIP: '10.96.0.14',
      port: 80,
      nodePort: 30082,
      affinitySeconds: 10,
      endpoints: [ep('10.244.7.1'), ep('10.244.7.2'), ep('10.244.7.3'), ep('10.244.7.4'), ep('10.244.7.9')],
    });
    const r = m.load(snapshot([web, empty, localOnly, lb, grown, dns, v6], { generation: 3 }));
    expect(r).toMatchObject({ purgedAffinity: 0, purgedFlows: 0 });
    expect(m.stats()).toMatchObject({ affinityEntries: 20, flowEntries: 20 });
    for (let i = 1; i <= 20; i++) {
      expect(m.select(q('10.96.0.14', 80, `10.244.4.${i}`, { clientPort: 1, nowMs: 2000 })).reason).toBe(
        'affinity',
      );
    }
  });

  it('drops every entry of a Service port that disappears', () => {
    const m = make();
    m.load(base);
    m.select(q('10.96.0.14', 80, '10.244.3.3', { trackFlow: true }));
    const r = m.load(snapshot([web]));
    expect(r).toMatchObject({ purgedAffinity: 1, purgedFlows: 1 });
    expect(m.stats()).toMatchObject({ affinityEntries: 0, flowEntries: 0, servicePorts: 1 });
  });

  it('tracks flows: lookup, touch, idle timeout by protocol, remove', () => {
    const m = make({ flowTimeouts: { tcpMs: 5000 } });
    m.load(base);
    const udp = {
      protocol: 'UDP' as const,
      client: '10.244.3.3',
      clientPort: 5353,
      destination: '10.96.0.53',
      port: 53,
    };
    const s = m.select({
      ...q('10.96.0.53', 53, '10.244.3.3', { clientPort: 5353, trackFlow: true }),
      protocol: 'UDP',
    });
    expect(s.verdict).toBe('forward');
    expect(m.flowLookup(udp, 29_999)).toBe(s.endpointId); // UDP default 30 s; no touch
    expect(m.flowTouch(udp, 20_000)).toBe(true); // now lives until 50 s
    expect(m.flowLookup(udp, 49_999)).toBe(s.endpointId);
    expect(m.flowLookup(udp, 50_000)).toBe(NO_MATCH);
    expect(m.stats().flowEntries).toBe(0);

    const tcp = {
      protocol: 'TCP' as const,
      client: EXTERNAL_CLIENT,
      clientPort: 40001,
      destination: '10.96.0.10',
      port: 80,
    };
    const endpointId = m.select(q('10.96.0.10', 80)).endpointId!;
    expect(m.flowInsert(tcp, endpointId, web.id, 0)).toBe(true);
    expect(m.flowLookup(tcp, 4_999, true)).toBe(endpointId);
    expect(m.flowLookup(tcp, 9_998)).toBe(endpointId);
    expect(m.flowRemove(tcp)).toBe(true);
    expect(m.flowRemove(tcp)).toBe(false);
    expect(m.flowLookup(tcp, 9_998)).toBe(NO_MATCH);
    // unknown service port or endpoint: refused
    expect(m.flowInsert(tcp, endpointId, 'default/nope:/TCP/IPv4', 0)).toBe(false);
    expect(m.flowInsert(tcp, 99_999, web.id, 0)).toBe(false);
    // an endpoint of another Service port is not eligible here
    const other = m.select(q('10.96.0.53', 53, EXTERNAL_CLIENT, { nowMs: 0, protocol: 'UDP' }));
    expect(m.flowInsert(tcp, 1, web.id, 0)).toBe(true);
    expect(other.endpointId).toBeDefined();
    expect(m.flowInsert(tcp, other.endpointId ?? 0, web.id, 0)).toBe(false);
  });

  it('a flow hit wins over a new random choice', () => {
    const m = make({ seed: 77 });
    m.load(base);
    const first = m.select(q('10.96.0.10', 80, EXTERNAL_CLIENT, { trackFlow: true, clientPort: 41000 }));
    for (let i = 0; i < 20; i++) {
      const s = m.select(
        q('10.96.0.10', 80, EXTERNAL_CLIENT, { trackFlow: true, clientPort: 41000, nowMs: 1000 + i }),
      );
      expect(s).toMatchObject({ endpointId: first.endpointId, reason: 'flow', servicePort: { id: web.id } });
    }
  });

  it('keeps the affinity and flow tables bounded', () => {
    const m = make({ affinityCapacity: 16, flowCapacity: 8 });
    m.load(base);
    for (let i = 0; i < 200; i++) {
      m.select(
        q('10.96.0.14', 80, `10.244.${i >> 8}.${i & 255}`, { trackFlow: true, clientPort: i, nowMs: i }),
      );
      expect(m.stats().affinityEntries).toBeLessThanOrEqual(16);
      expect(m.stats().flowEntries).toBeLessThanOrEqual(8);
    }
    expect(m.stats()).toMatchObject({ affinityEntries: 16, flowEntries: 8 });
    // the newest entries survive
    expect(m.affinityLookup(sticky.id, '10.244.0.199', 200)).toBeDefined();
  });

  it('evicts expired entries first when full', () => {
    const m = make({ affinityCapacity: 4 });
    m.load(base);
    // three long-lived entries, then one that will expire (timeout 10 s)
    for (let i = 1; i <= 4; i++)
      m.select(q('10.96.0.14', 80, `10.244.0.${i}`, { nowMs: i === 4 ? 0 : 50_000 }));
    expect(m.stats().affinityEntries).toBe(4);
    m.select(q('10.96.0.14', 80, '10.244.0.5', { nowMs: 55_000 }));
    expect(m.stats().affinityEntries).toBe(4);
    for (let i = 1; i <= 3; i++) expect(m.affinityLookup(sticky.id, `10.244.0.${i}`, 55_000)).toBeDefined();
    expect(m.affinityLookup(sticky.id, '10.244.0.5', 55_000)).toBeDefined();
  });

  it('sweeps expired entries', () => {
    const m = make();
    m.load(base);
    for (let i = 0; i < 30; i++)
      m.select(q('10.96.0.14', 80, `10.244.0.${i}`, { nowMs: i * 1000, trackFlow: true }));
    // affinity 10 s; TCP flows 86400 s
    expect(m.sweep(20_000)).toBe(11); // entries made at 0..10 s expire by 20 s
    expect(m.stats()).toMatchObject({ affinityEntries: 19, flowEntries: 30 });
  });

  it('serves IPv6: ClusterIP, LB source ranges, pod CIDR', () => {
    const m = make();
    m.load(base);
    const s = m.select(q('fd00:96::10', 80, 'fd00:244::99'));
    expect(s).toMatchObject({ verdict: 'forward', path: 'internal', endpoint: { family: 'IPv6' } });
    expect(['fd00:244::1', 'fd00:244::2']).toContain(s.endpoint?.ip);
    expect(m.select(q('2001:db8:1::100', 80, '2001:db8:ff:1::5')).verdict).toBe('forward');
    expect(m.select(q('2001:db8:1::100', 80, '2001:db8:fe::5'))).toMatchObject({
      verdict: 'drop',
      reason: 'source-range',
    });
    expect(m.select(q('fd00:96::10', 81, 'fd00:244::99')).verdict).toBe('no-match');
  });

  it('IPv6 short-circuits pods inside the IPv6 cluster CIDR', () => {
    const m = make();
    const p = plan({
      name: 'local6',
      clusterIP: 'fd00:96::12',
      port: 443,
      nodePort: 30444,
      externalPolicyLocal: true,
      endpoints: [ep('fd00:244::5')],
      externalEndpoints: [],
      shortCircuitEndpoints: [ep('fd00:244::5')],
      external: 'drop',
    });
    m.load(snapshot([p]));
    expect(m.select(q('fd00:77::2', 30444, '2001:db8::1')).verdict).toBe('drop');
    expect(m.select(q('fd00:77::2', 30444, 'fd00:244::77'))).toMatchObject({
      verdict: 'forward',
      path: 'short-circuit',
    });
  });

  it('batch selection gives the same answers as single calls with the same seed', () => {
    const single = make({ seed: 4242, batchCapacity: 256 });
    const batched = make({ seed: 4242, batchCapacity: 256 });
    single.load(base);
    batched.load(base);
    const dests: [string, number][] = [
      ['10.96.0.10', 80],
      ['10.96.0.11', 80],
      ['10.96.0.14', 80],
      [NODE_IP, 30443],
      ['10.96.0.99', 80],
      [NODE_IP, 30082],
    ];
    const expected: number[] = [];
    const expectedSp: number[] = [];
    for (let i = 0; i < 256; i++) {
      const [d, port] = dests[i % dests.length]!;
      const client = parseIP(`10.${i % 3 === 0 ? 244 : 1}.0.${i % 7}`)!;
      const dst = parseIP(d)!;
      batched.batch.set(i, 1, dst.words, 6, port, client.words, 1000 + i, i % 5 === 0 ? FLAG_FROM_NODE : 0);
      expected.push(
        single.selectRaw(
          1,
          ...dst.words,
          6,
          port,
          ...client.words,
          1000 + i,
          500,
          i % 5 === 0 ? FLAG_FROM_NODE : 0,
        ),
      );
      expectedSp.push(single.lastServicePortId());
    }
    const results = batched.batch.run(256, 500);
    expect(Array.from(results)).toEqual(expected);
    expect(Array.from(batched.batch.servicePorts())).toEqual(expectedSp);
    expect(() => batched.batch.run(257, 0)).toThrow(RangeError);
  });

  it('survives memory growth: a much larger snapshot after a small one', () => {
    const m = make({ batchCapacity: 4 });
    m.load(base);
    const q0 = m.batch.queries();
    expect(q0.length).toBe(64);
    const many = Array.from({ length: 5000 }, (_, i) =>
      plan({
        name: `svc-${i}`,
        clusterIP: `10.96.${(i >> 8) + 100}.${i & 255}`,
        port: 80,
        endpoints: Array.from({ length: 10 }, (_, j) =>
          ep(`10.244.${i >> 6}.${((i & 63) << 2) + (j & 3)}`, 8000 + j),
        ),
      }),
    );
    m.load(snapshot([...many, web]));
    const dst = parseIP('10.96.119.135')!; // svc-4999
    m.batch.set(0, 1, dst.words, 6, 80, [0x0a010101, 0, 0, 0], 1, 0);
    const r = m.batch.run(1, 0);
    expect(r[0]).toBeGreaterThan(0);
    expect(m.endpoint(r[0]!)?.port).toBeGreaterThanOrEqual(8000);
    expect(m.select(q('10.96.0.10', 80)).verdict).toBe('forward');
  });
});

function vipInput(): Parameters<typeof plan>[0] {
  return {
    name: 'vip',
    clusterIP: '10.96.0.20',
    port: 80,
    loadBalancerIPs: ['198.51.100.50'],
    endpoints: [ep('10.244.6.9')],
  };
}
