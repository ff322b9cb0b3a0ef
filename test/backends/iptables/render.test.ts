/**
 * Test IP plan: pods 10.244.0.0/16, ClusterIPs 10.96.0.0/16, node 192.168.77.2,
 * external client 192.168.77.1, LB source range 203.0.113.0/25.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CHAINS,
  MAX_CHAIN_NAME,
  hashLetters,
  serviceChainName,
  endpointChainName,
  servicePortHash,
} from '../../../backends/iptables/names.js';
import {
  addressBucket,
  nodePortBucket,
  DISPATCH_BUCKETS,
  markHex,
  parseSaveChains,
  renderFamily as renderParts,
  restoreText,
  type FamilyRender,
  type RenderOptions,
} from '../../../backends/iptables/render.js';
import type { Snapshot } from '../../../core/model/snapshot.js';
import { ep, fullDelta, partialDelta, plan, snapshot } from './fixtures.js';

function renderFamily(...args: Parameters<typeof renderParts>): FamilyRender & { text: string } {
  const r = renderParts(...args);
  return { ...r, text: restoreText(r) };
}

const OPTS: RenderOptions = { masqueradeBit: 14, localhostNodePorts: true };

function lines(text: string): string[] {
  return text.split('\n');
}

function table(text: string, name: 'nat' | 'filter'): string[] {
  const all = lines(text);
  const start = all.indexOf(`*${name}`);
  const end = all.indexOf('COMMIT', start);
  return all.slice(start + 1, end);
}

function chainRules(text: string, tbl: 'nat' | 'filter', chain: string): string[] {
  return table(text, tbl).filter((l) => l.startsWith(`-A ${chain} `));
}

const svcChain = (id: string): string => `SY-${servicePortHash(id)}-SVC`;
const extChain = (id: string): string => `SY-${servicePortHash(id)}-EXT`;
const svxChain = (id: string): string => `SY-${servicePortHash(id)}-SVX`;
const fwChain = (id: string): string => `SY-${servicePortHash(id)}-FW`;
/** An endpoint chain of any Service port. */
const SEP = /^SY-[a-z]{16}-[a-z]{8}$/;

describe('names', () => {
  it('hashes a Service port id to 16 lowercase letters of its SHA-256', () => {
    const id = 'default/web:http/TCP/IPv4';
    const digest = createHash('sha256').update(id).digest();
    const expected = [...digest.subarray(0, 16)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
    expect(servicePortHash(id)).toBe(expected);
    expect(hashLetters(id, 16)).toBe(expected);
  });

  it("names sort after every fixed chain, and a port's chains share its prefix", () => {
    const id = 'default/web:http/TCP/IPv4';
    const names = [
      svcChain(id),
      extChain(id),
      svxChain(id),
      fwChain(id),
      endpointChainName(id, '10.0.0.1', 80),
    ];
    for (const n of names) {
      expect(n.startsWith(`SY-${servicePortHash(id)}-`)).toBe(true);
      for (const fixed of Object.values(CHAINS)) expect(fixed < n).toBe(true);
    }
    expect(serviceChainName('SVC', servicePortHash(id))).toBe(svcChain(id));
  });

  it('keeps every chain within 28 characters and distinct per service port and endpoint', () => {
    const a = 'a-very-long-namespace-name-indeed/a-very-long-service-name-too:https-port/TCP/IPv6';
    const names = [
      svcChain(a),
      extChain(a),
      svxChain(a),
      fwChain(a),
      endpointChainName(a, 'fd00:10:244:1::1234', 65535),
      CHAINS.externalServices,
    ];
    for (const n of names) expect(n.length).toBeLessThanOrEqual(MAX_CHAIN_NAME);
    expect(svcChain(a)).not.toBe(svcChain(a.replace('IPv6', 'IPv4')));
    expect(endpointChainName(a, '10.244.0.1', 80)).not.toBe(endpointChainName(a, '10.244.0.1', 81));
    expect(endpointChainName(a, '10.244.0.1', 80)).toMatch(SEP);
    expect(endpointChainName(a, '10.244.0.1', 80, servicePortHash(a), 1)).not.toBe(
      endpointChainName(a, '10.244.0.1', 80),
    );
  });
});

describe('renderFamily: endpoint chain names', () => {
  it('two endpoints of one port never share a chain, even when the name cache says they would', () => {
    const p = plan({
      name: 'clash',
      clusterIP: '10.96.9.9',
      endpoints: [ep('10.244.9.1'), ep('10.244.9.2')],
    });
    const taken = endpointChainName(p.id, '10.244.9.1', 8080);
    // a cache that claims the second endpoint has the first one's name (what a hash collision looks like)
    const names = new Map<string, string>([
      [`${p.id}|10.244.9.1|8080`, taken],
      [`${p.id}|10.244.9.2|8080`, taken],
    ]);
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, { ...OPTS, names });
    const seps = chainRules(r.text, 'nat', svcChain(p.id))
      .map((l) => l.split(' -j ')[1]!)
      .filter((t) => SEP.test(t));
    expect(seps).toHaveLength(2);
    expect(new Set(seps).size).toBe(2);
    expect(seps).toContain(taken);
    expect(names.get(`${p.id}|10.244.9.2|8080`)).not.toBe(taken);
  });
});

