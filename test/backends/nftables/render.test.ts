// Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
// external client 192.168.77.1, LB source range 203.0.113.0/25.
import { describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../../backends/exec/executor.js';
import { nftablesRegistration } from '../../../backends/nftables/index.js';
import {
  PRECREATED_GROUPS,
  planSync,
  render,
  type NftablesState,
} from '../../../backends/nftables/render.js';
import { silentLogger } from '../../../core/log.js';
import type { BackendContext } from '../../../plugins/sdk/index.js';
import type { Snapshot, SnapshotDelta } from '../../../core/model/snapshot.js';
import {
  endpoint,
  fullDelta,
  partialDelta,
  servicePort,
  snapshotOf,
  withPorts,
} from '../../support/snapshot-gen.js';

const ep1 = endpoint('10.244.1.1', 8080);
const ep2 = endpoint('10.244.1.2', 8080);
const epLocal = endpoint('10.244.0.5', 8080, { isLocal: true });

function ctx(executor: FakeExecutor, masqueradeBit = 14): BackendContext {
  return {
    config: { masqueradeBit } as BackendContext['config'],
    logger: silentLogger(),
    executor,
    metrics: { gauge: () => undefined, counter: () => undefined },
  };
}

/** Full render, then (optionally) an incremental one; returns both scripts. */
function scripts(
  first: Snapshot,
  next?: Snapshot,
  delta?: SnapshotDelta,
): { full: string; inc: string; state: NftablesState } {
  const p1 = planSync(first, fullDelta(first), undefined);
  const s1 = p1.commit();
  if (!next) return { full: p1.script, inc: '', state: s1 };
  const p2 = planSync(next, delta!, s1);
  return { full: p1.script, inc: p2.script, state: p2.commit() };
}

/** All element texts a script adds to `set` (in any `add element` statement). */
function added(script: string, set: string, family = 'ip'): string[] {
  const out: string[] = [];
  const re = new RegExp(`^add element ${family} switchyard ${set} \\{ (.*) \\}$`, 'gm');
  for (const m of script.matchAll(re)) out.push(...m[1]!.split(', '));
  return out;
}

function deleted(script: string, set: string, family = 'ip'): string[] {
  const out: string[] = [];
  const re = new RegExp(`^delete element ${family} switchyard ${set} \\{ (.*) \\}$`, 'gm');
  for (const m of script.matchAll(re)) out.push(...m[1]!.split(', '));
  return out;
}

function chainBody(script: string, chain: string): string {
  const m = new RegExp(`\\tchain ${chain} \\{\\n([\\s\\S]*?)\\n\\t\\}`).exec(script);
  if (!m) throw new Error(`no chain ${chain} in script`);
  return m[1]!;
}

describe('nftables render: full sync', () => {
  it('replaces its own tables atomically and only those', () => {
    const s = snapshotOf([servicePort({ clusterEndpoints: [ep1] })]);
    const { full } = scripts(s);
    expect(full).toContain('add table ip switchyard\ndelete table ip switchyard\ntable ip switchyard {');
    // IPv6 not programmed: its leftover table is removed, in the same transaction
    expect(full).toContain('add table ip6 switchyard\ndelete table ip6 switchyard');
    for (const m of full.matchAll(/^(?:add|delete) (?:element|table|chain|set|rule) (\S+) (\S+)/gm)) {
      expect([m[1], m[2]]).toEqual([expect.stringMatching(/^ip6?$/), 'switchyard']);
    }
    expect(full).not.toMatch(/flush ruleset/);
  });

  it('ClusterIP with endpoints: service element → group chain, endpoints by index', () => {
    const s = snapshotOf([servicePort({ clusterIP: '10.96.0.10', port: 80, clusterEndpoints: [ep1, ep2] })]);
    const { full } = scripts(s);
    expect(added(full, 'service-ips')).toEqual(['10.96.0.10 . tcp . 80 : goto ep-ip-2']);
    expect(added(full, 'ip-endpoints')).toEqual([
      '10.96.0.10 . tcp . 80 . 0 : 10.244.1.1 . 8080',
      '10.96.0.10 . tcp . 80 . 1 : 10.244.1.2 . 8080',
    ]);
    expect(chainBody(full, 'ep-ip-2')).toContain(
      'dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @ip-endpoints',
    );
    expect(added(full, 'cluster-ips')).toEqual(['10.96.0.10']);
    // hairpin needs no element per endpoint: the packet path fills the dynamic set
    expect(added(full, 'hairpin')).toEqual([]);
    expect(added(full, 'no-endpoint-services')).toEqual([]);
  });

  it('the number of chains and sets does not grow with the number of Services', () => {
    const few = snapshotOf(
      Array.from({ length: 3 }, (_, i) =>
        servicePort({ name: `s${i}`, clusterIP: `10.96.1.${i + 1}`, clusterEndpoints: [ep1, ep2] }),
      ),
    );
    const many = snapshotOf(
      Array.from({ length: 300 }, (_, i) =>
        servicePort({
          name: `s${i}`,
          clusterIP: `10.96.${2 + (i >> 7)}.${(i & 127) + 1}`,
          clusterEndpoints: [ep1, ep2],
        }),
      ),
    );
    const count = (script: string, re: RegExp): number => [...script.matchAll(re)].length;
    const a = scripts(few).full;
    const b = scripts(many).full;
    expect(count(b, /^\tchain /gm)).toBe(count(a, /^\tchain /gm));
    expect(count(b, /^\t(?:set|map) /gm)).toBe(count(a, /^\t(?:set|map) /gm));
    expect(added(b, 'service-ips')).toHaveLength(300);
  });

  it('TCP, UDP and SCTP ports', () => {
    const s = snapshotOf([
      servicePort({ name: 'a', protocol: 'TCP', clusterEndpoints: [ep1] }),
      servicePort({ name: 'a', protocol: 'UDP', port: 53, clusterEndpoints: [ep1] }),
      servicePort({ name: 'a', protocol: 'SCTP', port: 9000, clusterEndpoints: [ep1] }),
    ]);
    expect(added(scripts(s).full, 'service-ips').sort()).toEqual([
      '10.96.0.10 . sctp . 9000 : goto ep-ip-1',
      '10.96.0.10 . tcp . 80 : goto ep-ip-1',
      '10.96.0.10 . udp . 53 : goto ep-ip-1',
    ]);
  });

  it('no endpoints: REJECT for cluster traffic, DROP where a Local policy has no local endpoint', () => {
    const s = snapshotOf([
      servicePort({ name: 'empty', clusterIP: '10.96.0.20', nodePort: 30020, clusterEndpoints: [] }),
      servicePort({
        name: 'local',
        clusterIP: '10.96.0.21',
        nodePort: 30021,
        externalPolicyLocal: true,
        clusterEndpoints: [ep1],
      }),
    ]);
    const { full } = scripts(s);
    expect(added(full, 'no-endpoint-services')).toEqual(['10.96.0.20 . tcp . 80 : goto reject-chain']);
    expect(added(full, 'no-endpoint-nodeports').sort()).toEqual([
      'tcp . 30020 : goto reject-chain',
      'tcp . 30021 : drop',
    ]);
    // the Local service still short-circuits pods and the node to every endpoint
    expect(added(full, 'short-circuit-nodeports')).toEqual(['tcp . 30021 : goto ep-scnp-1']);
    expect(added(full, 'short-circuit-nodeport-endpoints')).toEqual(['tcp . 30021 . 0 : 10.244.1.1 . 8080']);
    expect(chainBody(full, 'reject-chain')).toContain('meta l4proto tcp reject with tcp reset');
    expect(chainBody(full, 'cluster-ips-check')).toContain('ip daddr @cluster-ips goto reject-chain');
    expect(chainBody(full, 'filter-forward')).toMatch(
      /ct state new jump service-endpoints-check[\s\S]*ct state new jump cluster-ips-check/,
    );
  });

  it('internalTrafficPolicy Local without a local endpoint drops ClusterIP traffic', () => {
    const s = snapshotOf([servicePort({ internalPolicyLocal: true, clusterEndpoints: [ep1] })]);
    expect(added(scripts(s).full, 'no-endpoint-services')).toEqual(['10.96.0.10 . tcp . 80 : drop']);
  });

  it('NodePort, externalIPs and LB IPs with Cluster policy are masquerade-marked', () => {
    const s = snapshotOf([
      servicePort({
        nodePort: 30080,
        externalIPs: ['192.168.77.100'],
        loadBalancerIPs: ['192.168.77.200'],
        clusterEndpoints: [ep1, ep2],
      }),
    ]);
    const { full } = scripts(s);
    expect(added(full, 'service-nodeports')).toEqual(['tcp . 30080 : goto ep-npm-2']);
    expect(added(full, 'service-ips').sort()).toEqual([
      '10.96.0.10 . tcp . 80 : goto ep-ip-2',
      '192.168.77.100 . tcp . 80 : goto ep-ipm-2',
      '192.168.77.200 . tcp . 80 : goto ep-ipm-2',
    ]);
    // the marking chains mark, then go to the unmarked chain of the same count (one map binding)
    expect(chainBody(full, 'ep-npm-2')).toMatch(/jump mark-for-masquerade\n\s*goto ep-np-2$/);
    expect(chainBody(full, 'ep-ipm-2')).toMatch(/jump mark-for-masquerade\n\s*goto ep-ip-2$/);
    expect(chainBody(full, 'ep-np-2')).toContain(
      'dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints',
    );
    expect(full.match(/map @ip-endpoints/g)).toHaveLength(PRECREATED_GROUPS);
    expect(chainBody(full, 'mark-for-masquerade')).toContain('meta mark set meta mark | 0x4000');
    expect(chainBody(full, 'services')).toContain(
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    );
  });

  it('externalTrafficPolicy Local: external → local endpoints unmasqueraded; pods and node short-circuit', () => {
    const s = snapshotOf([
      servicePort({
        nodePort: 30080,
        loadBalancerIPs: ['192.168.77.200'],
        externalPolicyLocal: true,
        clusterEndpoints: [ep1, epLocal],
      }),
    ]);
    const { full } = scripts(s);
    expect(added(full, 'service-nodeports')).toEqual(['tcp . 30080 : goto ep-np-1']);
    expect(added(full, 'nodeport-endpoints')).toEqual(['tcp . 30080 . 0 : 10.244.0.5 . 8080']);
    expect(added(full, 'short-circuit-ips')).toEqual(['192.168.77.200 . tcp . 80 : goto ep-sc-2']);
    expect(chainBody(full, 'ep-np-1')).not.toContain('mark-for-masquerade');
    expect(chainBody(full, 'ep-sc-2')).toContain('fib saddr type local jump mark-for-masquerade');
    const services = chainBody(full, 'services');
    expect(services).toContain(
      'ip saddr @cluster-cidrs ip daddr . meta l4proto . th dport vmap @short-circuit-ips',
    );
    expect(services).toContain(
      'fib saddr type local ip daddr . meta l4proto . th dport vmap @short-circuit-ips',
    );
    // short-circuit rules come before the normal dispatch
    expect(services.indexOf('@short-circuit-ips')).toBeLessThan(services.indexOf('@service-ips'));
  });

  it('loadBalancerSourceRanges: LB IP firewalled, nested ranges merged, other destinations untouched', () => {
    const s = snapshotOf([
      servicePort({
        externalIPs: ['192.168.77.100'],
        loadBalancerIPs: ['192.168.77.200'],
        loadBalancerSourceRanges: ['203.0.113.0/25', '203.0.113.7/32', 'garbage'],
        clusterEndpoints: [ep1],
      }),
    ]);
    const plan = planSync(s, fullDelta(s), undefined);
    expect(added(plan.script, 'firewall-ips')).toEqual(['192.168.77.200 . tcp . 80']);
    expect(added(plan.script, 'firewall-allow')).toEqual(['192.168.77.200 . tcp . 80 . 203.0.113.0/25']);
    expect(chainBody(plan.script, 'firewall-check')).toContain(
      'ip daddr . meta l4proto . th dport @firewall-ips ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow drop',
    );
    expect(plan.stats.skipped).toBe(1);
  });

  it('sessionAffinity ClientIP: per-endpoint dynamic sets with the timeout', () => {
    const s = snapshotOf([
      servicePort({ sessionAffinity: { timeoutSeconds: 600 }, clusterEndpoints: [ep1, ep2] }),
    ]);
    const { full } = scripts(s);
    const svc = added(full, 'service-ips');
    expect(svc).toHaveLength(1);
    const dispatch = /goto (aff-\S+)/.exec(svc[0]!)![1]!;
    const body = chainBody(full, dispatch);
    const sets = [
      ...full.matchAll(/^\tset (aff-\S+) \{ type ipv4_addr; flags dynamic,timeout; timeout 600s; \}$/gm),
    ].map((m) => m[1]);
    expect(sets).toHaveLength(2);
    for (const set of sets) {
      expect(body).toContain(`ip saddr @${set} goto ${set}`);
      expect(chainBody(full, set!)).toContain(`update @${set} { ip saddr }`);
    }
    expect(body).toContain('numgen random mod 2 vmap');
    expect(full).toMatch(/meta l4proto tcp dnat ip to 10\.244\.1\.1:8080/);
    expect(added(full, 'ip-endpoints')).toEqual([]);
  });

  it('--detect-local-mode by interface: iifname instead of the cluster CIDR set', () => {
    const port = servicePort({ nodePort: 30080, clusterEndpoints: [ep1] });
    const withIface = (name: string, prefix: boolean): string => {
      const snap = {
        ...snapshotOf([port], { clusterCIDRs: { IPv4: [] } }),
        localInterface: { name, prefix },
      };
      return chainBody(planSync(snap, fullDelta(snap), undefined).script, 'services');
    };
    const prefix = withIface('veth', true);
    expect(prefix).toContain('iifname != "veth*" ip daddr @cluster-ips jump mark-for-masquerade');
    expect(prefix).toContain('iifname "veth*" ip daddr . meta l4proto . th dport vmap @short-circuit-ips');
    expect(prefix).toMatch(/iifname "veth\*" meta l4proto \. th dport vmap @short-circuit-nodeports/);
    expect(prefix).not.toContain('@cluster-cidrs');
    const bridge = withIface('cbr0', false);
    expect(bridge).toContain('iifname != "cbr0" ip daddr @cluster-ips jump mark-for-masquerade');
    // a name the rules could misread is not used: nothing is local then
    const bad = withIface('a"b', false);
    expect(bad).not.toContain('iifname');
    expect(bad).not.toContain('mark-for-masquerade');
    // switching the detection is a node-level change: the next sync is full
    const a1 = snapshotOf([port]);
    const p1 = planSync(a1, fullDelta(a1), undefined);
    const a2 = { ...a1, localInterface: { name: 'cbr0', prefix: false } };
    expect(planSync(a2, partialDelta([]), p1.commit()).full).toBe(true);
  });

  it('masquerade: outside cluster CIDR only; none without a cluster CIDR; all with masqueradeAll', () => {
    const port = servicePort({ clusterEndpoints: [ep1] });
    const withCIDR = chainBody(scripts(snapshotOf([port])).full, 'services');
    expect(withCIDR).toContain('ip saddr != @cluster-cidrs ip daddr @cluster-ips jump mark-for-masquerade');
    const noCIDR = chainBody(scripts(snapshotOf([port], { clusterCIDRs: { IPv4: [] } })).full, 'services');
    expect(noCIDR).not.toContain('mark-for-masquerade');
    const all = chainBody(scripts(snapshotOf([port], { masqueradeAll: true })).full, 'services');
    expect(all).toContain('ip daddr @cluster-ips jump mark-for-masquerade');
    const masq = chainBody(scripts(snapshotOf([port])).full, 'masquerading');
    expect(masq.split('\n').map((l) => l.trim())).toEqual([
      'ct status dnat update @hairpin { ip daddr . ip daddr }',
      'ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade',
      'meta mark & 0x4000 == 0 return',
      'meta mark set meta mark ^ 0x4000',
      'masquerade fully-random',
    ]);
    const bit3 = planSync(snapshotOf([port]), fullDelta(snapshotOf([port])), undefined, {
      masqueradeBit: 3,
    }).script;
    expect(chainBody(bit3, 'mark-for-masquerade')).toContain('meta mark | 0x8');
  });

  it('nodePortAddresses: CIDRs restrict NodePorts, an empty list disables them', () => {
    const port = servicePort({ nodePort: 30080, clusterEndpoints: [ep1] });
    const cidrs = scripts(
      snapshotOf([port], {
        nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: ['192.168.77.0/24'] }, IPv6: { kind: 'all' } },
      }),
    ).full;
    expect(cidrs).toMatch(
      /set nodeport-addresses \{ type ipv4_addr; flags interval; auto-merge; elements = \{ 192\.168\.77\.0\/24 \}; \}/,
    );
    expect(chainBody(cidrs, 'services')).toContain(
      'ip daddr @nodeport-addresses meta l4proto . th dport vmap @service-nodeports',
    );
    const none = scripts(
      snapshotOf([port], {
        nodePortAddresses: { IPv4: { kind: 'cidrs', cidrs: [] }, IPv6: { kind: 'all' } },
      }),
    ).full;
    expect(added(none, 'service-nodeports')).toEqual([]);
    expect(chainBody(none, 'services')).not.toContain('service-nodeports');
  });

  it('IPv6 alongside IPv4', () => {
    const s = snapshotOf(
      [
        servicePort({ clusterEndpoints: [ep1] }),
        servicePort({
          family: 'IPv6',
          clusterIP: 'fd00:96::10',
          nodePort: 30080,
          clusterEndpoints: [endpoint('fd00:244::5', 8080)],
        }),
      ],
      { families: ['IPv4', 'IPv6'] },
    );
    const { full } = scripts(s);
    expect(full).toContain('delete table ip6 switchyard\ntable ip6 switchyard {');
    expect(added(full, 'service-ips', 'ip6')).toEqual(['fd00:96::10 . tcp . 80 : goto ep-ip-1']);
    expect(added(full, 'ip-endpoints', 'ip6')).toEqual(['fd00:96::10 . tcp . 80 . 0 : fd00:244::5 . 8080']);
    expect(full).toContain(
      'dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 1 map @ip-endpoints',
    );
    expect(full).toContain('ip6 daddr != ::1');
    expect(added(full, 'service-ips', 'ip')).toEqual(['10.96.0.10 . tcp . 80 : goto ep-ip-1']);
  });

  it('malformed pieces are skipped and counted; the rest still renders', () => {
    const s = snapshotOf([
      servicePort({
        name: 'bad',
        clusterIP: '10.96.0.300',
        port: 70000,
        nodePort: 0,
        clusterEndpoints: [ep1],
      }),
      servicePort({
        name: 'eps',
        clusterIP: '10.96.0.31',
        clusterEndpoints: [endpoint('not-an-ip', 80), endpoint('10.244.1.9', 0), ep1],
      }),
      servicePort({ name: 'v6-in-v4', clusterIP: 'fd00::1', clusterEndpoints: [ep1] }),
    ]);
    const plan = planSync(s, fullDelta(s), undefined);
    expect(added(plan.script, 'service-ips')).toEqual(['10.96.0.31 . tcp . 80 : goto ep-ip-1']);
    expect(plan.stats.skipped).toBeGreaterThanOrEqual(5);
  });

  it('two Services claiming one external IP: the first (by id) wins, the other takes over when it goes', () => {
    const a = servicePort({
      name: 'a',
      clusterIP: '10.96.0.40',
      externalIPs: ['192.168.77.100'],
      clusterEndpoints: [ep1],
    });
    const b = servicePort({
      name: 'b',
      clusterIP: '10.96.0.41',
      externalIPs: ['192.168.77.100'],
      clusterEndpoints: [ep2],
    });
    const s1 = snapshotOf([b, a]);
    const s2 = withPorts(s1, [], [a.id]);
    const { full, inc } = scripts(s1, s2, partialDelta([], [a.id]));
    expect(added(full, 'ip-endpoints')).toContain('192.168.77.100 . tcp . 80 . 0 : 10.244.1.1 . 8080');
    expect(added(full, 'ip-endpoints')).not.toContain('192.168.77.100 . tcp . 80 . 0 : 10.244.1.2 . 8080');
    expect(deleted(inc, 'ip-endpoints')).toContain('192.168.77.100 . tcp . 80 . 0');
    expect(added(inc, 'ip-endpoints')).toEqual(['192.168.77.100 . tcp . 80 . 0 : 10.244.1.2 . 8080']);
  });
});