describe('renderFamily: ClusterIP', () => {
  const web = plan({
    name: 'web',
    clusterIP: '10.96.0.10',
    port: 80,
    endpoints: [ep('10.244.1.2'), ep('10.244.1.3'), ep('10.244.2.4', 8080, false)],
  });
  const snap = snapshot([web]);
  const r = renderFamily(snap, 'IPv4', fullDelta(snap), undefined, OPTS);

  it('dispatches the ClusterIP port to the SVC chain with the protocol match', () => {
    expect(chainRules(r.text, 'nat', CHAINS.services)).toContain(
      `-A SY-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:/TCP/IPv4 cluster IP" -j ${svcChain(web.id)}`,
    );
  });

  it('masquerades off-cluster sources, then chooses with statistic probabilities 1/n…1', () => {
    const rules = chainRules(r.text, 'nat', svcChain(web.id));
    expect(rules[0]).toBe(`-A ${svcChain(web.id)} ! -s 10.244.0.0/16 -j SY-MARK-MASQ`);
    expect(rules[1]).toMatch(
      /-m statistic --mode random --probability 0\.3333333333 -j SY-[a-z]{16}-[a-z]{8}$/,
    );
    expect(rules[2]).toMatch(
      /-m statistic --mode random --probability 0\.5000000000 -j SY-[a-z]{16}-[a-z]{8}$/,
    );
    expect(rules[3]).toMatch(/^-A SY-[a-z]{16}-SVC -j SY-[a-z]{16}-[a-z]{8}$/);
    expect(rules).toHaveLength(4);
  });

  it('writes one SEP chain per endpoint with hairpin masquerade and DNAT', () => {
    const sep = endpointChainName(web.id, '10.244.2.4', 8080);
    expect(chainRules(r.text, 'nat', sep)).toEqual([
      `-A ${sep} -s 10.244.2.4/32 -j SY-MARK-MASQ`,
      `-A ${sep} -p tcp -m tcp -j DNAT --to-destination 10.244.2.4:8080`,
    ]);
  });

  it('writes the mark-and-masquerade pair with the configured bit', () => {
    expect(markHex(14)).toBe('0x4000');
    expect(chainRules(r.text, 'nat', CHAINS.markMasq)).toEqual(['-A SY-MARK-MASQ -j MARK --or-mark 0x4000']);
    expect(chainRules(r.text, 'nat', CHAINS.postrouting)).toEqual([
      '-A SY-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A SY-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A SY-POSTROUTING -m comment --comment "switchyard service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]);
    const r2 = renderFamily(snap, 'IPv4', fullDelta(snap), undefined, { ...OPTS, masqueradeBit: 3 });
    expect(chainRules(r2.text, 'nat', CHAINS.markMasq)).toEqual(['-A SY-MARK-MASQ -j MARK --or-mark 0x8']);
  });

  it('rejects every other port of the ClusterIP in filter, and does not reject the defined port', () => {
    const f = chainRules(r.text, 'filter', CHAINS.services);
    expect(f).toEqual([
      '-A SY-SERVICES -d 10.96.0.10/32 -m comment --comment "ClusterIP 10.96.0.10: port not defined by any Service" -j REJECT',
    ]);
  });

  it('jumps to SY-NODEPORTS last, for local destinations', () => {
    const s = chainRules(r.text, 'nat', CHAINS.services);
    expect(s[s.length - 1]).toMatch(/^-A SY-SERVICES -m addrtype --dst-type LOCAL .*-j SY-NODEPORTS$/);
    const noLocalhost = renderFamily(snap, 'IPv4', fullDelta(snap), undefined, {
      ...OPTS,
      localhostNodePorts: false,
    });
    expect(chainRules(noLocalhost.text, 'nat', CHAINS.services).at(-1)).toContain(
      '! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL',
    );
  });

  it('is well-formed restore input: tables, declarations before rules, COMMIT', () => {
    const l = lines(r.text);
    expect(l[0]).toBe('*nat');
    expect(l.filter((x) => x === 'COMMIT')).toHaveLength(2);
    const declared = new Set([...parseSaveChains(r.text).get('nat')!]);
    for (const rule of table(r.text, 'nat').filter((x) => x.startsWith('-A '))) {
      expect(declared.has(rule.split(' ')[1]!)).toBe(true);
      const jump = / -j (SY-\S+)/.exec(rule)?.[1];
      if (jump) expect(declared.has(jump)).toBe(true);
    }
    expect(r.full).toBe(true);
    expect(r.stats.natRules).toBe(table(r.text, 'nat').filter((x) => x.startsWith('-A ')).length);
    expect(r.stats.filterRules).toBe(table(r.text, 'filter').filter((x) => x.startsWith('-A ')).length);
  });

  it('masquerades everything with masqueradeAll, nothing when no cluster CIDR, via SY-MASQ-NONPOD with several', () => {
    const all = renderFamily(
      snapshot([web], { masqueradeAll: true }),
      'IPv4',
      fullDelta(snap),
      undefined,
      OPTS,
    );
    expect(chainRules(all.text, 'nat', svcChain(web.id))[0]).toBe(`-A ${svcChain(web.id)} -j SY-MARK-MASQ`);
    const none = renderFamily(
      snapshot([web], { clusterCIDRsV4: [] }),
      'IPv4',
      fullDelta(snap),
      undefined,
      OPTS,
    );
    expect(chainRules(none.text, 'nat', svcChain(web.id)).some((x) => x.includes('MASQ'))).toBe(false);
    const two = renderFamily(
      snapshot([web], { clusterCIDRsV4: ['10.244.0.0/16', '10.250.0.0/16'] }),
      'IPv4',
      fullDelta(snap),
      undefined,
      OPTS,
    );
    expect(chainRules(two.text, 'nat', svcChain(web.id))[0]).toBe(`-A ${svcChain(web.id)} -j SY-MASQ-NONPOD`);
    expect(chainRules(two.text, 'nat', CHAINS.masqNonPod)).toEqual([
      '-A SY-MASQ-NONPOD -s 10.244.0.0/16 -j RETURN',
      '-A SY-MASQ-NONPOD -s 10.250.0.0/16 -j RETURN',
      '-A SY-MASQ-NONPOD -j SY-MARK-MASQ',
    ]);
  });
});

describe('renderFamily: verdicts and service types', () => {
  it('REJECTs a Service without endpoints (ClusterIP and every external destination) and writes no nat chain', () => {
    const p = plan({
      name: 'empty',
      protocol: 'UDP',
      clusterIP: '10.96.0.20',
      port: 53,
      nodePort: 30053,
      externalIPs: ['192.168.77.50'],
      loadBalancerIPs: ['192.168.77.60'],
    });
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    expect(r.applied.services.get(p.id)!.chains).toEqual([]);
    expect(chainRules(r.text, 'filter', CHAINS.services)[0]).toBe(
      '-A SY-SERVICES -d 10.96.0.20/32 -p udp -m udp --dport 53 -m comment --comment "default/empty:/UDP/IPv4 has no endpoints" -j REJECT',
    );
    const ext = chainRules(r.text, 'filter', CHAINS.externalServices);
    expect(ext).toEqual([
      '-A SY-EXTERNAL-SERVICES -d 192.168.77.50/32 -p udp -m udp --dport 53 -m comment --comment "default/empty:/UDP/IPv4 has no endpoints" -j REJECT',
      '-A SY-EXTERNAL-SERVICES -d 192.168.77.60/32 -p udp -m udp --dport 53 -m comment --comment "default/empty:/UDP/IPv4 has no endpoints" -j REJECT',
      '-A SY-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p udp -m udp --dport 30053 -m comment --comment "default/empty:/UDP/IPv4 has no endpoints" -j REJECT',
    ]);
    expect(table(r.text, 'nat').some((l) => l.includes('192.168.77.50'))).toBe(false);
  });

  it('NodePort, externalIP and LB IP with Cluster policy go to SY-EXT-, which marks for masquerade', () => {
    const p = plan({
      name: 'shop',
      clusterIP: '10.96.0.30',
      port: 443,
      nodePort: 30443,
      externalIPs: ['192.168.77.50'],
      loadBalancerIPs: ['192.168.77.60'],
      endpoints: [ep('10.244.1.5', 8443)],
    });
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    const ext = extChain(p.id);
    const svc = chainRules(r.text, 'nat', CHAINS.services);
    expect(svc).toContain(
      `-A SY-SERVICES -d 192.168.77.50/32 -p tcp -m tcp --dport 443 -m comment --comment "default/shop:/TCP/IPv4 external IP" -j ${ext}`,
    );
    expect(svc).toContain(
      `-A SY-SERVICES -d 192.168.77.60/32 -p tcp -m tcp --dport 443 -m comment --comment "default/shop:/TCP/IPv4 loadbalancer IP" -j ${ext}`,
    );
    expect(chainRules(r.text, 'nat', CHAINS.nodePorts)).toEqual([
      `-A SY-NODEPORTS -p tcp -m tcp --dport 30443 -m comment --comment "default/shop:/TCP/IPv4" -j ${ext}`,
    ]);
    const sep = endpointChainName(p.id, '10.244.1.5', 8443);
    expect(chainRules(r.text, 'nat', ext)).toEqual([`-A ${ext} -j SY-MARK-MASQ`, `-A ${ext} -j ${sep}`]);
    expect(chainRules(r.text, 'filter', CHAINS.externalServices)).toEqual([]);
  });

  it('NodePorts on CIDRs match those addresses only', () => {
    const p = plan({ name: 'np', clusterIP: '10.96.0.31', nodePort: 30001 });
    const s = snapshot([p], { nodePortAll: false });
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    expect(chainRules(r.text, 'nat', CHAINS.services).at(-1)).toBe(
      '-A SY-SERVICES -d 192.168.77.2/32 -m addrtype --dst-type LOCAL -m comment --comment "switchyard service nodeports; NOTE: this must be the last rule in this chain" -j SY-NODEPORTS',
    );
    expect(chainRules(r.text, 'filter', CHAINS.externalServices)[0]).toContain(
      '-d 192.168.77.2/32 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30001',
    );
  });

  /** externalTrafficPolicy Local, one local and one remote endpoint. */
  const localPolicyPlan = (): ReturnType<typeof plan> =>
    plan({
      name: 'local',
      clusterIP: '10.96.0.40',
      nodePort: 30040,
      externalPolicyLocal: true,
      endpoints: [ep('10.244.1.7'), ep('10.244.2.8', 8080, false)],
    });

  it('externalTrafficPolicy Local: pods and the node short-circuit to every endpoint, outside traffic to local ones only', () => {
    const p = localPolicyPlan();
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    const ext = extChain(p.id);
    const svx = svxChain(p.id);
    const rules = chainRules(r.text, 'nat', ext);
    expect(rules[0]).toMatch(new RegExp(`^-A ${ext} -s 10.244.0.0/16 .*-j ${svx}$`));
    expect(rules[1]).toMatch(/-m addrtype --src-type LOCAL -j SY-MARK-MASQ$/);
    expect(rules[2]).toMatch(new RegExp(`-m addrtype --src-type LOCAL -j ${svx}$`));
    expect(rules.slice(3)).toEqual([`-A ${ext} -j ${endpointChainName(p.id, '10.244.1.7', 8080)}`]);
    expect(rules.some((x) => x === `-A ${ext} -j SY-MARK-MASQ`)).toBe(false);
    expect(chainRules(r.text, 'nat', svx)).toHaveLength(2);
  });

  it('--detect-local-mode by interface: -i instead of the cluster CIDR, and a change re-renders everything', () => {
    const p = localPolicyPlan();
    const base = snapshot([p]);
    const s: Snapshot = { ...base, localInterface: { name: 'veth', prefix: true } };
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    expect(chainRules(r.text, 'nat', svcChain(p.id))[0]).toBe(
      `-A ${svcChain(p.id)} ! -i veth+ -j SY-MARK-MASQ`,
    );
    const ext = chainRules(r.text, 'nat', extChain(p.id));
    expect(ext[0]).toMatch(new RegExp(`^-A ${extChain(p.id)} -i veth\\+ .*-j ${svxChain(p.id)}$`));
    expect(r.text).not.toContain('10.244.0.0/16');
    const bridge = renderFamily(
      { ...base, localInterface: { name: 'cbr0', prefix: false } },
      'IPv4',
      fullDelta(s),
      undefined,
      OPTS,
    );
    expect(chainRules(bridge.text, 'nat', svcChain(p.id))[0]).toBe(
      `-A ${svcChain(p.id)} ! -i cbr0 -j SY-MARK-MASQ`,
    );
    // from CIDR detection to interface detection: every chain is written again
    const first = renderFamily(base, 'IPv4', fullDelta(base), undefined, OPTS);
    const next = renderFamily(s, 'IPv4', partialDelta([]), first.applied, OPTS);
    expect(next.full).toBe(true);
    expect(next.text).toContain('! -i veth+ -j SY-MARK-MASQ');
  });

  it('externalTrafficPolicy Local without local endpoints: short-circuit kept, outside traffic DROPped in filter', () => {
    const p = plan({
      name: 'remote-only',
      clusterIP: '10.96.0.41',
      nodePort: 30041,
      externalIPs: ['192.168.77.51'],
      externalPolicyLocal: true,
      endpoints: [ep('10.244.2.8', 8080, false)],
    });
    expect(p.external).toBe('drop');
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    const ext = extChain(p.id);
    expect(
      chainRules(r.text, 'nat', ext).every((x) => x.includes(svxChain(p.id)) || x.includes('SY-MARK-MASQ')),
    ).toBe(true);
    const f = chainRules(r.text, 'filter', CHAINS.externalServices);
    expect(f).toEqual([
      '-A SY-EXTERNAL-SERVICES -d 192.168.77.51/32 -p tcp -m tcp --dport 80 -m comment --comment "default/remote-only:/TCP/IPv4 has no local endpoints" -j DROP',
      '-A SY-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30041 -m comment --comment "default/remote-only:/TCP/IPv4 has no local endpoints" -j DROP',
    ]);
  });

  it('internalTrafficPolicy Local: ClusterIP to local endpoints only, DROP without any', () => {
    const p = plan({
      name: 'itp',
      clusterIP: '10.96.0.42',
      internalPolicyLocal: true,
      endpoints: [ep('10.244.1.9'), ep('10.244.2.9', 8080, false)],
    });
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    const rules = chainRules(r.text, 'nat', svcChain(p.id));
    expect(rules.filter((x) => SEP.test(x.split(' -j ')[1] ?? ''))).toEqual([
      `-A ${svcChain(p.id)} -j ${endpointChainName(p.id, '10.244.1.9', 8080)}`,
    ]);
    const none = plan({
      name: 'itp',
      clusterIP: '10.96.0.42',
      internalPolicyLocal: true,
      endpoints: [ep('10.244.2.9', 8080, false)],
    });
    const s2 = snapshot([none]);
    const r2 = renderFamily(s2, 'IPv4', fullDelta(s2), undefined, OPTS);
    expect(chainRules(r2.text, 'filter', CHAINS.services)[0]).toBe(
      '-A SY-SERVICES -d 10.96.0.42/32 -p tcp -m tcp --dport 80 -m comment --comment "default/itp:/TCP/IPv4 has no local endpoints" -j DROP',
    );
  });

  it('loadBalancerSourceRanges: LB IP → SY-FW-, allowed ranges → SY-EXT-, the rest dropped by SY-FIREWALL', () => {
    const p = plan({
      name: 'lb',
      clusterIP: '10.96.0.50',
      loadBalancerIPs: ['192.168.77.70'],
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      endpoints: [ep('10.244.1.10')],
    });
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    expect(chainRules(r.text, 'nat', CHAINS.services)).toContain(
      `-A SY-SERVICES -d 192.168.77.70/32 -p tcp -m tcp --dport 80 -m comment --comment "default/lb:/TCP/IPv4 loadbalancer IP" -j ${fwChain(p.id)}`,
    );
    expect(chainRules(r.text, 'nat', fwChain(p.id))).toEqual([
      `-A ${fwChain(p.id)} -s 203.0.113.0/25 -m comment --comment "default/lb:/TCP/IPv4 loadbalancer IP" -j ${extChain(p.id)}`,
    ]);
    expect(chainRules(r.text, 'filter', CHAINS.firewall)).toEqual([
      '-A SY-FIREWALL -d 192.168.77.70/32 -p tcp -m tcp --dport 80 -m comment --comment "default/lb:/TCP/IPv4 traffic not accepted by SY-FW" -j DROP',
    ]);
  });

  it('ClientIP affinity: recent --rcheck per endpoint before the random choice, recent --set in SEP', () => {
    const p = plan({
      name: 'sticky',
      protocol: 'SCTP',
      clusterIP: '10.96.0.60',
      affinitySeconds: 600,
      endpoints: [ep('10.244.1.11'), ep('10.244.1.12')],
    });
    const s = snapshot([p]);
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    const sep1 = endpointChainName(p.id, '10.244.1.11', 8080);
    const sep2 = endpointChainName(p.id, '10.244.1.12', 8080);
    const svc = svcChain(p.id);
    expect(chainRules(r.text, 'nat', svc).slice(1)).toEqual([
      `-A ${svc} -m recent --name ${sep1} --rcheck --seconds 600 --reap -j ${sep1}`,
      `-A ${svc} -m recent --name ${sep2} --rcheck --seconds 600 --reap -j ${sep2}`,
      `-A ${svc} -m statistic --mode random --probability 0.5000000000 -j ${sep1}`,
      `-A ${svc} -j ${sep2}`,
    ]);
    expect(chainRules(r.text, 'nat', sep1)[1]).toBe(
      `-A ${sep1} -p sctp -m sctp -m recent --name ${sep1} --set -j DNAT --to-destination 10.244.1.11:8080`,
    );
  });

  it('IPv6: renders only that family with /128 and bracketed DNAT targets', () => {
    const v6 = plan({
      name: 'web6',
      family: 'IPv6',
      clusterIP: 'fd00:10:96::10',
      endpoints: [ep('fd00:10:244:1::2')],
    });
    const v4 = plan({ name: 'web', clusterIP: '10.96.0.10', endpoints: [ep('10.244.1.2')] });
    const s = snapshot([v4, v6], { families: ['IPv4', 'IPv6'] });
    const r = renderFamily(s, 'IPv6', fullDelta(s), undefined, OPTS);
    expect(r.text).not.toContain('10.96.0.10');
    expect(chainRules(r.text, 'nat', CHAINS.services)[0]).toContain(
      '-d fd00:10:96::10/128 -p tcp -m tcp --dport 80',
    );
    const sep = endpointChainName(v6.id, 'fd00:10:244:1::2', 8080);
    expect(chainRules(r.text, 'nat', sep)).toEqual([
      `-A ${sep} -s fd00:10:244:1::2/128 -j SY-MARK-MASQ`,
      `-A ${sep} -p tcp -m tcp -j DNAT --to-destination [fd00:10:244:1::2]:8080`,
    ]);
    expect(chainRules(r.text, 'nat', svcChain(v6.id))[0]).toBe(
      `-A ${svcChain(v6.id)} ! -s fd00:10:244::/48 -j SY-MARK-MASQ`,
    );
    expect(chainRules(r.text, 'nat', CHAINS.services).at(-1)).toContain(
      '! -d ::1/128 -m addrtype --dst-type LOCAL',
    );
  });

  it('accepts health check node ports in filter SY-NODEPORTS', () => {
    const p = plan({ name: 'hc', clusterIP: '10.96.0.70', endpoints: [ep('10.244.1.2')] });
    const s = {
      ...snapshot([p]),
      healthChecks: [
        { serviceKey: 'default/hc', namespace: 'default', name: 'hc', port: 32000, localEndpoints: 1 },
      ],
    };
    const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, OPTS);
    expect(chainRules(r.text, 'filter', CHAINS.nodePorts)).toEqual([
      '-A SY-NODEPORTS -p tcp -m tcp --dport 32000 -m comment --comment "default/hc health check node port" -j ACCEPT',
    ]);
  });
});

describe('renderFamily: partial syncs and stale chains', () => {
  const a = plan({ name: 'a', clusterIP: '10.96.1.1', endpoints: [ep('10.244.1.1'), ep('10.244.1.2')] });
  const b = plan({ name: 'b', clusterIP: '10.96.1.2', nodePort: 30002, endpoints: [ep('10.244.1.3')] });
  const c = plan({ name: 'c', clusterIP: '10.96.1.3', endpoints: [ep('10.244.1.4')] });
  const s1 = snapshot([a, b, c]);
  const first = renderFamily(s1, 'IPv4', fullDelta(s1), undefined, OPTS);

  it('rewrites only changed Service ports, deleting the chains they no longer use; unchanged dispatch chains are not written', () => {
    const a2 = plan({ name: 'a', clusterIP: '10.96.1.1', endpoints: [ep('10.244.1.1'), ep('10.244.1.9')] });
    const s2 = snapshot([a2, b, c]);
    const r = renderFamily(s2, 'IPv4', partialDelta([a.id]), first.applied, OPTS);
    expect(r.full).toBe(false);
    expect(r.stats.servicePortsWritten).toBe(1);
    const nat = table(r.text, 'nat');
    const gone = endpointChainName(a.id, '10.244.1.2', 8080);
    const added = endpointChainName(a.id, '10.244.1.9', 8080);
    expect(nat).toContain(`:${added} - [0:0]`);
    expect(nat).toContain(`:${gone} - [0:0]`);
    expect(nat.at(-1)).toBe(`-X ${gone}`);
    expect(nat.filter((l) => l.startsWith('-X '))).toEqual([`-X ${gone}`]);
    // b and c are untouched: no declaration (which would flush them), no rules.
    expect(nat.some((l) => l.includes(svcChain(b.id)))).toBe(false);
    expect(nat.some((l) => l.startsWith(`:${svcChain(c.id)}`))).toBe(false);
    // The dispatch rules are what the kernel already holds: neither declared (flushed) nor written.
    expect(r.stats.dispatchChainsWritten).toBe(0);
    expect(nat.filter((l) => l.startsWith(':SY-') && !/^:SY-[a-z]/.test(l))).toEqual([]);
    expect(nat.some((l) => l.startsWith('-A SY-SERVICES ') || l.startsWith('-A SY-NODEPORTS '))).toBe(false);
    // Nothing in filter changed: the table is left out (legacy does not rewrite it).
    expect(r.text).not.toContain('*filter');
    // The remembered dispatch still jumps to every Service port.
    const remembered = r.applied.dispatch.nat.get(CHAINS.services)!;
    expect(remembered.some((l) => l.endsWith(svcChain(c.id)))).toBe(true);
    // reused as is, not rebuilt from every Service port
    expect(remembered).toBe(first.applied.dispatch.nat.get(CHAINS.services));
    expect(r.applied.dispatch.filter.get(CHAINS.services)).toBe(
      first.applied.dispatch.filter.get(CHAINS.services),
    );
    expect(r.applied.dispatch.nat.get(CHAINS.nodePorts)).toHaveLength(1);
    expect(r.applied.services.get(b.id)).toBe(first.applied.services.get(b.id));
    expect(r.applied.natRules).toBe(first.applied.natRules);
  });

  it('deletes every chain of a removed Service port, and its dispatch rules', () => {
    const s2 = snapshot([a, c]);
    const r = renderFamily(s2, 'IPv4', partialDelta([], [b.id]), first.applied, OPTS);
    const deleted = table(r.text, 'nat')
      .filter((l) => l.startsWith('-X '))
      .map((l) => l.slice(3))
      .sort();
    expect(deleted).toEqual([...first.applied.services.get(b.id)!.chains].sort());
    expect(deleted).toContain(extChain(b.id));
    expect(r.text).not.toContain('10.96.1.2/32');
    expect(r.applied.services.has(b.id)).toBe(false);
    expect(chainRules(r.text, 'nat', CHAINS.nodePorts)).toEqual([]);
    expect(table(r.text, 'nat')).toContain(':SY-NODEPORTS - [0:0]'); // flushed
    expect(r.applied.dispatch.nat.get(CHAINS.services)!.some((l) => l.includes('10.96.1.2/32'))).toBe(false);
    expect(chainRules(r.text, 'nat', CHAINS.services).some((l) => l.endsWith(svcChain(c.id)))).toBe(true);
  });

  it('a Service port losing its endpoints deletes its nat chains and gains a REJECT', () => {
    const c2 = plan({ name: 'c', clusterIP: '10.96.1.3' });
    const s2 = snapshot([a, b, c2]);
    const r = renderFamily(s2, 'IPv4', partialDelta([c.id]), first.applied, OPTS);
    expect(
      table(r.text, 'nat')
        .filter((l) => l.startsWith('-X '))
        .sort(),
    ).toEqual([`-X ${svcChain(c.id)}`, `-X ${endpointChainName(c.id, '10.244.1.4', 8080)}`].sort());
    expect(chainRules(r.text, 'filter', CHAINS.services)[0]).toContain(
      '-d 10.96.1.3/32 -p tcp -m tcp --dport 80',
    );
    expect(chainRules(r.text, 'filter', CHAINS.services)[0]).toContain('-j REJECT');
  });

  it('a full render deletes our chains found in the kernel that the snapshot no longer needs, never foreign ones', () => {
    const r = renderFamily(s1, 'IPv4', fullDelta(s1), undefined, OPTS, {
      nat: new Set(['SY-SVC-LEFTOVER0000000', 'KUBE-SERVICES', CHAINS.services, svcChain(a.id)]),
      filter: new Set(['SY-OLDCHAIN', 'DOCKER']),
    });
    expect(table(r.text, 'nat').filter((l) => l.startsWith('-X '))).toEqual(['-X SY-SVC-LEFTOVER0000000']);
    expect(table(r.text, 'filter').filter((l) => l.startsWith('-X '))).toEqual(['-X SY-OLDCHAIN']);
    expect(r.text).not.toContain('KUBE-SERVICES');
    expect(r.text).not.toContain('DOCKER');
  });

  it('a full render after a previous apply deletes chains only the previous state had', () => {
    const s2 = snapshot([a]);
    const r = renderFamily(s2, 'IPv4', fullDelta(s2), first.applied, OPTS);
    const deleted = new Set(
      table(r.text, 'nat')
        .filter((l) => l.startsWith('-X '))
        .map((l) => l.slice(3)),
    );
    for (const ch of [
      ...first.applied.services.get(b.id)!.chains,
      ...first.applied.services.get(c.id)!.chains,
    ]) {
      expect(deleted.has(ch)).toBe(true);
    }
    expect(deleted.has(svcChain(a.id))).toBe(false);
  });

  it('parses chain declarations of iptables-save output per table', () => {
    const save =
      '# x\n*nat\n:PREROUTING ACCEPT [0:0]\n:SY-SERVICES - [0:0]\n-A PREROUTING -j SY-SERVICES\nCOMMIT\n*filter\n:SY-FORWARD - [0:0]\nCOMMIT\n';
    const t = parseSaveChains(save);
    expect([...t.get('nat')!]).toEqual(['PREROUTING', 'SY-SERVICES']);
    expect([...t.get('filter')!]).toEqual(['SY-FORWARD']);
  });
});

describe('renderFamily: dispatch chains written only when they change', () => {
  const a = plan({ name: 'a', clusterIP: '10.96.1.1', endpoints: [ep('10.244.1.1'), ep('10.244.1.2')] });
  const b = plan({ name: 'b', clusterIP: '10.96.1.2', nodePort: 30002, endpoints: [ep('10.244.1.3')] });
  const s1 = snapshot([a, b]);
  const first = renderFamily(s1, 'IPv4', fullDelta(s1), undefined, OPTS);
  const declared = (text: string, tbl: 'nat' | 'filter'): string[] =>
    table(text, tbl)
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1, l.indexOf(' ')));

  it('a full render writes every dispatch and fixed chain', () => {
    expect(declared(first.text, 'nat')).toEqual(
      expect.arrayContaining([...first.applied.dispatch.nat.keys()]),
    );
    expect(declared(first.text, 'filter')).toEqual(
      expect.arrayContaining([...first.applied.dispatch.filter.keys()]),
    );
    expect(first.stats.dispatchChainsWritten).toBe(
      first.applied.dispatch.nat.size + first.applied.dispatch.filter.size,
    );
  });

  it('adding a Service rewrites the dispatch chains it appears in, and only those', () => {
    const c = plan({ name: 'c', clusterIP: '10.96.1.3', nodePort: 30003, endpoints: [ep('10.244.1.4')] });
    const s2 = snapshot([a, b, c]);
    const r = renderFamily(s2, 'IPv4', partialDelta([c.id]), first.applied, OPTS);
    expect(r.full).toBe(false);
    expect(declared(r.text, 'nat').filter((n) => !/^SY-[a-z]/.test(n))).toEqual([
      CHAINS.services,
      CHAINS.nodePorts,
    ]);
    // the whole chain is written, old rules included
    expect(chainRules(r.text, 'nat', CHAINS.services)).toEqual(r.applied.dispatch.nat.get(CHAINS.services));
    expect(chainRules(r.text, 'nat', CHAINS.services).some((l) => l.endsWith(svcChain(a.id)))).toBe(true);
    expect(chainRules(r.text, 'nat', CHAINS.nodePorts)).toHaveLength(2);
    // filter SY-SERVICES gains the new ClusterIP's REJECT; the other filter chains are unchanged
    expect(declared(r.text, 'filter')).toEqual([CHAINS.services]);
    expect(chainRules(r.text, 'filter', CHAINS.services).some((l) => l.includes('-d 10.96.1.3/32'))).toBe(
      true,
    );
    expect(r.text).not.toContain(CHAINS.postrouting);
    expect(r.text).not.toContain(CHAINS.forward);
  });

  it('a partial render with nothing changed produces no restore input at all', () => {
    const r = renderFamily(s1, 'IPv4', partialDelta([]), first.applied, OPTS);
    expect(r.text).toBe('');
    expect(r.stats.dispatchChainsWritten).toBe(0);
    expect(r.applied.dispatch).toEqual(first.applied.dispatch);
  });

  it('a changed Service port is rewritten even when its chains come out the same (its dispatch is not)', () => {
    const r = renderFamily(s1, 'IPv4', partialDelta([a.id]), first.applied, OPTS);
    expect(r.text).toContain(`:${svcChain(a.id)} - [0:0]`);
    expect(r.text).not.toContain('-A SY-SERVICES ');
    expect(r.text).not.toContain('*filter');
  });

  it('a health check node port change rewrites filter SY-NODEPORTS only', () => {
    const s2: Snapshot = {
      ...snapshot([a, b]),
      healthChecks: [
        { serviceKey: 'default/b', namespace: 'default', name: 'b', port: 32000, localEndpoints: 1 },
      ],
    };
    const r = renderFamily(s2, 'IPv4', partialDelta([]), first.applied, OPTS);
    expect(r.text).not.toContain('*nat');
    expect(declared(r.text, 'filter')).toEqual([CHAINS.nodePorts]);
  });

  it('a change outside the Service ports (cluster CIDRs) makes the render full', () => {
    const s2 = snapshot([a, b], { clusterCIDRsV4: ['10.244.0.0/16', '10.245.0.0/16'] });
    const r = renderFamily(s2, 'IPv4', partialDelta([]), first.applied, OPTS);
    expect(r.full).toBe(true);
    expect(chainRules(r.text, 'nat', CHAINS.masqNonPod)).toHaveLength(3);
    expect(r.text).toContain(`:${svcChain(b.id)} - [0:0]`);
  });
});

describe('renderFamily: bucketed dispatch', () => {
  const BUCKETED: RenderOptions = { ...OPTS, dispatchBucketMin: 0 };
  const ports = Array.from({ length: 12 }, (_, i) =>
    plan({
      name: `s${i}`,
      clusterIP: `10.96.2.${i + 1}`,
      nodePort: i % 3 === 0 ? 30100 + i * 50 : undefined,
      endpoints: i === 5 ? [] : [ep(`10.244.2.${i + 1}`)],
    }),
  );
  const s1 = snapshot(ports);
  const first = renderFamily(s1, 'IPv4', fullDelta(s1), undefined, BUCKETED);
  const bucketOf = (p: { clusterIP: string }): string => addressBucket(p.clusterIP);
  const maskJump = (bk: string): string =>
    `-A SY-SERVICES -d 0.0.0.${Number(bk.slice(-2))}/0.0.0.63 -j ${bk}`;

  it('buckets addresses by their low 6 bits, IPv4 and IPv6, within the chain name limit', () => {
    const names = new Set<string>();
    for (let i = 0; i < 256; i++) names.add(addressBucket(`10.96.${i}.${i}`));
    expect(names.size).toBe(DISPATCH_BUCKETS);
    for (const n of names) {
      expect(n).toMatch(/^SY-SERVICES-\d\d$/);
      expect(n.length).toBeLessThanOrEqual(MAX_CHAIN_NAME);
    }
    expect(addressBucket('10.96.0.70')).toBe('SY-SERVICES-06');
    expect(addressBucket('fd00::1:47')).toBe('SY-SERVICES-07');
    expect(addressBucket('fd00::')).toBe('SY-SERVICES-00');
    expect(nodePortBucket(30000)).toBe(nodePortBucket(30015));
    expect(nodePortBucket(30015)).not.toBe(nodePortBucket(30016));
  });

  it('nat SY-SERVICES jumps by destination mask to the non-empty buckets, then to SY-NODEPORTS last; each rule sits in its bucket', () => {
    const top = chainRules(first.text, 'nat', CHAINS.services);
    const buckets = [...new Set(ports.filter((p) => p.internalEndpoints.length > 0).map(bucketOf))].sort();
    expect(top.slice(0, -1)).toEqual(buckets.map(maskJump));
    expect(top.at(-1)).toMatch(/-j SY-NODEPORTS$/);
    for (const p of ports.filter((x) => x.internalEndpoints.length > 0)) {
      expect(chainRules(first.text, 'nat', bucketOf(p))).toContain(
        `-A ${bucketOf(p)} -d ${p.clusterIP}/32 -p tcp -m tcp --dport 80 -m comment --comment "${p.id} cluster IP" -j ${svcChain(p.id)}`,
      );
    }
    const withNodePort = ports.filter((p) => p.nodePort !== undefined);
    const np = chainRules(first.text, 'nat', CHAINS.nodePorts);
    expect(np).toHaveLength(withNodePort.length); // 30100, 30250, 30400, 30550: four ranges
    for (const p of withNodePort) {
      const lo = p.nodePort! - (p.nodePort! % 64);
      expect(np).toContain(
        `-A SY-NODEPORTS -p tcp -m tcp --dport ${lo}:${lo + 63} -j ${nodePortBucket(p.nodePort!)}`,
      );
      expect(chainRules(first.text, 'nat', nodePortBucket(p.nodePort!))).toContain(
        `-A ${nodePortBucket(p.nodePort!)} -p tcp -m tcp --dport ${p.nodePort} -m comment --comment "${p.id}" -j ${extChain(p.id)}`,
      );
    }
  });

  it("filter SY-SERVICES jumps by destination mask; a bucket holds its ClusterIPs' port rejects before their undefined-port REJECT", () => {
    const top = chainRules(first.text, 'filter', CHAINS.services);
    expect(top).toEqual([...new Set(ports.map(bucketOf))].sort().map(maskJump));
    const empty = ports[5]!;
    const rules = chainRules(first.text, 'filter', bucketOf(empty));
    expect(rules).toEqual([
      `-A ${bucketOf(empty)} -d ${empty.clusterIP}/32 -p tcp -m tcp --dport 80 -m comment --comment "${empty.id} has no endpoints" -j REJECT`,
      `-A ${bucketOf(empty)} -d ${empty.clusterIP}/32 -m comment --comment "ClusterIP ${empty.clusterIP}: port not defined by any Service" -j REJECT`,
    ]);
    expect(first.applied.dispatch.filter.get(bucketOf(empty))).toEqual(rules);
  });

  it('IPv6 buckets use an IPv6 mask', () => {
    const v6 = plan({ name: 'v6', clusterIP: 'fd00::a:4b', family: 'IPv6', endpoints: [ep('fd00:1::5')] });
    const s = snapshot([v6], { families: ['IPv6'] });
    const r = renderFamily(s, 'IPv6', fullDelta(s), undefined, BUCKETED);
    expect(chainRules(r.text, 'nat', CHAINS.services)[0]).toBe(
      '-A SY-SERVICES -d ::b/::3f -j SY-SERVICES-11',
    );
    expect(chainRules(r.text, 'filter', CHAINS.services)).toEqual([
      '-A SY-SERVICES -d ::b/::3f -j SY-SERVICES-11',
    ]);
  });

  it('adding a Service rewrites its bucket only (and SY-SERVICES only when the bucket is new)', () => {
    // a Service whose bucket already exists (10.96.3.1 shares 10.96.2.1's low bits)
    const extra = plan({ name: 'x', clusterIP: '10.96.3.1', endpoints: [ep('10.244.3.1')] });
    expect(first.applied.dispatch.nat.has(bucketOf(extra))).toBe(true);
    const s2 = snapshot([...ports, extra]);
    const r = renderFamily(s2, 'IPv4', partialDelta([extra.id]), first.applied, BUCKETED);
    expect(r.full).toBe(false);
    const dispatchDecl = (tbl: 'nat' | 'filter', text: string): string[] =>
      table(text, tbl)
        .filter((l) => l.startsWith(':SY-') && !/^:SY-[a-z]/.test(l))
        .sort();
    expect(dispatchDecl('nat', r.text)).toEqual([`:${bucketOf(extra)} - [0:0]`]);
    expect(dispatchDecl('filter', r.text)).toEqual([`:${bucketOf(extra)} - [0:0]`]);
    expect(chainRules(r.text, 'nat', bucketOf(extra))).toHaveLength(
      first.applied.dispatch.nat.get(bucketOf(extra))!.length + 1,
    );
    // a Service in a new bucket
    const fresh = plan({ name: 'y', clusterIP: '10.96.3.40', endpoints: [ep('10.244.3.2')] });
    expect(first.applied.dispatch.nat.has(bucketOf(fresh))).toBe(false);
    const s3 = snapshot([...ports, fresh]);
    const r3 = renderFamily(s3, 'IPv4', partialDelta([fresh.id]), first.applied, BUCKETED);
    expect(dispatchDecl('nat', r3.text)).toEqual(
      [`:${bucketOf(fresh)} - [0:0]`, ':SY-SERVICES - [0:0]'].sort(),
    );
    expect(chainRules(r3.text, 'nat', CHAINS.services)).toContain(maskJump(bucketOf(fresh)));
    expect(chainRules(r3.text, 'filter', CHAINS.services)).toContain(maskJump(bucketOf(fresh)));
  });

  it('removing the last Service of a bucket deletes the bucket chains after SY-SERVICES stops jumping to them', () => {
    const lonely = ports.find((p) => p.nodePort === undefined && p.internalEndpoints.length > 0)!;
    const s2 = snapshot(ports.filter((p) => p !== lonely));
    const r = renderFamily(s2, 'IPv4', partialDelta([], [lonely.id]), first.applied, BUCKETED);
    for (const tbl of ['nat', 'filter'] as const) {
      const t = table(r.text, tbl);
      expect(t).toContain(`-X ${bucketOf(lonely)}`);
      expect(chainRules(r.text, tbl, CHAINS.services)).not.toContain(maskJump(bucketOf(lonely)));
      expect(t.indexOf(`-X ${bucketOf(lonely)}`)).toBeGreaterThan(
        t.findIndex((l) => l.startsWith('-A SY-SERVICES ')),
      );
      expect(r.applied.dispatch[tbl].has(bucketOf(lonely))).toBe(false);
    }
  });

  it('crossing the threshold in a partial render moves the rules between layouts and deletes the buckets', () => {
    const small = renderFamily(s1, 'IPv4', partialDelta([]), first.applied, {
      ...OPTS,
      dispatchBucketMin: 100,
    });
    expect(small.full).toBe(false);
    for (const tbl of ['nat', 'filter'] as const) {
      const t = table(small.text, tbl);
      const buckets = [...first.applied.dispatch[tbl].keys()].filter((c) => /-\d\d$/.test(c));
      expect(buckets.length).toBeGreaterThan(0);
      for (const bk of buckets) expect(t).toContain(`-X ${bk}`);
    }
    const withEndpoints = ports.filter((p) => p.internalEndpoints.length > 0);
    expect(chainRules(small.text, 'nat', CHAINS.services)).toHaveLength(withEndpoints.length + 1);
    // filter: the one port without endpoints, then one REJECT per ClusterIP
    expect(chainRules(small.text, 'filter', CHAINS.services)).toHaveLength(ports.length + 1);
    // a later full render in the small layout deletes nothing more
    const again = renderFamily(s1, 'IPv4', partialDelta([]), small.applied, {
      ...OPTS,
      dispatchBucketMin: 100,
    });
    expect(again.text).toBe('');
  });

  it('a full render keeps live bucket chains found in the kernel and deletes stale ones', () => {
    const live = bucketOf(ports[0]!);
    const stale = [...Array(DISPATCH_BUCKETS).keys()]
      .map((i) => `SY-SERVICES-${String(i).padStart(2, '0')}`)
      .find((n) => !first.applied.dispatch.nat.has(n))!;
    const r = renderFamily(s1, 'IPv4', fullDelta(s1), undefined, BUCKETED, {
      nat: new Set([live, stale]),
      filter: new Set([live, stale]),
    });
    expect(table(r.text, 'nat').filter((l) => l.startsWith('-X '))).toEqual([`-X ${stale}`]);
    expect(table(r.text, 'filter').filter((l) => l.startsWith('-X '))).toEqual([`-X ${stale}`]);
  });
});