describe('nftables render: incremental sync', () => {
  const a = servicePort({ name: 'a', clusterIP: '10.96.0.50', clusterEndpoints: [ep1, ep2] });
  const b = servicePort({ name: 'b', clusterIP: '10.96.0.51', clusterEndpoints: [ep1] });
  const base = snapshotOf([a, b]);

  it('sends only the changed elements, never the table', () => {
    const a2 = servicePort({
      name: 'a',
      clusterIP: '10.96.0.50',
      clusterEndpoints: [ep1, ep2, endpoint('10.244.1.3', 8080)],
    });
    const { inc } = scripts(base, withPorts(base, [a2]), partialDelta([a.id]));
    expect(inc).not.toMatch(/table ip switchyard \{|delete table/);
    // group chains for 1..64 endpoints exist since the full sync: nothing but elements
    expect(inc).not.toMatch(/chain/);
    expect(deleted(inc, 'service-ips')).toEqual(['10.96.0.50 . tcp . 80']);
    expect(added(inc, 'service-ips')).toEqual(['10.96.0.50 . tcp . 80 : goto ep-ip-3']);
    // endpoints 0 and 1 are unchanged; only index 2 is new
    expect(deleted(inc, 'ip-endpoints')).toEqual([]);
    expect(added(inc, 'ip-endpoints')).toEqual(['10.96.0.50 . tcp . 80 . 2 : 10.244.1.3 . 8080']);
  });

  it('an endpoint count beyond the pre-created group chains upgrades the sync to full', () => {
    const eps = Array.from({ length: PRECREATED_GROUPS + 1 }, (_, i) => endpoint(`10.244.3.${i + 1}`, 8080));
    const big = servicePort({ name: 'a', clusterIP: '10.96.0.50', clusterEndpoints: eps });
    const p1 = planSync(base, fullDelta(base), undefined);
    const p2 = planSync(withPorts(base, [big]), partialDelta([a.id]), p1.commit());
    expect(p2.full).toBe(true);
    expect(chainBody(p2.script, `ep-ip-${PRECREATED_GROUPS + 1}`)).toContain(
      `numgen random mod ${PRECREATED_GROUPS + 1} map @ip-endpoints`,
    );
    // once created, a later incremental sync can use it
    const state = p2.commit();
    const big2 = servicePort({ name: 'b', clusterIP: '10.96.0.51', clusterEndpoints: eps });
    const p3 = planSync(withPorts(base, [big, big2]), partialDelta([b.id]), state);
    expect(p3.full).toBe(false);
    expect(added(p3.script, 'service-ips')).toEqual([
      `10.96.0.51 . tcp . 80 : goto ep-ip-${PRECREATED_GROUPS + 1}`,
    ]);
  });

  it('a marking chain beyond the pre-created ones brings its unmarked sibling, declared first', () => {
    const eps = Array.from({ length: PRECREATED_GROUPS + 2 }, (_, i) => endpoint(`10.244.3.${i + 1}`, 8080));
    // only the external path forwards: nothing else asks for ep-ip-<n>
    const ext = servicePort({
      name: 'ext',
      clusterIP: '10.96.0.60',
      externalIPs: ['192.168.77.100'],
      clusterEndpoints: eps,
      internalEndpoints: [],
    });
    const n = PRECREATED_GROUPS + 2;
    const plan = planSync(snapshotOf([ext]), fullDelta(snapshotOf([ext])), undefined);
    expect(added(plan.script, 'service-ips')).toEqual([`192.168.77.100 . tcp . 80 : goto ep-ipm-${n}`]);
    expect(chainBody(plan.script, `ep-ipm-${n}`)).toMatch(new RegExp(`goto ep-ip-${n}$`));
    expect(chainBody(plan.script, `ep-ip-${n}`)).toContain(`numgen random mod ${n} map @ip-endpoints`);
    expect(plan.script.indexOf(`chain ep-ip-${n} {`)).toBeLessThan(
      plan.script.indexOf(`chain ep-ipm-${n} {`),
    );
  });

  it('removes stale elements; shared elements stay while another Service uses them', () => {
    const { inc } = scripts(base, withPorts(base, [], [a.id]), partialDelta([], [a.id]));
    expect(deleted(inc, 'service-ips')).toEqual(['10.96.0.50 . tcp . 80']);
    expect(deleted(inc, 'ip-endpoints').sort()).toEqual([
      '10.96.0.50 . tcp . 80 . 0',
      '10.96.0.50 . tcp . 80 . 1',
    ]);
    expect(deleted(inc, 'cluster-ips')).toEqual(['10.96.0.50']);
    // a second port of the same Service shares the ClusterIP element: it stays until both go
    const a443 = servicePort({
      name: 'a',
      portName: 'https',
      clusterIP: '10.96.0.50',
      port: 443,
      clusterEndpoints: [ep1],
    });
    const both = snapshotOf([a, a443, b]);
    const first = scripts(both, withPorts(both, [], [a.id]), partialDelta([], [a.id])).inc;
    expect(deleted(first, 'service-ips')).toEqual(['10.96.0.50 . tcp . 80']);
    expect(deleted(first, 'cluster-ips')).toEqual([]);
    const second = scripts(both, withPorts(both, [], [a.id, a443.id]), partialDelta([], [a.id, a443.id])).inc;
    expect(deleted(second, 'cluster-ips')).toEqual(['10.96.0.50']);
  });

  it('a change to nothing renders nothing', () => {
    const { inc } = scripts(base, withPorts(base, [a]), partialDelta([a.id]));
    expect(inc).toBe('');
  });

  it('endpoints going away → no-endpoint reject element replaces the service element', () => {
    const a0 = servicePort({ name: 'a', clusterIP: '10.96.0.50', clusterEndpoints: [] });
    const { inc } = scripts(base, withPorts(base, [a0]), partialDelta([a.id]));
    expect(deleted(inc, 'service-ips')).toEqual(['10.96.0.50 . tcp . 80']);
    expect(added(inc, 'no-endpoint-services')).toEqual(['10.96.0.50 . tcp . 80 : goto reject-chain']);
  });

  it('affinity objects are created, rewritten and deleted incrementally', () => {
    const aff = (eps: (typeof ep1)[]) =>
      servicePort({
        name: 'aff',
        clusterIP: '10.96.0.60',
        sessionAffinity: { timeoutSeconds: 60 },
        clusterEndpoints: eps,
      });
    const s1 = snapshotOf([aff([ep1, ep2])]);
    const s2 = withPorts(s1, [aff([ep1])]);
    const { full, inc, state } = scripts(s1, s2, partialDelta([aff([ep1]).id]));
    const dispatch = /goto (aff-\S+)/.exec(added(full, 'service-ips')[0]!)![1]!;
    expect(inc).toContain(`flush chain ip switchyard ${dispatch}`);
    const gone = [...inc.matchAll(/^delete chain ip switchyard (\S+)$/gm)].map((m) => m[1]);
    const goneSets = [...inc.matchAll(/^delete set ip switchyard (\S+)$/gm)].map((m) => m[1]);
    expect(gone).toHaveLength(1);
    expect(goneSets).toEqual(gone);
    expect(inc).not.toContain('add set');
    // removing the Service removes the rest
    const s3 = withPorts(s2, [], [aff([ep1]).id]);
    const p3 = planSync(s3, partialDelta([], [aff([ep1]).id]), state);
    expect(p3.script).toContain(`delete element ip switchyard service-ips { 10.96.0.60 . tcp . 80 }`);
    expect(p3.script).toContain(`delete chain ip switchyard ${dispatch}`);
    expect(p3.script.indexOf('delete element')).toBeLessThan(
      p3.script.indexOf(`delete chain ip switchyard ${dispatch}`),
    );
  });

  it('a node-level change (cluster CIDR) upgrades an incremental sync to full', () => {
    const s2 = { ...base, clusterCIDRs: { IPv4: ['10.245.0.0/16'], IPv6: [] } };
    const p1 = planSync(base, fullDelta(base), undefined);
    const p2 = planSync(s2, partialDelta([]), p1.commit());
    expect(p2.full).toBe(true);
    expect(p2.script).toContain('delete table ip switchyard');
  });

  it('render() equals planSync().script and does not change lastApplied', () => {
    const p1 = planSync(base, fullDelta(base), undefined);
    const state = p1.commit();
    const before = JSON.stringify([...state.families.get('IPv4')!.contributions.keys()]);
    const next = withPorts(base, [], [a.id]);
    const s1 = render(next, partialDelta([], [a.id]), state);
    const s2 = render(next, partialDelta([], [a.id]), state);
    expect(s1).toBe(s2);
    expect(JSON.stringify([...state.families.get('IPv4')!.contributions.keys()])).toBe(before);
  });
});

describe('NftablesBackend through the FakeExecutor', () => {
  const a = servicePort({ name: 'a', clusterIP: '10.96.0.70', clusterEndpoints: [ep1] });
  const s1 = snapshotOf([a]);

  it('registration creates a backend named nftables', () => {
    const backend = nftablesRegistration.create(ctx(new FakeExecutor()));
    expect(nftablesRegistration.name).toBe('nftables');
    expect(backend.name).toBe('nftables');
  });

  it('one nft -f - per sync; a failed transaction forces the next sync to be full', async () => {
    const ex = new FakeExecutor();
    const backend = nftablesRegistration.create(ctx(ex));
    const r1 = await backend.sync(s1, fullDelta(s1));
    expect(r1.full).toBe(true);
    expect(ex.callsTo('nft')).toHaveLength(1);
    expect(ex.calls[0]!.args).toEqual(['-f', '-']);

    const a2 = servicePort({ name: 'a', clusterIP: '10.96.0.70', clusterEndpoints: [ep1, ep2] });
    const s2 = withPorts(s1, [a2]);
    const r2 = await backend.sync(s2, partialDelta([a.id]));
    expect(r2.full).toBe(false);
    expect(ex.calls[1]!.stdin).not.toContain('delete table');

    ex.failNext('nft', 'Error: Could not process rule: No such file or directory');
    const a3 = servicePort({ name: 'a', clusterIP: '10.96.0.70', clusterEndpoints: [ep2] });
    const s3 = withPorts(s2, [a3]);
    await expect(backend.sync(s3, partialDelta([a.id]))).rejects.toThrow(/nft -f - exited 1/);
    // the core retries with a partial delta by mistake: the backend still renders everything
    const r4 = await backend.sync(s3, partialDelta([a.id]));
    expect(r4.full).toBe(true);
    expect(ex.calls.at(-1)!.stdin).toContain('delete table ip switchyard\ntable ip switchyard {');
  });

  it('a sync with nothing to change does not run nft', async () => {
    const ex = new FakeExecutor();
    const backend = nftablesRegistration.create(ctx(ex));
    await backend.sync(s1, fullDelta(s1));
    await backend.sync(s1, partialDelta([]));
    expect(ex.callsTo('nft')).toHaveLength(1);
  });

  it('cleanup deletes both tables and tolerates their absence', async () => {
    const ex = new FakeExecutor().on((c) =>
      c.command === 'nft'
        ? { code: 1, stderr: 'Error: Could not process rule: No such file or directory' }
        : undefined,
    );
    const backend = nftablesRegistration.create(ctx(ex));
    await expect(backend.cleanup()).resolves.toBeUndefined();
    expect(ex.calls[0]!.stdin).toBe(
      'add table ip switchyard\ndelete table ip switchyard\nadd table ip6 switchyard\ndelete table ip6 switchyard\n',
    );
    const broken = nftablesRegistration.create(
      ctx(new FakeExecutor().failNext('nft', 'Error: Operation not permitted')),
    );
    await expect(broken.cleanup()).rejects.toThrow(/Operation not permitted/);
  });

  it('probe reports the nft version and the kernel check; missing nft is unsupported', async () => {
    const ok = new FakeExecutor().on((c) =>
      c.args[0] === '--version' ? { stdout: 'nftables v1.0.6 (Lester Gooch #5)\n' } : undefined,
    );
    const support = await nftablesRegistration.create(ctx(ok)).probe();
    expect(support).toEqual({ supported: true, details: { nft: '1.0.6' } });
    expect(ok.calls[1]!.args).toEqual(['--check', '-f', '-']);
    const refused = new FakeExecutor()
      .on((c) => (c.args[0] === '--version' ? { stdout: 'nftables v1.0.6' } : undefined))
      .on((c) =>
        c.args[0] === '--check'
          ? { code: 1, stderr: 'Error: Could not process rule: Operation not supported' }
          : undefined,
      );
    const r = await nftablesRegistration.create(ctx(refused)).probe();
    expect(r.supported).toBe(false);
    expect(r.reason).toMatch(/Operation not supported/);
    const missing = { run: () => Promise.reject(new Error('cannot run nft: spawn nft ENOENT')) };
    const m = await nftablesRegistration.create({ ...ctx(new FakeExecutor()), executor: missing }).probe();
    expect(m.supported).toBe(false);
    expect(m.reason).toMatch(/ENOENT/);
  });

  it('UDP conntrack: the first sync sweeps only un-DNATed flows, later syncs clear stale ones', async () => {
    const udp = (eps: (typeof ep1)[]) =>
      servicePort({ name: 'dns', protocol: 'UDP', port: 53, clusterIP: '10.96.0.53', clusterEndpoints: eps });
    const listing = [
      // sent before anything handled the Service: answered (or not) by the address itself
      'udp      17 25 src=10.244.2.2 dst=10.96.0.53 sport=40001 dport=53 [UNREPLIED] src=10.96.0.53 dst=10.244.2.2 sport=53 dport=40001 mark=0 use=1',
      // DNATed by the previous run: live, kept
      'udp      17 25 src=10.244.2.2 dst=10.96.0.53 sport=40002 dport=53 src=10.244.1.1 dst=10.244.2.2 sport=8080 dport=40002 mark=0 use=1',
    ].join('\n');
    const ex = new FakeExecutor().on((c) =>
      c.command === 'conntrack' && c.args[0] === '-L' ? { stdout: listing } : undefined,
    );
    const backend = nftablesRegistration.create(ctx(ex));
    const u0 = snapshotOf([udp([ep1])]);
    await backend.sync(u0, fullDelta(u0));
    expect(ex.callsTo('conntrack').map((c) => c.args)).toEqual([
      ['-L', '-p', 'udp', '-f', 'ipv4'],
      [
        '-D',
        '-f',
        'ipv4',
        '-p',
        'udp',
        '--orig-src',
        '10.244.2.2',
        '--orig-port-src',
        '40001',
        '--orig-dst',
        '10.96.0.53',
        '--orig-port-dst',
        '53',
      ],
    ]);
    ex.calls.length = 0;
    const u1 = withPorts(u0, [udp([ep2])]);
    await backend.sync(u1, partialDelta([udp([]).id]));
    expect(ex.callsTo('conntrack').map((c) => c.args)).toEqual([
      [
        '-D',
        '-f',
        'ipv4',
        '-p',
        'udp',
        '--orig-dst',
        '10.96.0.53',
        '--orig-port-dst',
        '53',
        '--reply-src',
        '10.244.1.1',
        '--reply-port-src',
        '8080',
      ],
    ]);
  });
});