describe('restoreText: order for iptables-nft (names.ts)', () => {
  const ports = Array.from({ length: 30 }, (_, i) =>
    plan({
      name: `o${i}`,
      clusterIP: `10.96.4.${i + 1}`,
      nodePort: i % 4 === 0 ? 30200 + i : undefined,
      endpoints: [ep(`10.244.4.${i + 1}`), ep(`10.244.5.${i + 1}`)],
    }),
  );
  const s = snapshot(ports);

  for (const bucketMin of [0, Number.POSITIVE_INFINITY]) {
    it(`writes ports in descending hash order, each followed by the dispatch rules that jump to it (${bucketMin === 0 ? 'bucketed' : 'flat'})`, () => {
      const r = renderFamily(s, 'IPv4', fullDelta(s), undefined, { ...OPTS, dispatchBucketMin: bucketMin });
      const nat = table(r.text, 'nat');
      // each port's chains are declared in one block, blocks in descending hash order
      const firstDecl = new Map<string, number>();
      nat.forEach((l, i) => {
        const m = /^:SY-([a-z]{16})-/.exec(l);
        if (m && !firstDecl.has(m[1]!)) firstDecl.set(m[1]!, i);
      });
      const hashes = [...firstDecl.keys()];
      expect(hashes).toEqual([...hashes].sort().reverse());
      expect(hashes).toHaveLength(ports.length);
      // a rule jumping to a port's chain comes after that port's block and before the next one
      nat.forEach((l, i) => {
        const m = / -j SY-([a-z]{16})-/.exec(l);
        if (!m) return;
        const k = hashes.indexOf(m[1]!);
        expect(i).toBeGreaterThan(firstDecl.get(hashes[k]!)!);
        if (k + 1 < hashes.length) expect(i).toBeLessThan(firstDecl.get(hashes[k + 1]!)!);
      });
      // and every chain's rules are exactly what was applied, in the same order
      for (const [chain, rules] of r.applied.dispatch.nat)
        expect(chainRules(r.text, 'nat', chain)).toEqual(rules);
    });
  }

  it('a partial render keeps every rewritten chain in its applied order', () => {
    const first = renderFamily(s, 'IPv4', fullDelta(s), undefined, { ...OPTS, dispatchBucketMin: 0 });
    const extra = plan({ name: 'late', clusterIP: '10.96.4.2', endpoints: [ep('10.244.6.1')] });
    const s2 = snapshot([...ports, extra]);
    const r = renderFamily(s2, 'IPv4', partialDelta([extra.id]), first.applied, {
      ...OPTS,
      dispatchBucketMin: 0,
    });
    expect(r.full).toBe(false);
    for (const chain of r.parts.natChains.keys())
      expect(chainRules(r.text, 'nat', chain)).toEqual(r.applied.dispatch.nat.get(chain));
  });
});
